"""Re-placement end to end (issue 23): for each failure kind, a job placed on a pool that
fails it finishes on another pool, with the move recorded and explained, and no finished
task runs again.

Everything is real: a detached proxy watching every 0.2 s, localbatch causing each trigger
(pool deletion, unusable node, failed start task, preemption, exit code 137, a busy pool),
SQLite. Each test places its job on a pool of its own in account lab2 (the federation holds
only that pool then), then adds the safe pool of lab1 that the job moves to.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from federation_stack import Stack, running_stack, wait_for

from batchfed_lab import widgets
from batchfed_lab.cli import main
from batchfed_lab.config import load_pool
from batchfed_lab.localbatch import control
from batchfed_lab.proxy import lifecycle
from batchfed_lab.store import ActionState
from batchfed_lab.store.base import CRASHPOINT_ENV

FEDERATION = """\
federation:
  proxy_options:
    polling_interval: {federations: 5, actions: 0.5, recurrences: 5, moves: 0.2}
    logging: {level: debug}
    scheduling:
      after_success: {blackout_interval: 0, evaluate_autoscale: false}
"""

# finishes at once on the safe pool; on any other pool it waits (so the failure finds it there)
WAITS_ELSEWHERE = 'if [ "$AZ_BATCH_POOL_ID" = safe ]; then echo done; else sleep 60; fi'


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with running_stack(tmp_path_factory.mktemp("moves") / "ws", federation_yaml=FEDERATION) as s:
        make_pool(s, "lab1", "safe", dedicated=2, slots=4)
        s.start_proxy()
        yield s


def make_pool(stack: Stack, account: str, pid: str, *, dedicated: int = 1, low: int = 0, slots: int = 1) -> None:
    spec = {
        "pool_specification": {
            "id": pid,
            "vm_size": "standard_d2_v3",
            "location": "eastus" if account == "lab2" else "westeurope",
            "vm_count": {"dedicated": dedicated, "low_priority": low},
            "task_slots_per_node": slots,
        }
    }
    acct = stack.account(account)
    acct.create_pool(load_pool(spec).pool_specification)
    wait_for(lambda: next(p for p in acct.list_pools() if p.pool_id == pid).allocation_state == "steady", 20, f"{pid} steady")


def take_pool(stack: Stack, fed: str, pool: str, account: str) -> None:
    """Add ``pool`` to ``fed``, taking it from an earlier test's federation."""
    for other in stack.client.federations():
        if any(m.pool_id == pool for m in stack.client.pools(other.id)):
            stack.client.remove_pools(other.id, [pool])
    stack.client.add_pools(fed, pool_ids=[pool], batch_service_url=stack.urls[account])


def job_yaml(job_id: str, commands: list[str], rules: str = "{}", constraints: str = "") -> str:
    tasks = "".join(f"  - {{id: t{i}, command: '{c}'}}\n" for i, c in enumerate(commands))
    pool = f"    pool: {constraints}\n" if constraints else ""
    return f"job_specifications:\n- id: {job_id}\n  federation_constraints:\n{pool}    replacement: {rules}\n  tasks:\n{tasks}"


def place_then_move(
    stack: Stack,
    fed: str,
    pool: str,
    body: str,
    trigger: Callable[[], Any] | None,
    *,
    ready: Callable[[], bool] | None = None,
    after: Callable[[], Any] | None = None,
) -> dict[str, Any]:
    """Submit ``body`` to a federation of ``pool`` alone, wait until it runs there (``ready``),
    add the safe pool, fire ``trigger`` and wait for the move to be placed; the move's action."""
    stack.federation(fed, [])
    take_pool(stack, fed, pool, "lab2")
    sub = stack.client.submit(fed, body)
    sub.wait(timeout=30)
    job_id = sub.actions()[0].target_id
    acct = stack.account("lab2")
    wait_for(ready or (lambda: any(t.state == "running" for t in acct.list_tasks(job_id))), 30, "the job to run there")
    take_pool(stack, fed, "safe", "lab1")
    if trigger is not None:
        trigger()
    if after is not None:
        after()
    store = stack.client.store
    wait_for(lambda: any(m.state is ActionState.PLACED for m in store.list_moves(fed, job_id)), 60, "the move to be placed")
    (move,) = store.list_moves(fed, job_id)
    return {"job": job_id, "move": move, "old": acct, "new": stack.account("lab1")}


