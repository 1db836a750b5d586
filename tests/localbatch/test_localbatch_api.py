"""Pools, jobs, tasks and their errors, driven through the azure-batch SDK itself."""

from __future__ import annotations

import datetime

import pytest
from azure.batch import models as bm
from azure.batch.models._models import BatchJobTerminateOptions
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError

from .lb_helpers import make_job, make_pool, sh, stdout_of, vm_config, wait_for, wait_tasks_done


# -- pools ------------------------------------------------------------------------------------------
def test_pool_create_get_list_delete(client):
    pool = make_pool(
        client,
        "p-west",
        dedicated=2,
        low=1,
        slots=3,
        enable_inter_node_communication=True,
        metadata=[bm.BatchMetadataItem(name="batchfed_location", value="westeurope")],
        virtual_machine_configuration=vm_config(
            container_configuration=bm.BatchContainerConfiguration(
                type=bm.ContainerType.DOCKER_COMPATIBLE,
                container_registries=[
                    bm.ContainerRegistryReference(registry_server="myacr.azurecr.io", username="u", password="p")
                ],
            )
        ),
    )
    assert (pool.current_dedicated_nodes, pool.current_low_priority_nodes) == (2, 1)
    assert pool.task_slots_per_node == 3
    assert pool.enable_inter_node_communication is True
    assert {m.name: m.value for m in pool.metadata} == {"batchfed_location": "westeurope"}
    assert pool.virtual_machine_configuration.image_reference.sku == "22_04-lts"
    assert (
        pool.virtual_machine_configuration.container_configuration.container_registries[0].registry_server == "myacr.azurecr.io"
    )
    assert pool.state == bm.BatchPoolState.ACTIVE
    assert pool.url.endswith("/pools/p-west")

    make_pool(
        client,
        "p-east",
        dedicated=1,
        wait=False,
        virtual_machine_configuration=bm.VirtualMachineConfiguration(
            image_reference=bm.BatchVmImageReference(virtual_machine_image_id="/subscriptions/s/images/custom"),
            node_agent_sku_id="batch.node.ubuntu 22.04",
        ),
    )
    assert [p.id for p in client.list_pools()] == ["p-west", "p-east"]
    assert [p.id for p in client.list_pools(filter="startswith(id, 'p-e')")] == ["p-east"]
    selected = list(client.list_pools(select=["id", "vmSize"]))
    assert selected[0].id == "p-west" and selected[0].vm_size == "standard_d2s_v3"
    assert selected[0].current_dedicated_nodes is None  # $select left it out
    assert len(list(client.list_pools(max_results=1))) == 2  # paged through odata.nextLink

    client.begin_delete_pool("p-east", polling_interval=0.05).result()
    with pytest.raises(ResourceNotFoundError) as exc:
        client.get_pool("p-east")
    assert exc.value.error.code == "PoolNotFound"


def test_pool_errors(client):
    make_pool(client, "dup", dedicated=0, wait=False)
    with pytest.raises(ResourceExistsError) as exc:
        make_pool(client, "DUP", dedicated=0, wait=False)  # ids are case-insensitive
    assert exc.value.error.code == "PoolExists"
    with pytest.raises(HttpResponseError) as exc:
        client.create_pool(bm.BatchPoolCreateOptions(id="novm", vm_size="standard_d2s_v3"))
    assert exc.value.status_code == 400 and exc.value.error.code == "MissingRequiredProperty"
    with pytest.raises(HttpResponseError) as exc:
        make_pool(client, "bad id!", wait=False)
    assert exc.value.status_code == 400 and exc.value.error.code == "InvalidPropertyValue"
    with pytest.raises(HttpResponseError) as exc:
        make_pool(client, "slots", slots=0, wait=False)
    assert exc.value.error.code == "InvalidPropertyValue"
    with pytest.raises(ResourceNotFoundError) as exc:
        client.get_pool("missing")
    assert exc.value.error.code == "PoolNotFound"


