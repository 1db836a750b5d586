"""``batchfed up`` / ``down``: the embedded stack (localbatch, the embedded Azurite and the proxy) of a workspace."""

from __future__ import annotations

from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

from .shape import Result, done

if TYPE_CHECKING:
    from ..client import Client


def up(c: Client, a: SimpleNamespace) -> Result:
    res = c.up(config=a.config)
    lb, proxy, storage = res["localbatch"], res["proxy"], res["storage"]
    lines = [f"localbatch at {lb.url} (pid {lb.pid})"]
    if storage is not None:
        lines.append(f"storage account local (Azurite) at {storage.blob_url} (pid {storage.pid})")
    lines += [f"proxy {proxy.proxy_id} {_proxy_state(res)} (pid {proxy.pid})", f"proxy options: {_options(res)}"]
    text = "\n".join(lines)
    data = {
        "localbatch": lb.as_dict(),
        "storage": storage.as_dict() if storage is not None else None,
        "proxy": proxy.as_dict(),
        "proxy_started": res["started"],
        "suspended": res["suspended"],
        "config": res["config"],
        "config_source": res["config_source"],
    }
    return done(text, data, data, res["warnings"])


def _proxy_state(res: dict[str, Any]) -> str:
    if res["suspended"]:
        # the suspend flag is in the store: a proxy started now claims nothing either
        return "suspended: it places nothing until `proxy resume`"
    return "started" if res["started"] else "already running"


def _options(res: dict[str, Any]) -> str:
    source = {"given": "", "last up": " (as the last up)", "running": " (the running proxy's)"}
    if res["config"] is None:
        return "defaults (no --config given)" if res["config_source"] == "defaults" else "defaults"
    return f"{res['config']}{source.get(res['config_source'], '')}"


def down(c: Client, a: SimpleNamespace) -> Result:
    res = c.down(if_started_here=a.if_started_here)
    if res["left_running"]:
        text = "left running: this process did not start the stack (`down` without --if-started-here stops it)"
        return done(text, res, res)
    text = (
        f"stopped proxies: {', '.join(res['proxies']) or 'none'}; "
        f"localbatch: {'stopped' if res['localbatch'] else 'was not running'}; "
        f"storage (Azurite): {'stopped' if res['storage'] else 'was not running'}"
    )
    return done(text, res, res)
