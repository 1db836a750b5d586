"""What Azure Batch does that a task runner could easily skip: command lines run without a
shell, exit conditions acting on the job and on dependent tasks, and pool start tasks gating
their nodes. Each rule is the one Azure's documentation states for api-version 2025-06-01."""

from __future__ import annotations

import pytest
from azure.batch import models as bm
from azure.core.exceptions import HttpResponseError

from batchfed_lab import runtime
from batchfed_lab.localbatch import control

from .lb_helpers import make_job, make_pool, sh, stdout_of, wait_for, wait_tasks_done

EXIT_ACTION = bm.BatchTaskFailureMode.PERFORM_EXIT_OPTIONS_JOB_ACTION


def _task(tid: str, command: str, **kwargs) -> bm.BatchTaskCreateOptions:
    return bm.BatchTaskCreateOptions(id=tid, command_line=command, **kwargs)


def _done(client, job_id: str, task_id: str) -> bm.BatchTask:
    return wait_for(
        lambda: (t := client.get_task(job_id, task_id)).state == bm.BatchTaskState.COMPLETED and t,
        what=f"task {task_id} to complete",
    )


# == command lines ====================================================================================
def test_command_line_runs_without_a_shell(client):
    make_pool(client)
    make_job(client)
    client.create_tasks(
        "job",
        [
            # a pipe and a variable are plain arguments of echo: no shell reads them
            _task("pipe", "echo $AZ_BATCH_TASK_ID | tr a-z A-Z"),
            # quotes group words as a POSIX shell would, and are removed
            _task("quoted", "printf '%s|' \"a b\" c 'd e'"),
            # a shell builtin is no program: the task fails to start
            _task("builtin", "exit 3"),
            _task("missing", "no-such-program-here --flag"),
            # naming the shell gets shell features
            _task("shell", sh("echo $AZ_BATCH_TASK_ID | tr a-z A-Z; exit 4")),
        ],
    )
    done = {t.id: t for t in wait_tasks_done(client, "job", 5)}
    assert stdout_of(client, "job", "pipe") == "$AZ_BATCH_TASK_ID | tr a-z A-Z\n"
    assert done["pipe"].execution_info.result == bm.BatchTaskExecutionResult.SUCCESS
    assert stdout_of(client, "job", "quoted") == "a b|c|d e|"
    for tid in ("builtin", "missing"):
        info = done[tid].execution_info
        assert info.result == bm.BatchTaskExecutionResult.FAILURE
        assert info.failure_info.category == bm.BatchErrorSourceCategory.USER_ERROR
        assert info.failure_info.code == "CommandProgramNotFound"
        assert info.exit_code is None  # no process ran
    assert stdout_of(client, "job", "shell") == "SHELL\n"
    assert done["shell"].execution_info.exit_code == 4


def test_job_preparation_and_coordination_commands_run_without_a_shell(client):
    make_pool(client, dedicated=2, enable_inter_node_communication=True)
    # under a shell this succeeds; without one, 'false' runs with '||' and 'true' as arguments
    make_job(client, job_preparation_task=bm.BatchJobPreparationTask(command_line="false || true"))
    client.create_task("job", _task("t", "true"))
    (task,) = wait_tasks_done(client, "job", 1)
    assert task.execution_info.failure_info.code == "JobPreparationTaskFailed"
    make_job(client, "multi")
    client.create_task(
        "multi",
        _task(
            "m",
            "true",
            multi_instance_settings=bm.MultiInstanceSettings(number_of_instances=2, coordination_command_line="exit 0"),
        ),
    )
    (task,) = wait_tasks_done(client, "multi", 1)
    assert task.execution_info.failure_info.code == "CommandProgramNotFound"


# == exit conditions ==================================================================================
def test_exit_code_with_job_action_terminate_ends_the_job_with_reason_task_failed(client):
    make_pool(client, slots=2)
    make_job(client, task_failure_mode=EXIT_ACTION)
    client.create_task("job", _task("long", "sleep 60"))
    conditions = bm.ExitConditions(
        exit_codes=[bm.ExitCodeMapping(code=3, exit_options=bm.ExitOptions(job_action=bm.BatchJobActionKind.TERMINATE))],
        default=bm.ExitOptions(job_action=bm.BatchJobActionKind.NONE),
    )
    client.create_task("job", _task("fails", sh("exit 3"), exit_conditions=conditions))
    job = wait_for(
        lambda: (j := client.get_job("job")).state == bm.BatchJobState.COMPLETED and j, what="the job to be terminated"
    )
    assert job.execution_info.termination_reason == "TaskFailed"
    assert client.get_task("job", "long").execution_info.failure_info.code == "TaskEnded"