def test_resize_and_node_counts(client):
    make_pool(client, "rs", dedicated=1, low=0, slots=2)
    client.begin_resize_pool(
        "rs", bm.BatchPoolResizeOptions(target_dedicated_nodes=3, target_low_priority_nodes=2), polling_interval=0.05
    ).result()
    pool = client.get_pool("rs")
    assert (pool.current_dedicated_nodes, pool.current_low_priority_nodes) == (3, 2)
    assert pool.allocation_state == bm.AllocationState.STEADY
    nodes = list(client.list_nodes("rs"))
    assert len({n.id for n in nodes}) == 5 and sum(n.is_dedicated for n in nodes) == 3
    (counts,) = [c for c in client.list_pool_node_counts() if c.pool_id == "rs"]
    assert (counts.dedicated.idle, counts.dedicated.total, counts.low_priority.idle, counts.low_priority.total) == (3, 3, 2, 2)

    make_job(client, "busy", "rs")
    client.create_task("busy", bm.BatchTaskCreateOptions(id="sleeper", command_line="sleep 30"))
    wait_for(lambda: client.get_task("busy", "sleeper").state == bm.BatchTaskState.RUNNING, what="the task to run")
    (counts,) = [c for c in client.list_pool_node_counts() if c.pool_id == "rs"]
    assert counts.dedicated.running + counts.low_priority.running == 1
    client.terminate_task("busy", "sleeper")

    client.begin_resize_pool(
        "rs", bm.BatchPoolResizeOptions(target_dedicated_nodes=1, target_low_priority_nodes=0), polling_interval=0.05
    ).result()
    assert len(list(client.list_nodes("rs"))) == 1


def test_autoscale_formula(client, localbatch, lb_workspace, account):
    from batchfed_lab.localbatch import control

    formula = "$TargetDedicatedNodes = min(3, $PendingTasks.GetSample(1)); $NodeDeallocationOption = taskcompletion;"
    client.create_pool(
        bm.BatchPoolCreateOptions(
            id="auto",
            vm_size="standard_d2s_v3",
            virtual_machine_configuration=vm_config(),
            enable_auto_scale=True,
            auto_scale_formula=formula,
            auto_scale_evaluation_interval=datetime.timedelta(minutes=5),
        )
    )
    pool = client.get_pool("auto")
    assert pool.enable_auto_scale and pool.auto_scale_formula == formula
    assert (
        pool.auto_scale_run.results == "$TargetDedicatedNodes=0;$TargetLowPriorityNodes=0;$NodeDeallocationOption=taskcompletion"
    )

    run = client.evaluate_pool_auto_scale(
        "auto",
        bm.BatchPoolEvaluateAutoScaleOptions(auto_scale_formula="$TargetDedicatedNodes = 2; $NodeDeallocationOption = requeue;"),
    )
    assert run.results.startswith("$TargetDedicatedNodes=2;") and "$NodeDeallocationOption=requeue" in run.results
    assert run.error is None

    make_job(client, "queue", "auto")
    client.create_tasks("queue", [bm.BatchTaskCreateOptions(id=f"t{i}", command_line="true") for i in range(5)])
    result = control.autoscale_now(account, "auto", workspace=lb_workspace)  # do not wait 5 minutes
    assert result["results"].startswith("$TargetDedicatedNodes=3;")
    wait_tasks_done(client, "queue", 5)
    assert client.get_pool("auto").current_dedicated_nodes == 3

    with pytest.raises(ResourceExistsError) as exc:  # a pool under autoscale is not resized by hand
        client.begin_resize_pool("auto", bm.BatchPoolResizeOptions(target_dedicated_nodes=1))
    assert exc.value.error.code == "AutoScalingEnabled"
    client.disable_pool_auto_scale("auto")
    assert client.get_pool("auto").enable_auto_scale is False
    client.enable_pool_auto_scale(
        "auto",
        bm.BatchPoolEnableAutoScaleOptions(
            auto_scale_formula="$TargetLowPriorityNodes = max(1, $CurrentDedicatedNodes - 2);",
            auto_scale_evaluation_interval=datetime.timedelta(minutes=10),
        ),
    )
    assert client.get_pool("auto").auto_scale_run.results.split(";")[1] == "$TargetLowPriorityNodes=1"


