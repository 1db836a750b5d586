"""How the proxy keeps its workers busy: a worker that finishes an action claims the next ready
one itself (no round trip through the dispatcher thread), only while it leads, never in the
original's one-at-a-time cadence, and across every watched federation."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from batchfed_lab.proxy.daemon import LoopOptions, ProxyDaemon
from batchfed_lab.proxy.processor import FollowOn
from batchfed_lab.store import ActionState, NewAction
from batchfed_lab.store.sqlite import SqliteStore


class MarkDone:
    """Stands in for the processor: finishes each claim and notes which thread ran it."""

    def __init__(self, store: SqliteStore):
        self.store = store
        self.threads: list[str] = []
        self.lock = threading.Lock()

    def process(self, claim: Any, *, follow: FollowOn | None = None) -> str:
        with self.lock:
            self.threads.append(threading.current_thread().name)
        self.store.mark_done(claim)
        return "done"


class MarkPlaced(MarkDone):
    """Stands in for the processor placing adds: the placement claims the next action with it
    when asked to (as the real one does), and ``during`` runs before that write."""

    def __init__(self, store: SqliteStore, during: Any = None):
        super().__init__(store)
        self.during = during
        self.followed = 0

    def process(self, claim: Any, *, follow: FollowOn | None = None) -> str:
        with self.lock:
            self.threads.append(threading.current_thread().name)
        if self.during is not None:
            self.during()
        if follow is None:
            self.store.mark_placed(claim)
        else:
            _, follow.claim = self.store.mark_placed_and_claim(claim, worker=follow.worker, ttl=follow.ttl)
            follow.asked = True
            self.followed += follow.claim is not None
        return "placed"


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


def run_one_worker(d: ProxyDaemon, store: SqliteStore) -> None:
    """Hand the first ready action of federation a to the one worker; wait until it ran out."""
    first = store.claim("a", d.proxy_id)
    assert d._slots.acquire(blocking=False)
    d._dispatch(first)
    d._drain(timeout=30)


def test_one_worker_runs_every_ready_action_of_every_federation(daemon):
    d, store = daemon
    store.enqueue("a", [terminate(f"j{i}") for i in range(5)])
    store.enqueue("b", [terminate(f"k{i}") for i in range(5)])
    run_one_worker(d, store)
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
    assert d._claim_next(next(d._rotation)) is None
    assert store.list_actions("a")[0].claimed_by is None


def add(target: str) -> NewAction:
    return NewAction("job", "add", target, {"version": 1})


def test_a_placement_claims_the_next_action_in_the_same_write(daemon):
    d, store = daemon
    d._federations = ["a"]
    d.processor = MarkPlaced(store)  # type: ignore[assignment]
    store.enqueue("a", [add(f"j{i}") for i in range(5)])
    run_one_worker(d, store)
    assert [a.state for a in store.list_actions("a")] == [ActionState.PLACED] * 5
    assert d.processor.followed == 4, "each placement but the last claimed the next one with it"


def test_a_claim_taken_by_a_placement_is_given_back_when_the_lease_is_lost_meanwhile(daemon):
    d, store = daemon
    d._federations = ["a"]
    d.processor = MarkPlaced(store, during=d.is_leader.clear)  # type: ignore[assignment]
    store.enqueue("a", [add("j1"), add("j2")])
    run_one_worker(d, store)
    j1, j2 = sorted(store.list_actions("a"), key=lambda a: a.target_id)
    assert j1.state is ActionState.PLACED
    assert (j2.state, j2.claimed_by) == (ActionState.QUEUED, None), "not processed, and free for the new leader"
    assert d.processor.threads == [d.processor.threads[0]], "only the first action ran"


@pytest.mark.parametrize("processor", [MarkDone, MarkPlaced])
def test_one_worker_takes_turns_between_federations(daemon, processor):
    d, store = daemon
    d.processor = processor(store)  # type: ignore[assignment]
    order: list[str] = []
    real = d.processor.process

    def noting(claim: Any, **kw: Any) -> str:
        order.append(claim.federation_id)
        return real(claim, **kw)

    d.processor.process = noting  # type: ignore[method-assign]
    make = terminate if processor is MarkDone else add
    store.enqueue("a", [make(f"j{i}") for i in range(6)])
    store.enqueue("b", [make(f"k{i}") for i in range(6)])
    run_one_worker(d, store)
    assert sorted(order) == ["a"] * 6 + ["b"] * 6
    longest = max(len(run) for run in "".join(order).replace("ab", "a b").replace("ba", "b a").split())
    assert longest <= 2, f"a federation waited for the other: {''.join(order)}"


def test_an_idle_federation_does_not_cost_a_busy_one_its_merged_claims(daemon):
    # federation b watched but with nothing ready: every turn that would look at b first finds
    # nothing there, so the placement in a still claims a's next action in the same write
    d, store = daemon
    d.processor = MarkPlaced(store)  # type: ignore[assignment]
    store.enqueue("a", [add(f"j{i}") for i in range(6)])
    run_one_worker(d, store)
    assert [a.state for a in store.list_actions("a")] == [ActionState.PLACED] * 6
    assert d.processor.followed == 5, "each placement but the last claimed the next one with it"
