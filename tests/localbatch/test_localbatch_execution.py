"""Tasks really run: slot limits, wall-clock kills, retries, multi-instance, containers, preemption."""

from __future__ import annotations

import datetime
import os

import pytest
from azure.batch import models as bm
from azure.core.exceptions import ResourceNotFoundError

from batchfed_lab import runtime
from batchfed_lab.localbatch import control

from .lb_helpers import make_job, make_pool, sh, stdout_of, wait_for, wait_tasks_done


def _max_overlap(intervals: list[tuple[float, float]]) -> int:
    events = sorted([(s, 1) for s, _ in intervals] + [(e, -1) for _, e in intervals])  # ends sort before starts
    peak = now = 0
    for _, step in events:
        now += step
        peak = max(peak, now)
    return peak


def test_fifty_tasks_never_exceed_the_slots(client):
    make_pool(client, dedicated=2, slots=2)
    make_job(client)
    # each task records its own start and end so the check does not rely on the server's clock alone
    cmd = sh("date +%s.%N; sleep 0.15; date +%s.%N")
    client.create_tasks("job", [bm.BatchTaskCreateOptions(id=f"t{i:02d}", command_line=cmd) for i in range(50)])
    tasks = wait_tasks_done(client, "job", 50, timeout=60)
    assert all(t.execution_info.result == bm.BatchTaskExecutionResult.SUCCESS for t in tasks)
    server_view = [(t.execution_info.start_time.timestamp(), t.execution_info.end_time.timestamp()) for t in tasks]
    assert _max_overlap(server_view) <= 4
    process_view = []
    for t in tasks:
        start, end = (float(x) for x in stdout_of(client, "job", t.id).split())
        process_view.append((start, end))
    assert _max_overlap(process_view) <= 4
    assert _max_overlap(process_view) >= 3  # and the slots were really used in parallel
    nodes = {t.node_info.node_id for t in tasks}
    assert len(nodes) == 2


def test_required_slots_and_max_parallel_tasks(client):
    make_pool(client, dedicated=1, slots=4)
    make_job(client, "wide")
    cmd = sh("date +%s.%N; sleep 0.2; date +%s.%N")
    client.create_tasks("wide", [bm.BatchTaskCreateOptions(id=f"w{i}", command_line=cmd, required_slots=3) for i in range(3)])
    tasks = wait_tasks_done(client, "wide", 3)
    spans = [tuple(float(x) for x in stdout_of(client, "wide", t.id).split()) for t in tasks]
    assert _max_overlap(spans) == 1  # 3 slots each on a 4-slot node: one at a time
    make_job(client, "narrow", max_parallel_tasks=1)
    client.create_tasks("narrow", [bm.BatchTaskCreateOptions(id=f"n{i}", command_line=cmd) for i in range(3)])
    tasks = wait_tasks_done(client, "narrow", 3)
    spans = [tuple(float(x) for x in stdout_of(client, "narrow", t.id).split()) for t in tasks]
    assert _max_overlap(spans) == 1


def test_wall_clock_limit_kills_the_process_group(client):
    make_pool(client, dedicated=1)
    make_job(client)
    client.create_task(
        "job",
        bm.BatchTaskCreateOptions(
            id="slow",
            command_line=sh("echo $$ > pid; sleep 60 & echo $! > child; wait"),
            constraints=bm.BatchTaskConstraints(max_wall_clock_time=datetime.timedelta(seconds=1), max_task_retry_count=3),
        ),
    )
    (task,) = wait_tasks_done(client, "job", 1, timeout=15)
    info = task.execution_info
    assert info.result == bm.BatchTaskExecutionResult.FAILURE
    assert info.failure_info.code == "MaxWallClockTimeExceeded"
    assert info.retry_count == 0  # a wall-clock kill is not retried
    assert 0.9 <= (info.end_time - info.start_time).total_seconds() < 10
    for name in ("pid", "child"):
        pid = int(stdout_of(client, "job", "slow", f"wd/{name}"))
        assert not runtime.alive(pid), f"{name} {pid} survived the kill"