@pytest.mark.parametrize(
    "formula",
    [
        "$TargetDedicatedNodes = avg($CPUPercent.GetSample(TimeInterval_Minute * 5));",
        "$TargetDedicatedNodes = $PendingTasks;",
        "$TargetDedicatedNodes = $PendingTasks.GetSample(10);",
        "$TargetDedicatedNodes = 2 +;",
        "$NodeDeallocationOption = sometimes;",
        "$CurrentDedicatedNodes = 4;",
        "$TargetDedicatedNodes = $undefined * 2;",
    ],
)
def test_bad_autoscale_formula_is_400(client, formula):
    with pytest.raises(HttpResponseError) as exc:
        client.create_pool(
            bm.BatchPoolCreateOptions(
                id="bad",
                vm_size="standard_d2s_v3",
                virtual_machine_configuration=vm_config(),
                enable_auto_scale=True,
                auto_scale_formula=formula,
            )
        )
    assert exc.value.status_code == 400
    assert exc.value.error.code == "AutoScalingFormulaSyntaxError"
    with pytest.raises(ResourceNotFoundError):
        client.get_pool("bad")


def test_autoscale_settings_validated(client):
    with pytest.raises(HttpResponseError) as exc:  # Azure: autoscale pools take no fixed targets
        client.create_pool(
            bm.BatchPoolCreateOptions(
                id="both",
                vm_size="x",
                virtual_machine_configuration=vm_config(),
                target_dedicated_nodes=1,
                enable_auto_scale=True,
                auto_scale_formula="$TargetDedicatedNodes=1;",
            )
        )
    assert exc.value.error.code == "InvalidPropertyValue"
    with pytest.raises(HttpResponseError) as exc:
        client.create_pool(
            bm.BatchPoolCreateOptions(
                id="noformula", vm_size="x", virtual_machine_configuration=vm_config(), enable_auto_scale=True
            )
        )
    assert exc.value.error.code == "MissingRequiredProperty"


# -- jobs -------------------------------------------------------------------------------------------
def test_job_crud_and_errors(client):
    make_pool(client, dedicated=1)
    make_job(
        client,
        "job-a",
        priority=5,
        metadata=[bm.BatchMetadataItem(name="k", value="v")],
        constraints=bm.BatchJobConstraints(max_task_retry_count=2),
    )
    job = client.get_job("job-a")
    assert job.state == bm.BatchJobState.ACTIVE and job.pool_info.pool_id == "pool" and job.priority == 5
    assert job.constraints.max_task_retry_count == 2 and job.metadata[0].value == "v"
    assert job.execution_info.pool_id == "pool"

    with pytest.raises(ResourceExistsError) as exc:
        make_job(client, "JOB-A")
    assert exc.value.error.code == "JobExists"
    with pytest.raises(ResourceNotFoundError) as exc:
        client.get_job("nope")
    assert exc.value.error.code == "JobNotFound"
    with pytest.raises(HttpResponseError) as exc:
        client.create_job(bm.BatchJobCreateOptions(id="nopool", pool_info=bm.BatchPoolInfo()))
    assert exc.value.status_code == 400 and exc.value.error.code == "MissingRequiredProperty"

    client.update_job("job-a", bm.BatchJobUpdateOptions(priority=100, max_parallel_tasks=3))
    job = client.get_job("job-a")
    assert (job.priority, job.max_parallel_tasks, job.constraints.max_task_retry_count) == (100, 3, 2)
    make_job(client, "job-b")
    assert [j.id for j in client.list_jobs()] == ["job-a", "job-b"]
    assert [j.id for j in client.list_jobs(filter="priority eq 100")] == ["job-a"]

    client.create_task("job-a", bm.BatchTaskCreateOptions(id="long", command_line="sleep 30"))
    wait_for(lambda: client.get_task("job-a", "long").state == bm.BatchTaskState.RUNNING, what="the task to run")
    client.begin_terminate_job("job-a", BatchJobTerminateOptions(termination_reason="enough"), polling_interval=0.05).result()
    job = client.get_job("job-a")
    assert job.state == bm.BatchJobState.COMPLETED and job.execution_info.termination_reason == "enough"
    task = client.get_task("job-a", "long")
    assert task.state == bm.BatchTaskState.COMPLETED and task.execution_info.result == bm.BatchTaskExecutionResult.FAILURE
    assert task.execution_info.failure_info.code == "TaskEnded"
    with pytest.raises(ResourceExistsError) as exc:
        client.create_task("job-a", bm.BatchTaskCreateOptions(id="late", command_line="true"))
    assert exc.value.error.code == "JobCompleted"

    client.begin_delete_job("job-a", polling_interval=0.05).result()
    with pytest.raises(ResourceNotFoundError):
        client.get_job("job-a")
    assert [j.id for j in client.list_jobs()] == ["job-b"]


