"""The move watch without processes: a real SQLite store, Batch faked. One move per
placement it leaves, a job with an action pending is left alone, and looks beyond the
per-step bound go round the placements."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from batchfed_lab.batch.tasks import TaskInfo
from batchfed_lab.config.jobs import JobSpecification
from batchfed_lab.proxy.moves import MoveWatch, move_action_id
from batchfed_lab.proxy.payload import add_payload
from batchfed_lab.scheduler.types import NodeCounts, PoolFacts, PoolSnapshot
from batchfed_lab.store import NewAction
from batchfed_lab.store.identity import Submitter
from batchfed_lab.store.records import LocationUpdate
from batchfed_lab.store.sqlite import SqliteStore

URL = "http://127.0.0.1:1/accounts/lab2"


class FakeBatch:
    def __init__(self, requeues: int = 0) -> None:
        self.listed: Counter[str] = Counter()
        self.requeues = requeues

    def list_tasks(self, job_id: str) -> list[TaskInfo]:
        self.listed[job_id] += 1
        return [TaskInfo("t0", "running", requeue_count=self.requeues)]


def processor(store: SqliteStore, snap: PoolSnapshot | None, elsewhere: str | None = None) -> Any:
    """``elsewhere``: the pool a move would go to now (None: no other pool can take it)."""
    members = tuple(store.list_pools("fed"))
    capacity = SimpleNamespace(snapshots=lambda m, **kw: [snap] if snap else [])
    counters = SimpleNamespace(add=lambda *a: None)
    return SimpleNamespace(
        _federation=lambda fid: (store.get_federation(fid), members),
        capacity=capacity,
        counters=counters,
        dry_decision=lambda fid, payload: SimpleNamespace(pool=elsewhere),
    )


def lowpri(pool_id: str = "p1") -> PoolSnapshot:
    facts = PoolFacts(pool_id, URL, "lab2", "eastus", "standard_d2_v3", None, target_low_priority=2)
    return PoolSnapshot(facts, low_priority=NodeCounts(running=2))


@pytest.fixture
def store(tmp_path: Path) -> Any:
    s = SqliteStore(tmp_path / "store.sqlite")
    s.create_federation("fed")
    s.add_pool("fed", URL, "p1")
    yield s
    s.close()


def place(store: SqliteStore, job_id: str) -> str:
    job = JobSpecification.model_validate({"id": job_id, "tasks": [{"command": "true"}]})
    (a,) = store.enqueue("fed", [NewAction("job", "add", job_id, add_payload(job))])
    store.mark_placed(store.claim("fed", "w"), location=LocationUpdate(URL, "p1", unique_id=a.id))
    return a.id


def test_a_gone_pool_queues_one_move_per_placement_it_leaves(store: SqliteStore) -> None:
    aid = place(store, "j")
    watch = MoveWatch(store, processor(store, None), lambda url: FakeBatch())
    assert watch.step(["fed"]) == 1
    assert watch.step(["fed"]) == 0  # the move is pending: the job is left alone
    (move,) = store.list_moves("fed", "j")
    assert move.id == move_action_id("fed", "j", f"{URL}#p1", aid)
    record = move.payload["move"]
    assert (record["why"], record["kind"], record["sources"], record["kinds"]) == (
        "pool p1 is gone",
        "pool_gone",
        [aid],
        ["pool_gone"],
    )
    assert record["left"] == {f"{URL}#p1": "pool p1 is gone"} and record["from"]["pool_id"] == "p1"


def test_the_proxy_queues_a_move_as_the_jobs_submitter_not_as_itself(store: SqliteStore) -> None:
    place(store, "j")
    store._submitter = Submitter("the-proxy", "proxy-principal")  # the watch runs with the proxy's credential
    MoveWatch(store, processor(store, None), lambda url: FakeBatch()).step(["fed"])
    (placed,) = [a for a in store.list_actions("fed", target_id="j") if "move" not in a.payload]
    (move,) = store.list_moves("fed", "j")
    assert (move.submitter, move.submitter_id) == (placed.submitter, placed.submitter_id) != ("the-proxy", "proxy-principal")


def test_a_healthy_pool_costs_one_listing_per_job_that_could_move(store: SqliteStore) -> None:
    for j in ("a", "b", "c"):
        place(store, j)
    batch = FakeBatch()
    watch = MoveWatch(store, processor(store, lowpri()), lambda url: batch, max_looks=1)
    for _ in range(3):
        assert watch.step(["fed"]) == 0
    assert batch.listed == Counter({"a": 1, "b": 1, "c": 1})  # round robin, one per step


def test_a_preempted_job_stays_while_no_other_pool_can_take_it(store: SqliteStore) -> None:
    place(store, "j")
    three = FakeBatch(requeues=3)
    assert MoveWatch(store, processor(store, lowpri(), elsewhere=None), lambda url: three).step(["fed"]) == 0
    assert store.list_moves("fed") == []
    assert MoveWatch(store, processor(store, lowpri(), elsewhere="x#p2"), lambda url: three).step(["fed"]) == 1
    (move,) = store.list_moves("fed")
    assert move.payload["move"]["why"] == "3 preemptions on p1"


def test_jobs_on_dedicated_nodes_that_ask_nothing_are_not_read(store: SqliteStore) -> None:
    place(store, "quiet")
    batch = FakeBatch()
    facts = PoolFacts("p1", URL, "lab2", "eastus", "standard_d2_v3", None, target_dedicated=1)
    watch = MoveWatch(store, processor(store, PoolSnapshot(facts, dedicated=NodeCounts(running=1))), lambda url: batch)
    assert watch.step(["fed"]) == 0 and not batch.listed


def test_a_move_asks_room_for_the_tasks_that_move_only() -> None:
    from batchfed_lab.proxy.move_prep import requirements_of
    from batchfed_lab.proxy.payload import parse_add
    from batchfed_lab.scheduler.replacement import tasks_to_move

    job = JobSpecification.model_validate({"id": "j", "tasks": [{"command": "true"}] * 10})
    payload = parse_add(add_payload(job))
    moving = tasks_to_move(list(job.task_definitions), [t.id for t in job.task_definitions[:7]])
    assert requirements_of(payload, None).need == 10
    assert requirements_of(payload, moving).need == 3


def test_a_move_goes_ahead_of_a_later_task_group_but_not_past_a_removal_or_a_held_action(store: SqliteStore) -> None:
    store.create_federation("fed", unique_job_ids=False, force=True)
    place(store, "k")
    place(store, "j")
    store.enqueue("fed", [NewAction("job", "terminate", "k", {})])
    job = JobSpecification.model_validate({"id": "j", "tasks": [{"command": "true"}]})
    (later,) = store.enqueue("fed", [NewAction("job", "add", "j", add_payload(job))])
    claims = {c.action_id: c for c in (store.claim("fed", "w"), store.claim("fed", "w2")) if c is not None}
    held = claims[later.id]
    watch = MoveWatch(store, processor(store, None), lambda url: FakeBatch())
    assert watch.step(["fed"]) == 0  # a worker is placing the later group now
    store.release(held, retry_in=0.0)
    assert watch.step(["fed"]) == 1
    assert [bool(a.payload.get("move")) for a in store.list_queued("fed", "j")] == [True, False]
    assert store.list_moves("fed", "k") == []  # its terminate is pending


def test_prefer_dedicated_is_a_requirement_of_the_move_that_keeps_out_mixed_pools() -> None:
    import time as _time

    from batchfed_lab.proxy.move_prep import requirements_of
    from batchfed_lab.proxy.moves import move_payload
    from batchfed_lab.proxy.payload import parse_add
    from batchfed_lab.scheduler import decide_placement
    from batchfed_lab.scheduler.replacement import Judgement
    from batchfed_lab.store.records import ActionKind, Location

    job = JobSpecification.model_validate(
        {"id": "j", "federation_constraints": {"pool": {"low_priority_nodes": {"allow": True}}}, "tasks": [{"command": "true"}]}
    )
    loc = Location("fed", "j", ActionKind.JOB, URL, "lp", unique_ids=("a",))
    verdict = Judgement("move", "preempted", 3, "moved: 3 preemptions on lp", prefer_dedicated=True)
    first = move_payload(add_payload(job), loc, f"{URL}#lp", verdict, ["a"], 0.0)
    again = move_payload(first, loc, f"{URL}#lp", Judgement("move", "node_lost", 1, "moved: 1 node lost on lp"), ["b"], 1.0)
    mixed = PoolFacts("mixed", URL, "lab2", "eastus", "standard_d2_v3", None, target_dedicated=4, target_low_priority=4)
    dedicated = PoolFacts("ded", URL, "lab2", "eastus", "standard_d2_v3", None, target_dedicated=1)
    snaps = [PoolSnapshot(mixed, dedicated=NodeCounts(idle=4)), PoolSnapshot(dedicated, dedicated=NodeCounts(idle=1))]
    for payload in (first, again):  # the requirement stays for every later move
        req = requirements_of(parse_add(payload), None)
        decision = decide_placement(req, snaps, _time.time(), "largest-fit", job_id="j", homes={}, unique_job_ids=True)
        assert decision.pool == dedicated.key
        (why,) = [v.reason for v in decision.verdicts if v.pool == mixed.key]
        assert "low-priority pools not allowed" in why