def assert_finished_once(m: dict[str, Any], finished_there: set[str], moved: set[str]) -> None:
    """The moved tasks completed on the safe pool; the finished ones ran only on the old pool."""
    job = m["job"]
    new_tasks = wait_for(
        lambda: (ts := m["new"].list_tasks(job)) and all(t.state == "completed" for t in ts) and ts, 60, "moved tasks done"
    )
    assert {t.id for t in new_tasks} == moved
    assert all(t.exit_code == 0 for t in new_tasks)
    old = {t.id: t for t in m["old"].list_tasks(job)}
    assert {i for i, t in old.items() if t.state == "completed" and t.exit_code == 0 and not t.failure_code} == finished_there


def assert_recorded(stack: Stack, fed: str, m: dict[str, Any], why: str) -> None:
    move = m["move"]
    record = move.payload["move"]
    assert record["why"] == why and record["from"]["pool_id"] in why
    assert move.progress["placed_pool"].endswith("#safe")
    loc = {x.pool_id: x for x in stack.client.store.get_locations(fed, m["job"])}
    assert loc[record["from"]["pool_id"]].terminated_at is not None and loc["safe"].terminated_at is None
    frame = stack.client.moves_frame(fed, m["job"])
    (row,) = frame.to_dict("records")
    assert (row["from_pool"], row["to_pool"], row["why"]) == (record["from"]["pool_id"], "safe", why)
    assert row["state"] == "placed" and row["when"] is not None
    (line,) = stack.client.move_history(fed, m["job"])
    assert line.startswith(f"{record['from']['pool_id']} → safe: {why} (")
    # what the placements widget counts: a task that moved counts once, where it went
    current = stack.client.current_tasks(fed, m["job"])
    assert len({t.task.id for t in current}) == len(current) and all(t.task.state == "completed" for t in current)


def test_a_deleted_pool_moves_its_job_and_finished_tasks_stay_done(stack: Stack) -> None:
    make_pool(stack, "lab2", "gone1", dedicated=1, slots=1)
    body = job_yaml("gone-job", ["echo first", WAITS_ELSEWHERE, WAITS_ELSEWHERE])
    acct = stack.account("lab2")

    def first_done_second_running() -> bool:
        ts = {t.id: t.state for t in acct.list_tasks("gone-job")}
        return ts.get("t0") == "completed" and ts.get("t1") == "running"

    m = place_then_move(stack, "f-gone", "gone1", body, lambda: acct.delete_pool("gone1"), ready=first_done_second_running)
    assert_finished_once(m, {"t0"}, {"t1", "t2"})
    assert_recorded(stack, "f-gone", m, "pool gone1 is gone")
    ran = CliRunner().invoke(main, ["fed", "jobs", "list", "f-gone", "--moves", "--raw"], env={"BATCHFED_HOME": str(stack.root)})
    assert ran.exit_code == 0, ran.output
    (raw,) = json.loads(ran.stdout)
    assert (raw["job_id"], raw["from_pool"], raw["to_pool"], raw["why"], raw["kind"]) == (
        "gone-job",
        "gone1",
        "safe",
        "pool gone1 is gone",
        "pool_gone",
    )


def test_an_unusable_node_moves_its_job(stack: Stack) -> None:
    make_pool(stack, "lab2", "lost1")
    body = job_yaml("lost-job", [WAITS_ELSEWHERE])
    ws = stack.client.workspace
    m = place_then_move(
        stack, "f-lost", "lost1", body, lambda: control.set_node_condition("lab2", "lost1", "unusable", workspace=ws)
    )
    assert_finished_once(m, set(), {"t0"})
    assert_recorded(stack, "f-lost", m, "1 node lost on lost1")


def test_a_failed_start_task_moves_a_job_that_asks_for_it(stack: Stack) -> None:
    make_pool(stack, "lab2", "sf1")
    body = job_yaml("sf-job", [WAITS_ELSEWHERE], "{start_failed: {move: true}}")
    ws = stack.client.workspace
    trigger = lambda: control.set_node_condition("lab2", "sf1", "starttaskfailed", workspace=ws)  # noqa: E731
    m = place_then_move(stack, "f-sf", "sf1", body, trigger)
    assert_finished_once(m, set(), {"t0"})
    assert_recorded(stack, "f-sf", m, "start task failed on 1 node of sf1")