def test_all_tasks_complete_terminates_job(client):
    make_pool(client, dedicated=1, slots=2)
    make_job(client, "auto-end")
    client.create_tasks("auto-end", [bm.BatchTaskCreateOptions(id=f"t{i}", command_line="true") for i in range(3)])
    client.update_job("auto-end", bm.BatchJobUpdateOptions(all_tasks_complete_mode=bm.BatchAllTasksCompleteMode.TERMINATE_JOB))
    job = wait_for(lambda: (j := client.get_job("auto-end")).state == bm.BatchJobState.COMPLETED and j, what="job completion")
    assert job.execution_info.termination_reason == "AllTasksComplete"


# -- tasks ------------------------------------------------------------------------------------------
def test_task_add_list_get_and_counts(client, account):
    make_pool(client, dedicated=1, slots=4)
    make_job(client)
    client.create_task(
        "job",
        bm.BatchTaskCreateOptions(
            id="env",
            command_line=sh(
                'echo "$AZ_BATCH_ACCOUNT_NAME $AZ_BATCH_JOB_ID $AZ_BATCH_TASK_ID $AZ_BATCH_POOL_ID $SHARD"; '
                'test "$PWD" = "$AZ_BATCH_TASK_WORKING_DIR" && echo wd-ok; '
                'test -n "$AZ_BATCH_NODE_ID" && echo node-ok; echo oops >&2; exit 3'
            ),
            environment_settings=[bm.EnvironmentSetting(name="SHARD", value="7")],
        ),
    )
    result = client.create_tasks("job", [bm.BatchTaskCreateOptions(id=f"ok{i}", command_line=f"echo {i}") for i in range(4)])
    assert all(r.status == bm.BatchTaskAddStatus.SUCCESS for r in result.result_values)
    tasks = wait_tasks_done(client, "job", 5)
    assert {t.id for t in tasks} == {"env", "ok0", "ok1", "ok2", "ok3"}

    env = client.get_task("job", "env")
    assert env.execution_info.exit_code == 3
    assert env.execution_info.result == bm.BatchTaskExecutionResult.FAILURE
    assert env.execution_info.failure_info.category == bm.BatchErrorSourceCategory.USER_ERROR
    assert env.execution_info.start_time <= env.execution_info.end_time
    assert env.node_info.pool_id == "pool" and env.node_info.node_id.startswith("tvmps_")
    assert stdout_of(client, "job", "env").split("\n")[:3] == [f"{account} job env pool 7", "wd-ok", "node-ok"]
    assert stdout_of(client, "job", "env", "stderr.txt") == "oops\n"
    assert stdout_of(client, "job", "ok2") == "2\n"

    counts = client.get_job_task_counts("job")
    assert (counts.task_counts.completed, counts.task_counts.succeeded, counts.task_counts.failed) == (5, 4, 1)
    assert counts.task_slot_counts.completed == 5
    failed = list(client.list_tasks("job", filter="executionInfo/result eq 'failure'", select=["id", "executionInfo"]))
    assert [t.id for t in failed] == ["env"] and failed[0].command_line is None
    assert len(list(client.list_tasks("job", filter="state eq 'completed'"))) == 5
    assert list(client.list_tasks("job", filter="state eq 'active' or state eq 'running'")) == []
    assert len(list(client.list_tasks("job", max_results=2))) == 5
    names = {f.name for f in client.list_task_files("job", "ok1")}
    assert {"stdout.txt", "stderr.txt", "wd"} <= names