def test_exit_code_range_with_job_action_disable_disables_the_job(client):
    make_pool(client)
    make_job(client, task_failure_mode=EXIT_ACTION)
    conditions = bm.ExitConditions(
        exit_code_ranges=[
            bm.ExitCodeRangeMapping(start=10, end=20, exit_options=bm.ExitOptions(job_action=bm.BatchJobActionKind.DISABLE))
        ]
    )
    client.create_task("job", _task("fails", sh("exit 12"), exit_conditions=conditions))
    wait_for(lambda: client.get_job("job").state == bm.BatchJobState.DISABLED, what="the job to be disabled")
    client.create_task("job", _task("waits", "true"))
    make_pool(client, "other")  # a dispatcher pass happens; the disabled job's task must wait
    assert client.get_task("job", "waits").state == bm.BatchTaskState.ACTIVE


def test_default_job_action_is_terminate_for_a_failure_and_none_for_success(client):
    make_pool(client, slots=2)
    make_job(client, task_failure_mode=EXIT_ACTION)
    client.create_task("job", _task("ok", "true"))
    _done(client, "job", "ok")
    assert client.get_job("job").state == bm.BatchJobState.ACTIVE
    client.create_task("job", _task("bad", "false"))  # no exitConditions: default is terminate
    job = wait_for(lambda: (j := client.get_job("job")).state == bm.BatchJobState.COMPLETED and j, what="termination")
    assert job.execution_info.termination_reason == "TaskFailed"


def test_exit_code_zero_listed_explicitly_takes_its_action(client):
    make_pool(client)
    make_job(client, task_failure_mode=EXIT_ACTION)
    conditions = bm.ExitConditions(
        exit_codes=[bm.ExitCodeMapping(code=0, exit_options=bm.ExitOptions(job_action=bm.BatchJobActionKind.TERMINATE))]
    )
    client.create_task("job", _task("ok", "true", exit_conditions=conditions))
    job = wait_for(lambda: (j := client.get_job("job")).state == bm.BatchJobState.COMPLETED and j, what="termination")
    assert job.execution_info.termination_reason == "TaskFailed"


def test_pre_processing_error_takes_its_own_options(client):
    make_pool(client, slots=2)
    make_job(client, task_failure_mode=EXIT_ACTION)
    none = bm.ExitOptions(job_action=bm.BatchJobActionKind.NONE)
    client.create_task(
        "job", _task("unlaunchable", "no-such-program-here", exit_conditions=bm.ExitConditions(pre_processing_error=none))
    )
    assert _done(client, "job", "unlaunchable").execution_info.failure_info.code == "CommandProgramNotFound"
    assert client.get_job("job").state == bm.BatchJobState.ACTIVE
    client.create_task(
        "job",
        _task("unlaunchable2", "no-such-program-here", exit_conditions=bm.ExitConditions(default=none)),
    )
    _done(client, "job", "unlaunchable2")
    assert client.get_job("job").state == bm.BatchJobState.ACTIVE
    client.create_task("job", _task("unlaunchable3", "no-such-program-here"))  # default: terminate
    wait_for(lambda: client.get_job("job").state == bm.BatchJobState.COMPLETED, what="termination")


def test_job_actions_need_perform_exit_options_on_the_job(client):
    make_pool(client)
    make_job(client)  # onTaskFailure = noaction
    conditions = bm.ExitConditions(default=bm.ExitOptions(job_action=bm.BatchJobActionKind.TERMINATE))
    with pytest.raises(HttpResponseError) as err:
        client.create_task("job", _task("t", "false", exit_conditions=conditions))
    assert err.value.status_code == 400
    assert err.value.error.code == "InvalidPropertyValue"
    # without a job action, exit conditions are accepted and nothing happens to the job
    client.create_task("job", _task("t", "false", exit_conditions=bm.ExitConditions(default=bm.ExitOptions())))
    _done(client, "job", "t")
    assert client.get_job("job").state == bm.BatchJobState.ACTIVE


