"""The dispatcher's passes look at what can need them: pools with a timer or a change pending,
jobs with queued tasks, and every pool once a second as a safety net. Driven pass by pass on an
engine without its dispatcher thread, through the same API handlers the server calls."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from batchfed_lab.localbatch.api import Request, Response, jobs, pools, tasks
from batchfed_lab.localbatch.engine import Engine, Options
from batchfed_lab.localbatch.store import Store

ACCOUNT = "acct"
IMAGE = {"imageReference": {"publisher": "p", "offer": "o", "sku": "s"}, "nodeAgentSKUId": "batch.node.ubuntu 22.04"}


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    eng = Engine(tmp_path / "lb", Options(allocation_delay=0.0))
    for d in (eng.dir, eng.tasks_root, eng.nodes_root):
        d.mkdir(parents=True, exist_ok=True)
    eng.store = Store(eng.dir / "state.sqlite")
    try:
        yield eng
    finally:
        with eng.lock:
            for rec in list(eng.runs.values()):
                rec.run.kill("test over")
        for rec in list(eng.runs.values()):
            rec.run.join(5)
        eng.store.close()


def call(eng: Engine, handler, route: str, *args: str, body: object = None, method: str = "POST") -> Response:
    req = Request(method, ACCOUNT, route, args, {}, body, {}, f"http://127.0.0.1/accounts/{ACCOUNT}")
    return handler(eng, req)


def new_pool(eng: Engine, pool_id: str, dedicated: int = 1, low: int = 0) -> None:
    body = {
        "id": pool_id,
        "vmSize": "standard_d2s_v3",
        "virtualMachineConfiguration": IMAGE,
        "targetDedicatedNodes": dedicated,
        "targetLowPriorityNodes": low,
    }
    call(eng, pools.create_pool, "/pools", body=body)


def one_pass(eng: Engine, *, sweep: bool = False) -> None:
    """A dispatcher pass; without ``sweep`` the once-a-second look at every pool is not due."""
    with eng.lock, eng.store_batch():
        eng._next_sweep = 0.0 if sweep else time.monotonic() + 60
        eng._tick()
        eng._dispatch()


def pool(eng: Engine, pool_id: str):
    return eng.accounts[ACCOUNT].pools[pool_id]


def restless(eng: Engine) -> set[str]:
    return {key for _account, key in eng._restless}


def test_a_resized_pool_is_looked_at_until_its_nodes_are_there_then_left_alone(engine):
    new_pool(engine, "a", dedicated=2)
    assert restless(engine) == {"a"} and pool(engine, "a").doc["allocationState"] == "resizing"
    one_pass(engine)
    p = pool(engine, "a")
    assert (p.doc["currentDedicatedNodes"], p.doc["allocationState"]) == (2, "steady")
    assert restless(engine) == set()


def test_a_stopped_resize_is_steady_on_the_next_pass_not_at_the_next_sweep(engine):
    engine.options.allocation_delay = 3600.0
    new_pool(engine, "slow", dedicated=2)
    one_pass(engine)
    assert pool(engine, "slow").doc["allocationState"] == "resizing" and restless(engine) == {"slow"}
    call(engine, pools.stop_resize, "/pools/slow/stopresize", "slow")
    one_pass(engine)
    p = pool(engine, "slow")
    assert (p.doc["allocationState"], p.doc["currentDedicatedNodes"], p.doc["targetDedicatedNodes"]) == ("steady", 0, 0)
    assert restless(engine) == set()


def test_preempted_nodes_keep_their_pool_restless_until_they_return(engine):
    new_pool(engine, "lp", dedicated=0, low=2)
    one_pass(engine)
    assert restless(engine) == set()
    with engine.lock:
        engine.preempt(pool(engine, "lp"), None, 0.05)
    one_pass(engine)
    assert restless(engine) == {"lp"}
    assert all(n.preempted_until is not None for n in pool(engine, "lp").nodes)
    time.sleep(0.1)
    one_pass(engine)
    assert all(n.preempted_until is None for n in pool(engine, "lp").nodes)
    assert restless(engine) == set()


def test_a_change_that_skipped_watch_is_still_seen_by_the_sweep(engine):
    new_pool(engine, "b", dedicated=1)
    one_pass(engine)
    with engine.lock:
        pool(engine, "b").nodes.clear()  # as a code path that forgot to call watch() would
    one_pass(engine)
    assert pool(engine, "b").doc["currentDedicatedNodes"] == 1  # not looked at: quiet
    one_pass(engine, sweep=True)
    assert pool(engine, "b").doc["currentDedicatedNodes"] == 0


def test_a_pass_starts_tasks_of_jobs_with_queued_tasks_and_forgets_emptied_jobs(engine):
    new_pool(engine, "w", dedicated=1)
    one_pass(engine)
    for job_id in ("idle", "busy"):
        call(engine, jobs.create_job, "/jobs", body={"id": job_id, "poolInfo": {"poolId": "w"}})
    assert engine._queued == set()  # no task queued: no job for the dispatcher to look at
    call(engine, tasks.add_task, "/jobs/busy/tasks", "busy", body={"id": "t1", "commandLine": "true"})
    (job,) = engine._queued
    assert job.doc["id"] == "busy"
    one_pass(engine)
    task = job.tasks["t1"]
    assert task.state in ("running", "completed")
    one_pass(engine)
    assert engine._queued == set()


def job_with_a_waiting_task(eng: Engine, job_id: str) -> None:
    """A job whose one task waits: its pool has no node."""
    new_pool(eng, f"{job_id}-pool", dedicated=0)
    one_pass(eng)
    call(eng, jobs.create_job, "/jobs", body={"id": job_id, "poolInfo": {"poolId": f"{job_id}-pool"}})
    call(eng, tasks.add_task, f"/jobs/{job_id}/tasks", job_id, body={"id": "t", "commandLine": "true"})


def test_a_deleted_job_leaves_the_queue_of_the_dispatcher(engine):
    job_with_a_waiting_task(engine, "gone")
    one_pass(engine)
    assert len(engine._queued) == 1  # no node: the task waits, its job stays looked at
    call(engine, jobs.delete_job, "/jobs/gone", "gone", method="DELETE")
    one_pass(engine)
    assert engine._queued == set()


def test_an_ended_job_whose_tasks_never_ran_is_not_looked_at_after_a_restart(engine):
    job_with_a_waiting_task(engine, "ended")
    call(engine, jobs.terminate_job, "/jobs/ended/terminate", "ended")
    one_pass(engine)
    assert engine.accounts[ACCOUNT].jobs["ended"].state == "completed"

    again = Engine(engine.dir, engine.options)  # a restart: the saved state loaded again
    again.store = Store(engine.dir / "state.sqlite")
    try:
        with again.lock:
            again._load()
        one_pass(again)
        assert again._queued == set()  # its waiting task stays active, but the job never runs again
    finally:
        again.store.close()