def test_task_errors(client):
    make_pool(client, dedicated=1)
    make_job(client)
    client.create_task("job", bm.BatchTaskCreateOptions(id="t1", command_line="true"))
    with pytest.raises(ResourceExistsError) as exc:
        client.create_task("job", bm.BatchTaskCreateOptions(id="T1", command_line="true"))
    assert exc.value.error.code == "TaskExists"
    # the raw collection call reports TaskExists per task; create_tasks treats it as success
    raw = client.create_task_collection(
        "job",
        bm.BatchTaskGroup(
            task_values=[
                bm.BatchTaskCreateOptions(id="t1", command_line="true"),
                bm.BatchTaskCreateOptions(id="t2", command_line="true"),
            ]
        ),
    )
    by_id = {r.task_id: r for r in raw.result_values}
    assert by_id["t1"].status == bm.BatchTaskAddStatus.CLIENT_ERROR and by_id["t1"].error.code == "TaskExists"
    assert by_id["t2"].status == bm.BatchTaskAddStatus.SUCCESS
    again = client.create_tasks("job", [bm.BatchTaskCreateOptions(id="t1", command_line="true")])
    assert again.result_values[0].error.code == "TaskExists"
    with pytest.raises(bm.CreateTasksError) as cte:
        client.create_tasks(
            "job",
            [
                bm.BatchTaskCreateOptions(id="bad id", command_line="true"),
                bm.BatchTaskCreateOptions(id="t3", command_line="true"),
            ],
        )
    assert [(f.task_id, f.error.code) for f in cte.value.failure_tasks] == [("bad id", "InvalidPropertyValue")]
    with pytest.raises(ResourceNotFoundError) as exc:
        client.get_task("job", "missing")
    assert exc.value.error.code == "TaskNotFound"
    with pytest.raises(ResourceNotFoundError) as exc:
        client.create_task("nojob", bm.BatchTaskCreateOptions(id="x", command_line="true"))
    assert exc.value.error.code == "JobNotFound"
    with pytest.raises(HttpResponseError) as exc:
        client.create_task(
            "job", bm.BatchTaskCreateOptions(id="deps", command_line="true", depends_on=bm.BatchTaskDependencies(task_ids=["t1"]))
        )
    assert exc.value.error.code == "TaskDependenciesNotSpecifiedOnJob"
    with pytest.raises(HttpResponseError) as exc:
        client.create_task(
            "job",
            bm.BatchTaskCreateOptions(
                id="neg", command_line="true", constraints=bm.BatchTaskConstraints(max_task_retry_count=-5)
            ),
        )
    assert exc.value.status_code == 400 and exc.value.error.code == "InvalidPropertyValue"


def test_task_file_reads_stay_inside_the_task_folder(client, lb_workspace):
    make_pool(client, dedicated=1)
    make_job(client)
    client.create_task("job", bm.BatchTaskCreateOptions(id="w", command_line=sh("echo data > out.txt; ln -s /etc/passwd link")))
    wait_tasks_done(client, "job", 1)
    assert stdout_of(client, "job", "w", "wd/out.txt") == "data\n"
    for bad in ("../../../key", "wd/../../../../key", "/etc/passwd", "wd/link"):
        with pytest.raises(HttpResponseError) as exc:
            stdout_of(client, "job", "w", bad)
        assert exc.value.status_code == 400, bad
    with pytest.raises(ResourceNotFoundError):
        stdout_of(client, "job", "w", "wd/absent.txt")


def test_dependencies_run_in_order(client):
    make_pool(client, dedicated=2, slots=2)
    make_job(client, uses_task_dependencies=True)
    deps = {"b": ["a"], "c": ["a"], "d": ["b", "c"]}
    tasks = [
        bm.BatchTaskCreateOptions(
            id=tid, command_line="sleep 0.2", depends_on=bm.BatchTaskDependencies(task_ids=deps[tid]) if tid in deps else None
        )
        for tid in ("d", "c", "b", "a")  # added dependents first
    ]
    client.create_tasks("job", tasks)
    client.create_task(
        "job",
        bm.BatchTaskCreateOptions(
            id="5", command_line="true", depends_on=bm.BatchTaskDependencies(task_id_ranges=[bm.BatchTaskIdRange(start=1, end=2)])
        ),
    )
    client.create_tasks("job", [bm.BatchTaskCreateOptions(id=str(i), command_line="true") for i in (1, 2)])
    done = {t.id: t for t in wait_tasks_done(client, "job", 7)}
    for child, parents in [*list(deps.items()), ("5", ["1", "2"])]:
        for parent in parents:
            assert done[child].execution_info.start_time >= done[parent].execution_info.end_time, (child, parent)

    # a failed dependency blocks its dependents (Batch's default dependency action)
    client.create_task("job", bm.BatchTaskCreateOptions(id="f", command_line="false"))
    client.create_task(
        "job", bm.BatchTaskCreateOptions(id="after-f", command_line="true", depends_on=bm.BatchTaskDependencies(task_ids=["f"]))
    )
    client.create_task(
        "job", bm.BatchTaskCreateOptions(id="g", command_line="true", depends_on=bm.BatchTaskDependencies(task_ids=["a"]))
    )
    wait_for(lambda: client.get_task("job", "f").state == bm.BatchTaskState.COMPLETED, what="f to fail")
    wait_for(lambda: client.get_task("job", "g").state == bm.BatchTaskState.COMPLETED, what="g to run")
    assert client.get_task("job", "after-f").state == bm.BatchTaskState.ACTIVE