def test_dependency_action_needs_task_dependencies_on_the_job(client):
    make_pool(client)
    make_job(client)
    conditions = bm.ExitConditions(default=bm.ExitOptions(dependency_action=bm.DependencyAction.SATISFY))
    with pytest.raises(HttpResponseError) as err:
        client.create_task("job", _task("t", "false", exit_conditions=conditions))
    assert err.value.status_code == 400


def test_dependency_action_satisfy_lets_dependents_of_a_failed_task_run(client):
    make_pool(client, slots=2)
    make_job(client, uses_task_dependencies=True)
    satisfy = bm.ExitConditions(
        exit_codes=[bm.ExitCodeMapping(code=2, exit_options=bm.ExitOptions(dependency_action=bm.DependencyAction.SATISFY))]
    )
    block_success = bm.ExitConditions(
        exit_codes=[bm.ExitCodeMapping(code=0, exit_options=bm.ExitOptions(dependency_action=bm.DependencyAction.BLOCK))]
    )
    deps = bm.BatchTaskDependencies
    client.create_tasks(
        "job",
        [
            _task("soft-fail", sh("exit 2"), exit_conditions=satisfy),
            _task("after-soft", "true", depends_on=deps(task_ids=["soft-fail"])),
            _task("ok-but-blocks", "true", exit_conditions=block_success),
            _task("after-block", "true", depends_on=deps(task_ids=["ok-but-blocks"])),
        ],
    )
    assert _done(client, "job", "after-soft").execution_info.result == bm.BatchTaskExecutionResult.SUCCESS
    assert _done(client, "job", "ok-but-blocks").execution_info.result == bm.BatchTaskExecutionResult.SUCCESS
    make_pool(client, "other")  # a dispatcher pass happens; the blocked dependent must still wait
    assert client.get_task("job", "after-block").state == bm.BatchTaskState.ACTIVE


# == start tasks ======================================================================================
def _node(client, pool_id: str = "pool") -> bm.BatchNode:
    (node,) = list(client.list_nodes(pool_id))
    return node


def test_start_task_runs_on_each_node_before_it_takes_work(client):
    start = bm.BatchStartTask(
        command_line=sh('sleep 0.5; echo "$GREETING from $AZ_BATCH_NODE_ID" > "$AZ_BATCH_NODE_SHARED_DIR/started"'),
        environment_settings=[bm.EnvironmentSetting(name="GREETING", value="hello")],
        wait_for_success=True,
    )
    make_pool(client, start_task=start)
    states = set()
    wait_for(lambda: states.add(_node(client).state) or _node(client).state == bm.BatchNodeState.IDLE, what="the node to be idle")
    assert bm.BatchNodeState.WAITING_FOR_START_TASK in states
    make_job(client)
    client.create_task("job", _task("reads", sh('cat "$AZ_BATCH_NODE_SHARED_DIR/started"')))
    (task,) = wait_tasks_done(client, "job", 1)
    node = _node(client)
    assert stdout_of(client, "job", "reads") == f"hello from {node.id}\n"
    info = node.start_task_info
    assert info.state == bm.BatchStartTaskState.COMPLETED
    assert (info.exit_code, info.retry_count, info.result) == (0, 0, bm.BatchTaskExecutionResult.SUCCESS)
    assert info.start_time <= info.end_time <= task.execution_info.start_time
    assert node.start_task.command_line == start.command_line


def test_failing_start_task_with_wait_for_success_makes_the_node_unusable_for_tasks(client):
    start = bm.BatchStartTask(
        command_line=sh('echo try >> "$AZ_BATCH_NODE_SHARED_DIR/tries"; exit 1'), max_task_retry_count=2, wait_for_success=True
    )
    make_pool(client, start_task=start)
    node = wait_for(
        lambda: (n := _node(client)).state == bm.BatchNodeState.START_TASK_FAILED and n, what="the start task to fail"
    )
    info = node.start_task_info
    assert info.state == bm.BatchStartTaskState.COMPLETED
    assert (info.exit_code, info.retry_count, info.result) == (1, 2, bm.BatchTaskExecutionResult.FAILURE)
    assert info.failure_info.category == bm.BatchErrorSourceCategory.USER_ERROR
    assert info.last_retry_time is not None
    (counts,) = [c for c in client.list_pool_node_counts() if c.pool_id == "pool"]
    assert counts.dedicated.start_task_failed == 1
    make_job(client)
    client.create_task("job", _task("never", "true"))
    make_pool(client, "other")  # a dispatcher pass happens; the task must still wait
    assert client.get_task("job", "never").state == bm.BatchTaskState.ACTIVE


