"""``batchfed up`` / ``down``: the embedded stack (localbatch and the proxy) of a workspace."""

from __future__ import annotations

from types import SimpleNamespace
from typing import TYPE_CHECKING

from .shape import Result, done

if TYPE_CHECKING:
    from ..client import Client


def up(c: Client, a: SimpleNamespace) -> Result:
    res = c.up(config=a.config)
    lb, proxy = res["localbatch"], res["proxy"]
    text = f"localbatch at {lb.url} (pid {lb.pid})\nproxy {proxy.proxy_id} {'started' if res['started'] else 'already running'} (pid {proxy.pid})"
    data = {"localbatch": lb.as_dict(), "proxy": proxy.as_dict(), "proxy_started": res["started"]}
    return done(text, data, data)


def down(c: Client, a: SimpleNamespace) -> Result:
    res = c.down()
    text = f"stopped proxies: {', '.join(res['proxies']) or 'none'}; localbatch: {'stopped' if res['localbatch'] else 'was not running'}"
    return done(text, res, res)