def test_retries_then_success_and_exhausted_retries(client):
    make_pool(client, dedicated=1, slots=2)
    make_job(client)
    flaky = sh('n=$(cat count 2>/dev/null || echo 0); n=$((n+1)); echo $n > count; echo "attempt $n"; test $n -ge 3')
    client.create_task(
        "job",
        bm.BatchTaskCreateOptions(id="flaky", command_line=flaky, constraints=bm.BatchTaskConstraints(max_task_retry_count=3)),
    )
    client.create_task(
        "job",
        bm.BatchTaskCreateOptions(
            id="hopeless", command_line=sh("exit 7"), constraints=bm.BatchTaskConstraints(max_task_retry_count=2)
        ),
    )
    done = {t.id: t for t in wait_tasks_done(client, "job", 2)}
    assert done["flaky"].execution_info.result == bm.BatchTaskExecutionResult.SUCCESS
    assert done["flaky"].execution_info.retry_count == 2
    assert done["flaky"].execution_info.last_retry_time is not None
    assert stdout_of(client, "job", "flaky") == "attempt 3\n"  # stdout belongs to the last attempt
    assert done["hopeless"].execution_info.result == bm.BatchTaskExecutionResult.FAILURE
    assert (done["hopeless"].execution_info.retry_count, done["hopeless"].execution_info.exit_code) == (2, 7)
    # reactivate gives a failed task another round of attempts
    client.reactivate_task("job", "hopeless")
    wait_for(
        lambda: (
            client.get_task("job", "hopeless").state == bm.BatchTaskState.COMPLETED
            and client.get_task("job", "hopeless").execution_info.retry_count == 2
        ),
        what="the reactivated task to fail again",
    )


def test_multi_instance_task_gets_distinct_nodes_and_host_list(client):
    make_pool(client, dedicated=3, slots=2, enable_inter_node_communication=True)
    make_job(client)
    client.create_task(
        "job",
        bm.BatchTaskCreateOptions(
            id="mpi",
            command_line=sh(
                'echo "hosts=$AZ_BATCH_HOST_LIST master=$AZ_BATCH_IS_CURRENT_NODE_MASTER node=$AZ_BATCH_NODE_ID"; '
                'ls "$AZ_BATCH_TASK_SHARED_DIR"/coord-* | wc -l'
            ),
            multi_instance_settings=bm.MultiInstanceSettings(
                number_of_instances=3,
                coordination_command_line=sh(
                    'echo "$AZ_BATCH_NODE_ID $AZ_BATCH_IS_CURRENT_NODE_MASTER" > "$AZ_BATCH_TASK_SHARED_DIR/coord-$AZ_BATCH_NODE_ID"'
                ),
            ),
        ),
    )
    (task,) = wait_tasks_done(client, "job", 1)
    assert task.execution_info.result == bm.BatchTaskExecutionResult.SUCCESS
    first, count = stdout_of(client, "job", "mpi").strip().split("\n")
    fields = dict(kv.split("=", 1) for kv in first.split())
    hosts = fields["hosts"].split(",")
    assert len(hosts) == 3 and len(set(hosts)) == 3
    assert fields["master"] == "true" and fields["node"] == task.node_info.node_id
    assert count.strip() == "3"  # the coordination command ran on all three nodes
    subtasks = list(client.list_subtasks("job", "mpi"))
    nodes = {task.node_info.node_id} | {s.node_info.node_id for s in subtasks}
    assert len(subtasks) == 2 and len(nodes) == 3
    assert all(s.state == bm.BatchSubtaskState.COMPLETED and s.exit_code == 0 for s in subtasks)


def test_multi_instance_waits_for_enough_nodes(client):
    make_pool(client, dedicated=2, enable_inter_node_communication=True)
    make_job(client)
    client.create_task(
        "job",
        bm.BatchTaskCreateOptions(
            id="big",
            command_line="true",
            multi_instance_settings=bm.MultiInstanceSettings(number_of_instances=3, coordination_command_line="true"),
        ),
    )
    client.create_task("job", bm.BatchTaskCreateOptions(id="small", command_line="true"))
    wait_for(lambda: client.get_task("job", "small").state == bm.BatchTaskState.COMPLETED, what="the small task")
    assert client.get_task("job", "big").state == bm.BatchTaskState.ACTIVE
    client.begin_resize_pool("pool", bm.BatchPoolResizeOptions(target_dedicated_nodes=3), polling_interval=0.05).result()
    wait_for(lambda: client.get_task("job", "big").state == bm.BatchTaskState.COMPLETED, what="the big task")


def test_container_task_without_an_engine_fails_clearly(client):
    if os.system("docker info >/dev/null 2>&1") == 0:
        pytest.skip("a container engine answers here; this checks the no-engine path")
    make_pool(client, dedicated=1)
    make_job(client)
    client.create_task(
        "job",
        bm.BatchTaskCreateOptions(
            id="ctr", command_line="echo hi", container_settings=bm.BatchTaskContainerSettings(image_name="busybox:latest")
        ),
    )
    (task,) = wait_tasks_done(client, "job", 1, timeout=40)
    assert task.execution_info.result == bm.BatchTaskExecutionResult.FAILURE
    assert task.execution_info.failure_info.code == "ContainerEngineUnavailable"
    assert "busybox:latest" in task.execution_info.failure_info.message