def test_the_third_preemption_in_a_row_moves_the_job(stack: Stack) -> None:
    make_pool(stack, "lab2", "lp1", dedicated=0, low=1)
    body = job_yaml("lp-job", [WAITS_ELSEWHERE])
    acct, ws = stack.account("lab2"), stack.client.workspace

    def running() -> bool:
        return any(t.state == "running" for t in acct.list_tasks("lp-job"))

    def storm() -> None:
        for _ in range(3):
            wait_for(running, 30, "the task to run again")
            control.preempt("lab2", "lp1", duration_seconds=0.1, workspace=ws)

    m = place_then_move(stack, "f-lp", "lp1", body, storm)
    assert_finished_once(m, set(), {"t0"})
    assert_recorded(stack, "f-lp", m, "3 preemptions on lp1")


def test_a_listed_exit_code_moves_the_job(stack: Stack) -> None:
    make_pool(stack, "lab2", "oom1")
    oom = 'if [ "$AZ_BATCH_POOL_ID" = safe ]; then echo done; else exit 137; fi'
    body = job_yaml("oom-job", ["echo fine", oom], "{exit_code: {move: true, codes: [137]}}")
    acct = stack.account("lab2")

    def both_ended() -> bool:
        ts = acct.list_tasks("oom-job")
        return len(ts) == 2 and all(t.state == "completed" for t in ts)

    m = place_then_move(stack, "f-oom", "oom1", body, None, ready=both_ended)
    assert_finished_once(m, {"t0"}, {"t1"})
    assert_recorded(stack, "f-oom", m, "1 task exited with 137 on oom1")


def test_a_job_stalled_on_a_busy_pool_moves_where_there_is_room(stack: Stack) -> None:
    make_pool(stack, "lab2", "busy1")
    acct = stack.account("lab2")
    from batchfed_lab.batch.jobs import JobSettings
    from batchfed_lab.config.jobs import TaskDefinition

    acct.create_job("blocker", "busy1", JobSettings())
    acct.add_tasks("blocker", [TaskDefinition("hog", "sleep 60")])
    wait_for(lambda: acct.get_task("blocker", "hog").state == "running", 30, "the pool to be busy")
    body = job_yaml("stall-job", ["echo done"], "{stalled: {move: true, after: 1}}")
    m = place_then_move(stack, "f-stall", "busy1", body, None, ready=lambda: True)
    assert_finished_once(m, set(), {"t0"})
    assert_recorded(stack, "f-stall", m, m["move"].payload["move"]["why"])
    assert (
        m["move"].payload["move"]["why"].startswith("queued ")
        and "busy1 with no task started" in m["move"].payload["move"]["why"]
    )
    acct.terminate_job("blocker")


@pytest.mark.parametrize("point", ["move.terminated", "move.journaled"])
def test_a_proxy_killed_during_a_move_loses_nothing_and_runs_nothing_twice(stack: Stack, point: str) -> None:
    ws = stack.client.workspace
    lifecycle.stop(ws, all=True)
    crashing, _ = lifecycle.start(ws, config=stack.config, extra_env={CRASHPOINT_ENV: point})
    stack.started.append(crashing.pid)
    pool = f"crash{len(point)}"
    make_pool(stack, "lab2", pool, dedicated=1, slots=1)
    acct = stack.account("lab2")
    job = f"crash-job-{len(point)}"

    def first_done_second_running() -> bool:
        ts = {t.id: t.state for t in acct.list_tasks(job)}
        return ts.get("t0") == "completed" and ts.get("t1") == "running"

    def restart_after_the_crash() -> None:
        wait_for(lambda: not lifecycle.pid_alive(crashing.pid), 30, f"the proxy to die at {point}")
        stack.start_proxy()

    body = job_yaml(job, ["echo first", WAITS_ELSEWHERE, WAITS_ELSEWHERE])
    m = place_then_move(
        stack,
        f"f-{pool}",
        pool,
        body,
        lambda: acct.delete_pool(pool),
        ready=first_done_second_running,
        after=restart_after_the_crash,
    )
    assert_finished_once(m, {"t0"}, {"t1", "t2"})
    assert_recorded(stack, f"f-{pool}", m, f"pool {pool} is gone")
    assert len(stack.client.store.list_moves(f"f-{pool}")) == 1


def test_explain_shows_the_rules_that_would_apply(stack: Stack) -> None:
    stack.federation("f-explain", [])
    take_pool(stack, "f-explain", "safe", "lab1")
    body = job_yaml("x", ["true"], "{exit_code: {move: true, codes: [137]}}")
    (exp,) = stack.client.explain("f-explain", body)
    assert "exit_code: move at once (exit codes 137); at most 3 moves" in exp.replacement
    assert "pool_gone: move at once; at most 3 moves" in exp.replacement
    view = widgets.ExplainView([exp])
    assert "re-placement: exit_code: move at once (exit codes 137)" in view._render_text()
    assert "if its pool fails it (re-placement): pool_gone: move at once" in view._render_html()
    jobs = stack.root / "explain-jobs.yaml"
    jobs.write_text(body)
    ran = CliRunner().invoke(main, ["fed", "explain", "f-explain", str(jobs)], env={"BATCHFED_HOME": str(stack.root)})
    assert ran.exit_code == 0, ran.output
    assert "  re-placement: stalled: off" in ran.stdout


