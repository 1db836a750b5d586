"""Proxies seen and steered through the store, wherever they run: ``proxy status`` judges a
record by its heartbeat (stale = older than the proxy's lease), never by this machine's
process ids, and removes only stale records; a stop request in the store stops a proxy."""

from __future__ import annotations

import threading
import time
from datetime import datetime, timezone

import pytest
from federation_stack import wait_for

from batchfed_lab.proxy import lifecycle
from batchfed_lab.proxy.daemon import ProxyDaemon
from batchfed_lab.store import ProxyRecord
from batchfed_lab.store.sqlite import SqliteStore

DEAD_PID = 2**22 + 7  # above pid_max: no process here has it


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(workspace, clock):
    s = SqliteStore(workspace.sqlite_path, clock=clock)
    yield s
    s.close()


def _elsewhere(store, proxy_id: str, role: str, **info) -> None:
    """A heartbeat as a proxy on another machine writes it (a pid that means nothing here)."""
    store.heartbeat(
        ProxyRecord(proxy_id, pid=DEAD_PID, host="vm-elsewhere", version="9.9", role=role, info={"federations": ["f"], **info})
    )


def test_status_shows_a_fresh_remote_proxy_as_running_and_keeps_its_record(workspace, store, clock):
    _elsewhere(store, "proxy-1", "leader")
    _elsewhere(store, "proxy-2", "standby")
    assert store.acquire_lease("proxy-leader", "proxy-1", ttl=15)
    clock.now += workspace.settings.proxy.lease_seconds - 1  # older than any local pid check, younger than the lease
    rows = {r["proxy_id"]: r for r in lifecycle.status(workspace, store=store)}
    assert set(rows) == {"proxy-1", "proxy-2"}
    for row in rows.values():
        assert row["running"] and not row["stale"] and not row["local"] and row["host"] == "vm-elsewhere"
    assert (rows["proxy-1"]["role"], rows["proxy-1"]["leader"]) == ("leader", True)
    assert (rows["proxy-2"]["role"], rows["proxy-2"]["leader"]) == ("standby", False)
    assert [r.proxy_id for r in store.list_proxies()] == ["proxy-1", "proxy-2"], "another machine's records are kept"


def test_stale_means_older_than_the_proxys_own_lease(workspace, store, clock):
    _elsewhere(store, "short", "leader", lease_s=5)
    _elsewhere(store, "long", "standby", lease_s=60)
    clock.now += 10
    rows = {r["proxy_id"]: r for r in lifecycle.status(workspace, store=store)}
    assert (rows["short"]["role"], rows["short"]["stale"], rows["short"]["running"]) == ("stale", True, False)
    assert (rows["long"]["role"], rows["long"]["stale"], rows["long"]["running"]) == ("standby", False, True)
    assert [r.proxy_id for r in store.list_proxies()] == ["long"], "only the stale record is removed"


def test_a_stop_request_in_the_store_stops_the_proxy_cleanly(workspace):
    store = SqliteStore(workspace.sqlite_path)
    daemon = ProxyDaemon(store, lambda url: None, proxy_id="far-away")
    store.request_stop("far-away")  # left for an earlier process under this id: not for this one
    runner = threading.Thread(target=daemon.run, daemon=True)
    runner.start()
    try:
        first = wait_for(lambda: store.get_proxy("far-away"), 10, "the proxy's first heartbeat")
        wait_for(lambda: (store.get_proxy("far-away") or first).heartbeat_at > first.heartbeat_at, 10, "a second heartbeat")
        assert runner.is_alive() and not store.stop_requested("far-away"), "a request older than the process is withdrawn"
        store.request_stop("far-away")
        runner.join(timeout=15)
        assert not runner.is_alive(), "the proxy obeyed the stop request"
        assert store.get_proxy("far-away") is None, "its record is gone: the acknowledgement"
        assert store.stop_requested("far-away") is False
        assert store.get_lease("proxy-leader") is None, "the lease was released on the way out"
    finally:
        daemon.stop()
        runner.join(timeout=15)
        store.close()


def test_heartbeat_publishes_the_lease_readers_judge_by(store):
    daemon = ProxyDaemon(store, lambda url: None, proxy_id="lease-probe")
    daemon._heartbeat()
    rec = store.get_proxy("lease-probe")
    assert rec is not None and rec.info["lease_s"] == daemon.loop.lease_ttl
    assert rec.heartbeat_at is not None and rec.heartbeat_at <= datetime.now(timezone.utc)


def test_a_bad_timeout_is_refused_before_anything_is_sent(workspace, store):
    from batchfed_lab.errors import ConfigError

    with pytest.raises(ConfigError, match=r"^--timeout -1: use a number of seconds, 0 or more$"):
        lifecycle.suspend(workspace, store, True, timeout=-1)
    assert store.is_suspended() is False
    with pytest.raises(ConfigError, match="--timeout nan"):
        lifecycle.stop_anywhere(workspace, store, proxy_id="x", timeout=float("nan"))
    assert store.stop_requested("x") is False