def test_preemption_requeues_without_counting_a_retry(client, account, lb_workspace):
    make_pool(client, dedicated=0, low=2)
    make_job(client)
    # the first attempt waits (far longer than the test); once requeued, the attempt finishes
    cmd = sh("if [ -e first ]; then echo second; else touch first; sleep 60; fi")
    client.create_tasks("job", [bm.BatchTaskCreateOptions(id=f"lp{i}", command_line=cmd) for i in range(2)])
    wait_for(lambda: all(_has_file(client, f"lp{i}", "wd/first") for i in range(2)), what="both first attempts running")
    result = control.preempt(account, "pool", duration_seconds=0.5, workspace=lb_workspace)
    assert sorted(result["requeuedTasks"]) == ["job/lp0", "job/lp1"] and len(result["preemptedNodes"]) == 2
    tasks = wait_tasks_done(client, "job", 2)
    for t in tasks:
        assert t.execution_info.result == bm.BatchTaskExecutionResult.SUCCESS
        assert (t.execution_info.requeue_count, t.execution_info.retry_count) == (1, 0)
        assert stdout_of(client, "job", t.id) == "second\n"
    assert {n.state for n in client.list_nodes("pool")} == {bm.BatchNodeState.IDLE}


def test_preempted_nodes_take_no_work_until_they_return(client, account, lb_workspace):
    make_pool(client, dedicated=0, low=1)
    make_job(client)
    control.preempt(account, "pool", duration_seconds=60, workspace=lb_workspace)
    assert {n.state for n in client.list_nodes("pool")} == {bm.BatchNodeState.PREEMPTED}
    (counts,) = [c for c in client.list_pool_node_counts() if c.pool_id == "pool"]
    assert (counts.low_priority.preempted, counts.low_priority.idle) == (1, 0)
    client.create_task("job", bm.BatchTaskCreateOptions(id="waits", command_line="true"))
    make_pool(client, "other", dedicated=1)  # a dispatcher pass happens; the task must still wait
    make_job(client, "other-job", "other")
    client.create_task("other-job", bm.BatchTaskCreateOptions(id="runs", command_line="true"))
    wait_tasks_done(client, "other-job", 1)
    assert client.get_task("job", "waits").state == bm.BatchTaskState.ACTIVE


def test_job_preparation_runs_once_per_node(client):
    make_pool(client, dedicated=1, slots=2)
    make_job(
        client,
        job_preparation_task=bm.BatchJobPreparationTask(
            command_line=sh('echo prepared >> "$AZ_BATCH_NODE_SHARED_DIR/prep-count"')
        ),
    )
    client.create_tasks(
        "job",
        [bm.BatchTaskCreateOptions(id=f"t{i}", command_line=sh('cat "$AZ_BATCH_NODE_SHARED_DIR/prep-count"')) for i in range(4)],
    )
    tasks = wait_tasks_done(client, "job", 4)
    assert all(stdout_of(client, "job", t.id) == "prepared\n" for t in tasks)


def test_terminate_and_delete_kill_running_processes(client):
    make_pool(client, dedicated=1, slots=2)
    make_job(client)
    for tid in ("a", "b"):
        client.create_task("job", bm.BatchTaskCreateOptions(id=tid, command_line=sh("echo $$ > pid; exec sleep 60")))
    wait_for(lambda: client.get_job_task_counts("job").task_counts.running == 2, what="both tasks running")
    pids = {tid: int(wait_for(lambda tid=tid: _read_pid(client, tid), what=f"{tid}'s pid")) for tid in ("a", "b")}
    client.terminate_task("job", "a")
    task = client.get_task("job", "a")
    assert task.state == bm.BatchTaskState.COMPLETED and task.execution_info.failure_info.code == "TaskEnded"
    wait_for(lambda: not runtime.alive(pids["a"]), what="the terminated task's process to die")
    client.begin_delete_job("job", polling_interval=0.05).result()
    wait_for(lambda: not runtime.alive(pids["b"]), what="the deleted job's process to die")


def _has_file(client, tid: str, name: str) -> bool:
    try:
        stdout_of(client, "job", tid, name)
        return True
    except ResourceNotFoundError:
        return False


def _read_pid(client, tid: str) -> str | None:
    try:
        return stdout_of(client, "job", tid, "wd/pid").strip() or None
    except ResourceNotFoundError:
        return None