def test_a_job_moves_to_another_pool_of_its_one_account_under_a_derived_batch_job_id(stack: Stack) -> None:
    """The commonest setup: one account, a low-priority and a dedicated pool. The terminated job
    keeps its id on the pool it left (Batch job ids are unique per account), so the move runs
    as ``<job>-moved-1``; the federation's verbs still reach it by the job's own id."""
    make_pool(stack, "lab2", "one-lp", dedicated=0, low=1)
    make_pool(stack, "lab2", "one-ded", dedicated=1)
    acct, ws, fed, job = stack.account("lab2"), stack.client.workspace, "f-one", "one-job"
    waits = 'if [ "$AZ_BATCH_POOL_ID" = one-ded ]; then echo moved-and-done; else sleep 60; fi'
    stack.federation(fed, [])
    take_pool(stack, fed, "one-lp", "lab2")
    rules = "{preempted: {prefer: dedicated, prefer_after: 3}}"
    stack.client.submit(fed, job_yaml(job, ["echo first", waits], rules, "{low_priority_nodes: {allow: true}}")).wait(timeout=30)

    def running() -> bool:
        ts = {t.id: t.state for t in acct.list_tasks(job)}
        return ts.get("t0") == "completed" and ts.get("t1") == "running"

    wait_for(running, 30, "the job to run on the low-priority pool")
    take_pool(stack, fed, "one-ded", "lab2")
    for _ in range(3):
        wait_for(running, 30, "the task to run again")
        control.preempt("lab2", "one-lp", duration_seconds=0.1, workspace=ws)
    store = stack.client.store
    wait_for(lambda: any(m.state is ActionState.PLACED for m in store.list_moves(fed, job)), 60, "the move to be placed")
    (move,) = store.list_moves(fed, job)
    assert move.payload["move"]["prefer_dedicated"] and move.progress["placed_pool"].endswith("#one-ded")
    locs = {loc.pool_id: loc for loc in store.get_locations(fed, job)}
    assert (locs["one-lp"].batch_id, locs["one-ded"].batch_id) == (job, f"{job}-moved-1")
    assert locs["one-lp"].terminated_at is not None and locs["one-ded"].terminated_at is None
    wait_for(lambda: acct.get_task(f"{job}-moved-1", "t1").state == "completed", 60, "the moved task to finish")
    # the usual verbs, by the job's own id
    client = stack.client
    rows = {(t.pool_id, t.task.id): t for t in client.tasks(fed, job)}
    assert set(rows) == {("one-lp", "t0"), ("one-lp", "t1"), ("one-ded", "t1")}
    assert all(t.job_id == job for t in rows.values())
    current = client.current_tasks(fed, job)
    assert sorted((t.pool_id, t.task.id, t.task.state) for t in current) == [
        ("one-ded", "t1", "completed"),
        ("one-lp", "t0", "completed"),
    ]
    assert str(client.task_output(fed, job, "t1")).strip() == "moved-and-done"
    assert str(client.task_output(fed, job, "t0")).strip() == "first"
    assert client.task_output_bytes(fed, job, "t1", "stdout", 0, max_bytes=1 << 10).strip() == b"moved-and-done"
    logs = str(client.task_logs(fed, job))
    assert "moved-and-done" in logs and "first" in logs
    frame = client.jobs_frame(fed, job)
    assert set(frame["batch_job_id"]) == {job, f"{job}-moved-1"}
    client.delete(fed, [job])
    wait_for(lambda: not store.get_locations(fed, job), 30, "the job's locations to go")
    left = {j.id: j.state for j in acct.list_jobs()}
    assert all(left.get(i, "deleting") == "deleting" for i in (job, f"{job}-moved-1")), left