def test_a_preempted_node_that_returns_runs_its_start_task_again(client, account, lb_workspace):
    """A low-priority node given back after preemption is a fresh VM: its start task runs again
    (and holds the node back again) before the node takes work, as on Azure."""
    start = bm.BatchStartTask(command_line=sh("sleep 0.3"), wait_for_success=True)
    make_pool(client, dedicated=0, low=1, start_task=start)
    first = wait_for(lambda: (n := _node(client)).state == bm.BatchNodeState.IDLE and n, what="the node to be idle")
    control.preempt(account, "pool", duration_seconds=0.3, workspace=lb_workspace)
    states = set()
    back = wait_for(
        lambda: states.add((n := _node(client)).state) or (n.state == bm.BatchNodeState.IDLE and n not in (first,) and n),
        what="the node to come back and start again",
    )
    assert {bm.BatchNodeState.PREEMPTED, bm.BatchNodeState.WAITING_FOR_START_TASK} <= states
    assert back.start_task_info.start_time > first.start_task_info.end_time
    assert back.start_task_info.result == bm.BatchTaskExecutionResult.SUCCESS


def test_start_task_retries_until_it_succeeds(client):
    start = bm.BatchStartTask(
        command_line=sh('echo x >> ../tries; test "$(wc -l < ../tries)" -ge 2'), max_task_retry_count=3, wait_for_success=True
    )
    make_pool(client, start_task=start)
    node = wait_for(lambda: (n := _node(client)).state == bm.BatchNodeState.IDLE and n, what="the node to be idle")
    assert (node.start_task_info.retry_count, node.start_task_info.result) == (1, bm.BatchTaskExecutionResult.SUCCESS)


def test_start_task_without_wait_for_success_does_not_hold_the_node(client):
    start = bm.BatchStartTask(command_line="sleep 30", wait_for_success=False)
    make_pool(client, start_task=start)
    make_job(client)
    client.create_task("job", _task("runs", "true"))
    (task,) = wait_tasks_done(client, "job", 1)
    assert task.execution_info.result == bm.BatchTaskExecutionResult.SUCCESS
    assert _node(client).start_task_info.state == bm.BatchStartTaskState.RUNNING
    client.begin_delete_pool("pool", polling_interval=0.05).result()


def test_a_start_task_without_a_command_line_is_refused(client):
    with pytest.raises(HttpResponseError) as err:
        make_pool(client, start_task=bm.BatchStartTask(command_line="", wait_for_success=True), wait=False)
    assert err.value.status_code == 400
    assert err.value.error.code == "MissingRequiredProperty"


def test_what_a_start_task_leaves_running_lives_until_its_node_leaves(client):
    start = bm.BatchStartTask(command_line=sh("setsid sleep 300 & echo $! > ../service"), wait_for_success=True)
    make_pool(client, start_task=start)
    wait_for(lambda: _node(client).state == bm.BatchNodeState.IDLE, what="the node to be idle")
    make_job(client)
    client.create_task("job", _task("reads", sh('cat "$AZ_BATCH_NODE_STARTUP_DIR/service"')))
    wait_tasks_done(client, "job", 1)
    pid = int(stdout_of(client, "job", "reads"))
    assert runtime.alive(pid)  # a service started by the start task outlives it and the task
    client.begin_resize_pool("pool", bm.BatchPoolResizeOptions(target_dedicated_nodes=0), polling_interval=0.05).result()
    wait_for(lambda: not list(client.list_nodes("pool")), what="the node to leave")
    wait_for(lambda: not runtime.alive(pid), 10, "the service to end with its node")


def test_a_start_task_asking_for_what_localbatch_does_not_do_is_refused(client):
    start = bm.BatchStartTask(command_line="true", container_settings=bm.BatchTaskContainerSettings(image_name="busybox"))
    with pytest.raises(HttpResponseError) as err:
        make_pool(client, start_task=start, wait=False)
    assert (err.value.status_code, err.value.error.code) == (400, "UnsupportedProperty")