def test_less_common_calls(client):
    from azure.core.rest import HttpRequest

    make_pool(client, dedicated=2, slots=2)
    client.update_pool(
        "pool", bm.BatchPoolUpdateOptions(metadata=[bm.BatchMetadataItem(name="batchfed_location", value="uksouth")])
    )
    assert client.get_pool("pool").metadata[0].value == "uksouth"
    client.replace_pool_properties("pool", bm.BatchPoolReplaceOptions(application_package_references=[], metadata=[]))
    assert not client.get_pool("pool").metadata
    node = next(iter(client.list_nodes("pool")))
    assert client.get_node("pool", node.id).state == bm.BatchNodeState.IDLE
    client.begin_remove_nodes("pool", bm.BatchNodeRemoveOptions(node_ids=[node.id]), polling_interval=0.05).result()
    pool = client.get_pool("pool")
    assert (pool.current_dedicated_nodes, pool.target_dedicated_nodes) == (1, 1)
    client.begin_resize_pool("pool", bm.BatchPoolResizeOptions(target_dedicated_nodes=4))
    client.begin_stop_pool_resize("pool", polling_interval=0.05).result()
    assert client.get_pool("pool").allocation_state == bm.AllocationState.STEADY

    make_job(client)
    client.begin_disable_job(
        "job", bm.BatchJobDisableOptions(disable_tasks=bm.DisableBatchJobOption.REQUEUE), polling_interval=0.05
    ).result()
    assert client.get_job("job").state == bm.BatchJobState.DISABLED
    client.create_task("job", bm.BatchTaskCreateOptions(id="held", command_line="echo held"))
    client.begin_enable_job("job", polling_interval=0.05).result()
    wait_tasks_done(client, "job", 1)
    job = client.get_job("job")
    job.priority = 9
    client.replace_job("job", job)
    assert client.get_job("job").priority == 9

    client.create_task("job", bm.BatchTaskCreateOptions(id="later", command_line="sleep 30"))
    task = client.get_task("job", "later")
    task.constraints = bm.BatchTaskConstraints(max_task_retry_count=4)
    client.replace_task("job", "later", task)
    assert client.get_task("job", "later").constraints.max_task_retry_count == 4
    client.terminate_task("job", "later")

    props = client.get_task_file_properties("job", "held", "stdout.txt")
    assert props.content_length == len("held\n")
    assert [f.name for f in client.list_task_files("job", "held", recursive=True) if f.name.startswith("wd")] == ["wd"]
    assert b"".join(client.download_task_file("job", "held", "stdout.txt", ocp_range="bytes=1-2")) == b"el"
    client.delete_task_file("job", "held", "stderr.txt")
    assert "stderr.txt" not in {f.name for f in client.list_task_files("job", "held")}
    client.delete_task("job", "held")
    with pytest.raises(ResourceNotFoundError):
        client.get_task("job", "held")

    spec = bm.BatchJobSpecification(
        pool_info=bm.BatchPoolInfo(pool_id="pool"), job_manager_task=bm.BatchJobManagerTask(id="jm", command_line="true")
    )
    client.create_job_schedule(
        bm.BatchJobScheduleCreateOptions(
            id="sched",
            schedule=bm.BatchJobScheduleConfiguration(
                do_not_run_until=datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(hours=1)
            ),
            job_specification=spec,
        )
    )
    client.disable_job_schedule("sched")
    assert client.get_job_schedule("sched").state == bm.BatchJobScheduleState.DISABLED
    client.enable_job_schedule("sched")
    client.update_job_schedule("sched", bm.BatchJobScheduleUpdateOptions(metadata=[bm.BatchMetadataItem(name="a", value="b")]))
    sched = client.get_job_schedule("sched")
    assert sched.metadata[0].value == "b" and sched.state == bm.BatchJobScheduleState.ACTIVE
    client.replace_job_schedule("sched", sched)
    assert next(iter(client.list_job_schedules())).id == "sched"

    # admin calls go through the SDK's own pipeline (signed like every call)
    response = client.send_request(HttpRequest("GET", "/localbatch-info?api-version=2025-06-01"))
    assert response.status_code == 200 and response.json()["service"] == "localbatch"