def test_a_move_is_placed_ahead_of_a_later_task_group_which_then_follows_it(stack: Stack) -> None:
    """A federation without unique job ids: the job's second task group waits (it wants
    dedicated nodes, and the job lives on the low-priority pool of the account). The move
    goes ahead of it; the group then joins the job where the move took it."""
    make_pool(stack, "lab2", "later-lp", dedicated=0, low=1)
    make_pool(stack, "lab2", "later-ded", dedicated=1, slots=2)
    acct, ws, fed, job = stack.account("lab2"), stack.client.workspace, "f-later", "later-job"
    stack.federation(fed, [], unique_job_ids=False)
    take_pool(stack, fed, "later-lp", "lab2")
    waits = 'if [ "$AZ_BATCH_POOL_ID" = later-ded ]; then echo done; else sleep 60; fi'
    first = job_yaml(job, [waits], "{}", "{low_priority_nodes: {allow: true}}")
    wants_dedicated = "  federation_constraints: {pool: {low_priority_nodes: {allow: false}}}\n"
    second = f"job_specifications:\n- id: {job}\n{wants_dedicated}  tasks:\n  - {{id: u0, command: 'echo second'}}\n"
    stack.client.submit(fed, first).wait(timeout=30)
    wait_for(lambda: any(t.state == "running" for t in acct.list_tasks(job)), 30, "the first group to run")
    stack.client.submit(fed, second)
    take_pool(stack, fed, "later-ded", "lab2")
    store = stack.client.store
    wait_for(lambda: any(a.state is ActionState.BLOCKED for a in store.list_queued(fed, job)), 30, "the second group to wait")
    for _ in range(3):
        wait_for(lambda: any(t.state == "running" for t in acct.list_tasks(job)), 30, "the task to run again")
        control.preempt("lab2", "later-lp", duration_seconds=0.1, workspace=ws)
    wait_for(lambda: not store.list_queued(fed, job), 60, "the move and the second group to be placed")
    _, move, group = store.list_actions(fed, target_id=job)
    assert move.payload.get("move") and not group.payload.get("move")
    assert move.placed_at is not None and group.placed_at is not None and move.placed_at <= group.placed_at
    assert move.progress["placed_pool"].endswith("#later-ded") and group.progress["placed_pool"].endswith("#later-ded")
    moved = f"{job}-moved-1"
    done = wait_for(
        lambda: (ts := acct.list_tasks(moved)) and all(t.state == "completed" for t in ts) and ts, 60, "both groups done there"
    )
    assert {t.id for t in done} == {"t0", "u0"}


def test_a_start_task_that_really_fails_moves_a_job_that_asks_for_it(stack: Stack) -> None:
    """A pool created with a start task (pool.yaml has none: through the Batch API). Its first
    node passes it and runs the job; then the start task breaks (say, a package mirror went
    away) and the node the pool grows by fails it for real: localbatch runs it, retries it and
    marks the node ``starttaskfailed``."""
    from azure.batch import models as bm

    # where a start task (run as nobody under root) can look: not below pytest's 0700 folders
    shared = Path(tempfile.mkdtemp(prefix="batchfed-sf-", dir="/tmp"))
    shared.chmod(0o755)
    try:
        broken = shared / "broken"
        script = f"if [ -e {broken} ]; then exit 3; fi"
        start = bm.BatchStartTask(command_line="/bin/sh -c '" + script + "'", max_task_retry_count=1, wait_for_success=True)
        image = bm.BatchVmImageReference(publisher="canonical", offer="0001-com-ubuntu-server-jammy", sku="22_04-lts")
        vm = bm.VirtualMachineConfiguration(image_reference=image, node_agent_sku_id="batch.node.ubuntu 22.04")
        raw = control.batch_client("lab2", workspace=stack.client.workspace)
        options = bm.BatchPoolCreateOptions(
            id="sf-real", vm_size="standard_d2_v3", virtual_machine_configuration=vm, target_dedicated_nodes=1, start_task=start
        )
        raw.create_pool(options)
        acct = stack.account("lab2")
        wait_for(
            lambda: any(n.state == bm.BatchNodeState.IDLE for n in raw.list_nodes("sf-real")), 20, "the first node to pass it"
        )
        body = job_yaml("sf-real-job", [WAITS_ELSEWHERE], "{start_failed: {move: true}}")

        def break_it_and_grow() -> None:
            broken.touch()
            acct.resize_pool("sf-real", dedicated=2)

        m = place_then_move(stack, "f-sf-real", "sf-real", body, break_it_and_grow)
        failed = [n for n in raw.list_nodes("sf-real") if n.state == bm.BatchNodeState.START_TASK_FAILED]
        assert [(n.start_task_info.exit_code, n.start_task_info.retry_count) for n in failed] == [(3, 1)]
        assert_finished_once(m, set(), {"t0"})
        assert_recorded(stack, "f-sf-real", m, "start task failed on 1 node of sf-real")
    finally:
        shutil.rmtree(shared, ignore_errors=True)
