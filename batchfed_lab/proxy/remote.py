"""Proxies as the store shows them, wherever they run: status from heartbeats, and commands
(suspend, resume, stop) that reach a proxy on another machine through the store.

A proxy's record in the store is its heartbeat. It is *fresh* while younger than the
proxy's lease (``lease_s`` in its record, else this workspace's ``proxy.lease_seconds``),
and *stale* after: only then may anyone but its owner remove it. Local process ids say
nothing about a proxy on another machine, so they never make a fresh record stale.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError, ProxyError
from ..runtime import alive as pid_alive
from ..store.records import ProxyRecord

if TYPE_CHECKING:
    from ..store.base import Store
    from .lifecycle import ProxyProcess

LEASE_NAME = "proxy-leader"  # the daemon's leader lease (daemon.LEASE_NAME)
POLL = 0.1  # seconds between two looks at the store while waiting for an acknowledgement


@dataclass(frozen=True)
class Acknowledgement:
    """How proxies answered a command: who obeyed, who did not within the timeout."""

    command: str
    obeyed: list[str] = field(default_factory=list)
    pending: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {"command": self.command, "obeyed": self.obeyed, "pending": self.pending, "seconds": round(self.seconds, 3)}


def heartbeat_age(rec: ProxyRecord, now: float) -> float | None:
    return None if rec.heartbeat_at is None else now - rec.heartbeat_at.timestamp()


def lease_of(rec: ProxyRecord, default_lease: float) -> float:
    value = rec.info.get("lease_s") if isinstance(rec.info, dict) else None
    return float(value) if isinstance(value, (int, float)) and value > 0 else default_lease


def is_fresh(rec: ProxyRecord, now: float, default_lease: float) -> bool:
    """Its heartbeat is younger than its lease: the proxy is alive, wherever it runs."""
    age = heartbeat_age(rec, now)
    return age is not None and age <= lease_of(rec, default_lease)


def status_rows(store: Store, local: dict[str, ProxyProcess], default_lease: float) -> list[dict[str, Any]]:
    """One row per proxy: this machine's processes joined with every record in the store.
    Records stale by heartbeat are reported as such, then removed; fresh ones are kept."""
    records = {r.proxy_id: r for r in store.list_proxies()}
    suspended = store.is_suspended()
    lease = store.get_lease(LEASE_NAME)
    now = store.now()
    rows = []
    for proxy_id in sorted(set(local) | set(records)):
        p, r = local.get(proxy_id), records.get(proxy_id)
        fresh = r is not None and is_fresh(r, now, default_lease)
        rows.append(_row(proxy_id, p, r, fresh, now, leader=bool(lease and lease.holder == proxy_id), suspended=suspended))
        if r is not None and not fresh and p is None:
            store.remove_proxy(proxy_id)  # stale by its heartbeat, wherever it ran
    return rows


def _role(p: ProxyProcess | None, r: ProxyRecord | None, fresh: bool) -> str:
    if r is not None and fresh:
        return r.role or "starting"
    if p is not None and (r is None or r.pid != p.pid):
        return "starting"  # a live local process that has not heartbeat yet (or not since a restart)
    return "stale"


def _row(
    proxy_id: str, p: ProxyProcess | None, r: ProxyRecord | None, fresh: bool, now: float, *, leader: bool, suspended: bool
) -> dict[str, Any]:
    age = heartbeat_age(r, now) if r is not None else None
    role = _role(p, r, fresh)
    return {
        "proxy_id": proxy_id,
        "pid": p.pid if p else (r.pid if r else None),
        "host": r.host if r and r.host else (socket.gethostname() if p else None),
        "local": p is not None,
        "running": p is not None or fresh,
        "role": role,
        "stale": role == "stale",
        "leader": leader,
        "heartbeat_age_s": round(age, 3) if age is not None else None,
        "version": p.version if p else (r.version if r else None),
        "started": p.started if p else (r.started_at.isoformat() if r and r.started_at else None),
        "uptime_s": _uptime(p, r, now),
        "federations": (r.info.get("federations") if r else []) or [],
        "counters": dict(r.counters) if r else {},
        "suspended": suspended,
        "log": p.log if p else (r.info.get("log") if r else None),
        "store": p.store if p else (r.info.get("store") if r else None),
    }


def _uptime(p: ProxyProcess | None, r: ProxyRecord | None, now: float) -> float | None:
    if p is not None:
        return round(now - datetime.fromisoformat(p.started).timestamp(), 1)
    if r is not None and r.started_at is not None:
        return round(now - r.started_at.timestamp(), 1)
    return None


def live_records(store: Store, default_lease: float) -> list[ProxyRecord]:
    """Records with a fresh heartbeat, the leader first."""
    now = store.now()
    lease = store.get_lease(LEASE_NAME)
    holder = lease.holder if lease else None
    fresh = [r for r in store.list_proxies() if is_fresh(r, now, default_lease)]
    return sorted(fresh, key=lambda r: (r.proxy_id != holder, r.proxy_id))


def can_answer(rec: ProxyRecord) -> bool:
    """False only for a record of this machine whose process is gone: it cannot acknowledge
    anything, though its heartbeat looks fresh until its lease passes."""
    return not (rec.host == socket.gethostname() and rec.pid is not None and not pid_alive(rec.pid))


def check_timeout(timeout: float) -> None:
    """Refuse a bad ``--timeout`` before anything is sent."""
    if not timeout >= 0:  # NaN too
        raise ConfigError(f"--timeout {timeout:g}: use a number of seconds, 0 or more")


def _wait(command: str, ids: Iterable[str], done: Callable[[str], bool], timeout: float) -> Acknowledgement:
    start = time.monotonic()
    waiting = list(ids)
    obeyed: list[str] = []
    while True:
        for proxy_id in list(waiting):
            if done(proxy_id):
                waiting.remove(proxy_id)
                obeyed.append(proxy_id)
        elapsed = time.monotonic() - start
        if not waiting or elapsed >= timeout:
            return Acknowledgement(command, obeyed, waiting, elapsed)
        time.sleep(min(POLL, max(0.0, timeout - elapsed)))


def set_suspended(store: Store, suspended: bool, *, timeout: float, default_lease: float) -> Acknowledgement:
    """Set the store-wide flag (claims honour it at once), then wait until every live proxy
    reports the new state in a heartbeat, or ``timeout`` passes."""
    check_timeout(timeout)
    store.set_suspended(suspended)
    targets = [r.proxy_id for r in live_records(store, default_lease) if can_answer(r)]

    def reported(proxy_id: str) -> bool:
        rec = store.get_proxy(proxy_id)
        return rec is None or bool(rec.info.get("suspended")) is suspended  # gone: nothing left to obey

    return _wait("suspend" if suspended else "resume", targets, reported, timeout)


def request_stop(store: Store, proxy_ids: list[str], *, timeout: float) -> Acknowledgement:
    """Ask each proxy to stop through the store; obeyed when it removed its own record on
    the way out. Raises :class:`ProxyError` naming those that did not within ``timeout``."""
    check_timeout(timeout)
    for proxy_id in proxy_ids:
        store.request_stop(proxy_id)
    ack = _wait("stop", proxy_ids, lambda proxy_id: store.get_proxy(proxy_id) is None, timeout)
    if ack.pending:
        now = store.now()
        ages = []
        for proxy_id in ack.pending:
            rec = store.get_proxy(proxy_id)
            age = heartbeat_age(rec, now) if rec is not None else None
            ages.append(f"{proxy_id} (heartbeat {age:.1f}s old)" if age is not None else proxy_id)
        raise ProxyError(
            f"{', '.join(ages)} did not stop within {timeout:g}s of the stop request; "
            "the request stays in the store and is obeyed at its next heartbeat"
        )
    return ack
