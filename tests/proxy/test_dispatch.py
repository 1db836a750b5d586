"""How the proxy keeps its workers busy: a worker that finishes an action claims the next ready
one itself (no round trip through the dispatcher thread), only while it leads, never in the
original's one-at-a-time cadence, and across every watched federation."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from batchfed_lab.proxy.daemon import LoopOptions, ProxyDaemon
from batchfed_lab.store import ActionState, NewAction
from batchfed_lab.store.sqlite import SqliteStore


class MarkDone:
    """Stands in for the processor: finishes each claim and notes which thread ran it."""

    def __init__(self, store: SqliteStore):
        self.store = store
        self.threads: list[str] = []
        self.lock = threading.Lock()

    def process(self, claim: Any) -> str:
        with self.lock:
            self.threads.append(threading.current_thread().name)
        self.store.mark_done(claim)
        return "done"


@pytest.fixture
def daemon(tmp_path: Path):
    store = SqliteStore(tmp_path / "s.sqlite")
    for fid in ("a", "b"):
        store.create_federation(fid)
    d = ProxyDaemon(store, lambda url: None, loop=LoopOptions(workers=1), proxy_id="p")  # type: ignore[arg-type]
    d.processor = MarkDone(store)  # type: ignore[assignment]
    d._federations = ["a", "b"]
    d.is_leader.set()
    yield d, store
    d._executor.shutdown(wait=True)
    store.close()


def terminate(target: str) -> NewAction:
    return NewAction("job", "terminate", target, {"version": 1})


def test_one_worker_runs_every_ready_action_of_every_federation(daemon):
    d, store = daemon
    store.enqueue("a", [terminate(f"j{i}") for i in range(5)])
    store.enqueue("b", [terminate(f"k{i}") for i in range(5)])
    first = store.claim("a", d.proxy_id)
    assert d._slots.acquire(blocking=False)
    d._dispatch(first)
    d._drain(timeout=30)
    done = [a for fid in ("a", "b") for a in store.list_actions(fid) if a.state is ActionState.DONE]
    assert len(done) == 10
    assert len(set(d.processor.threads)) == 1, "the one worker chained through all ten"
    assert d._slots.acquire(blocking=False), "the worker gave its slot back when nothing was left"


@pytest.mark.parametrize("why", ["not leader", "stopping", "original cadence"])
def test_a_worker_claims_nothing_more_unless_it_leads_in_event_mode(daemon, why):
    d, store = daemon
    store.enqueue("a", [terminate("j1")])
    if why == "not leader":
        d.is_leader.clear()
    elif why == "stopping":
        d.stop_event.set()
    else:
        d.loop = LoopOptions(mode="original")
    assert d._claim_next() is None
    assert store.list_actions("a")[0].claimed_by is None
