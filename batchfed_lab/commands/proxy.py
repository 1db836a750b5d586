"""``fed proxy …``: start, watch, pause and stop the proxy here, or deploy it to Azure."""

from __future__ import annotations

from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

from .shape import Result, done, dumps, table

if TYPE_CHECKING:
    from ..client import Client


# The columns the CLI prints; --raw and the DataFrames have them all.
PROXY_TEXT = [
    "proxy_id",
    "host",
    "pid",
    "running",
    "role",
    "leader",
    "suspended",
    "heartbeat_age_s",
    "version",
    "uptime_s",
    "federations",
    "placed",
    "blocked",
    "failed",
    "log",
]


def proxy_start(c: Client, a: SimpleNamespace) -> Result:
    proxy, started = c.proxy_start(config=a.config, standby=a.standby)
    word = "started" if started else "already running"
    data = {**proxy.as_dict(), "started_now": started}
    return done(f"proxy {proxy.proxy_id} {word} (pid {proxy.pid}, log {proxy.log})", data, data)


def proxy_status(c: Client, a: SimpleNamespace) -> Result:
    from ..frames import proxies_frame

    status = c.proxy_status()
    df = proxies_frame(status)
    return Result(df, lambda: table(df, PROXY_TEXT, "no proxy is running"), status, rich=True)


def proxy_suspend(c: Client, a: SimpleNamespace) -> Result:
    ack = c.proxy_suspend(timeout=a.timeout)
    return _acknowledged(ack, "proxies suspended: queued actions wait until `fed proxy resume`")


def proxy_resume(c: Client, a: SimpleNamespace) -> Result:
    ack = c.proxy_resume(timeout=a.timeout)
    return _acknowledged(ack, "proxies resumed")


def _acknowledged(ack: Any, text: str) -> Result:
    """Who obeyed a suspend/resume; a proxy that did not within the timeout is a warning (the
    flag holds in the store and the proxy obeys it when it reads it)."""
    if ack.obeyed:
        text += f" ({', '.join(ack.obeyed)} acknowledged in {ack.seconds:.1f}s)"
    warn = (
        [
            f"{', '.join(ack.pending)} did not acknowledge the {ack.command} within {ack.seconds:.0f}s; "
            "the flag is set in the store and is obeyed when read"
        ]
        if ack.pending
        else []
    )
    if ack.command == "resume" and not ack.obeyed and not ack.pending:
        warn.append("no proxy is running: start one with `fed proxy start`")
    return done(text, ack, ack.as_dict(), warn)


def proxy_stop(c: Client, a: SimpleNamespace) -> Result:
    stopped = c.proxy_stop(all=a.all, proxy_id=a.proxy_id, timeout=a.timeout)
    return done(f"stopped {', '.join(stopped)}" if stopped else "no proxy was running", stopped, {"stopped": stopped})


def proxy_logs(c: Client, a: SimpleNamespace) -> Result:
    if a.follow:
        stream = c.proxy_logs_follow(a.lines, proxy_id=a.proxy_id)
        return Result(None, "", {"log": None}, stream=stream)
    text = c.proxy_logs(a.lines, proxy_id=a.proxy_id)
    return Result(text, str(text) or "(no proxy log yet)", {"log": str(text)}, rich=True)


def _deployed(report: Any) -> Result:
    """create/destroy on Azure: ``--what-if`` prints the whole plan as one JSON document
    (template, parameters with secrets hidden, role assignments); a real run its summary."""
    if report.what_if and report.document.get("template") is not None:
        text = dumps(report.document)
    else:
        text = "\n".join(report.lines)
    return Result(report, text, report.document, warnings=tuple(report.warnings))


def proxy_create(c: Client, a: SimpleNamespace) -> Result:
    return _deployed(c.proxy_create(config=a.config, standby=a.standby, what_if=a.what_if))


def proxy_destroy(c: Client, a: SimpleNamespace) -> Result:
    return _deployed(c.proxy_destroy(config=a.config, standby=a.standby, what_if=a.what_if, purge=a.purge))
