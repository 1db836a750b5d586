"""The adapter's whole surface against a real localbatch (real processes, real SDK, shared key)."""

from __future__ import annotations

import base64
import logging
import threading
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest

from batchfed_lab.batch.adapter import BatchAccount, get_account
from batchfed_lab.batch.jobs import JobInfo, JobSettings
from batchfed_lab.config import load_pool
from batchfed_lab.config.jobs import TaskDefinition
from batchfed_lab.errors import BatchAuthError, BatchConflictError, BatchError, BatchNotFoundError

from .conftest import wait_for

IDLE_FORMULA = "$TargetDedicatedNodes = 0;"  # an autoscale pool with no nodes: tasks stay active


def spec(pool_id: str, **fields: Any):
    body = {"id": pool_id, "vm_size": "standard_d2_v3", "vm_count": {"dedicated": 1}}
    body.update(fields)
    return load_pool({"pool_specification": body}).pool_specification


def idle_spec(pool_id: str):
    return spec(
        pool_id, vm_count={"dedicated": 0}, autoscale={"enabled": True, "formula": IDLE_FORMULA, "evaluation_interval": 60}
    )


def steady(acct: BatchAccount, pool_id: str, idle: int, low_idle: int = 0):
    def probe():
        s = acct.snapshot_pool(pool_id)
        ok = s.allocation_state == "steady" and s.dedicated.idle == idle and s.low_priority.idle == low_idle
        return s if ok else None

    return wait_for(probe, f"pool {pool_id} steady with {idle}+{low_idle} idle nodes")


def completed(acct: BatchAccount, job_id: str, n: int):
    def probe():
        tasks = acct.list_tasks(job_id, state="completed")
        return tasks if len(tasks) == n else None

    return wait_for(probe, f"{n} completed tasks in {job_id}")


# --- pools -------------------------------------------------------------------------------------


def test_pool_from_spec_snapshot_facts_and_counts(account):
    s = spec(
        "west-gpu",
        vm_size="STANDARD_NC6S_V3",
        vm_count={"dedicated": 2, "low_priority": 1},
        task_slots_per_node=3,
        inter_node_communication_enabled=True,
        location="westeurope",
        vm_configuration={
            "platform_image": {"publisher": "Canonical", "offer": "ubuntu-24_04-lts", "sku": "server", "native": True}
        },
        virtual_network={
            "arm_subnet_id": "/subscriptions/s/resourceGroups/r/providers/Microsoft.Network/virtualNetworks/v/subnets/a"
        },
        container_registries=[{"server": "Lab.AzureCR.io", "username": "u"}, {"username": "alice"}],
        vm_size_override={"gpus": 2},
    )
    assert account.create_pool(s) is True
    snap = steady(account, "west-gpu", idle=2, low_idle=1)
    f = snap.facts
    assert (f.pool_id, f.account, f.location, f.service_url) == ("west-gpu", account.account, "westeurope", account.service_url)
    assert f.vm_size.lower() == "standard_nc6s_v3" and f.size is not None and (f.size.cores, f.size.gpus) == (6, 2)
    assert f.native and not f.windows and f.inter_node_communication and not f.autoscale
    assert f.subnet_id.endswith("/subnets/a") and f.custom_image_id is None
    assert f.registry_logins == {"lab.azurecr.io", "dockerhub-alice"}
    assert (f.task_slots_per_node, f.target_dedicated, f.target_low_priority) == (3, 2, 1)
    assert snap.state == "active" and snap.active_tasks == 0
    assert (snap.dedicated.running, snap.dedicated.other, snap.low_priority.running) == (0, 0, 0)
    assert snap.total_slots == 9 and snap.slots("low_priority") == 3
    # idempotent create / a clear conflict
    assert account.create_pool(s, exists_ok=True) is False
    with pytest.raises(BatchConflictError) as info:
        account.create_pool(s)
    assert (info.value.code, info.value.status) == ("PoolExists", 409)


def test_custom_image_windows_and_unknown_size_facts(account):
    custom = spec(
        "win-custom",
        vm_size="standard_unknown_x9",
        os="windows",
        vm_configuration={
            "custom_image": {
                "arm_image_id": "/subscriptions/s/resourceGroups/r/providers/Microsoft.Compute/images/i",
                "node_agent": "batch.node.windows amd64",
            }
        },
    )
    account.create_pool(custom)
    f = account.snapshot_pool("win-custom", active_tasks=False).facts
    assert f.windows and f.custom_image_id.endswith("/images/i") and f.size is None and f.location == "local"
    # an override given by the caller makes an unknown size known
    snaps = account.snapshot_pools(["WIN-CUSTOM"], overrides={"win-custom": {"cores": 4, "memory_mib": 4096}})
    assert snaps["win-custom"].facts.size.cores == 4 and snaps["win-custom"].active_tasks == 0


def test_snapshot_of_many_pools_uses_one_node_counts_call(localbatch, lb_workspace, account):
    for i in range(6):
        account.create_pool(spec(f"p{i}", vm_count={"dedicated": 1 + i % 2}))
    account.create_pool(idle_spec("backlog"))
    job = account.create_job("busy", "backlog")
    assert job.created
    account.add_tasks("busy", [TaskDefinition(id=f"t{i}", command="true") for i in range(7)])
    other = BatchAccount(localbatch.account_url(account.account + "b"), workspace=lb_workspace)
    other.create_pool(spec("q0"))
    wait_for(lambda: account.snapshot_pool("p5").dedicated.idle == 2, "p5 to get its nodes")
    account.reset_requests()
    snaps = account.snapshot_pools()
    assert sorted(snaps) == ["backlog", "p0", "p1", "p2", "p3", "p4", "p5"]
    assert snaps["backlog"].active_tasks == 7 and snaps["p1"].active_tasks == 0
    assert snaps["backlog"].facts.autoscale and snaps["backlog"].total_slots == 0
    assert account.requests == {
        "GET /pools": 1,
        "GET /nodecounts": 1,  # one account-level call for all seven pools
        "GET /jobs": 1,
        "GET /jobs/{id}/taskcounts": 1,  # one per active job on these pools
    }
    account.reset_requests()
    assert set(account.snapshot_pools(["p0", "p4"], active_tasks=False)) == {"p0", "p4"}
    assert account.requests == {"GET /pools": 1, "GET /nodecounts": 1}
    assert account.snapshot_pools(["nope"]) == {}
    assert set(other.snapshot_pools()) == {"q0"}  # accounts do not see each other's pools
    assert other.requests["GET /nodecounts"] == 1
    other.close()
    with pytest.raises(BatchNotFoundError) as info:
        account.snapshot_pool("nope")
    assert info.value.code == "PoolNotFound"


def test_resize_and_delete_pool(account):
    account.create_pool(spec("r1"))
    steady(account, "r1", idle=1)
    account.resize_pool("r1", dedicated=3, low_priority=1)
    steady(account, "r1", idle=3, low_idle=1)
    assert [p.pool_id for p in account.list_pools()] == ["r1"]
    assert account.delete_pool("r1") is True
    wait_for(lambda: not account.pool_exists("r1"), "r1 to be deleted")
    assert account.delete_pool("r1") is False  # already gone: not an error
    with pytest.raises(BatchNotFoundError) as info:
        account.resize_pool("r1", dedicated=1)
    assert info.value.code == "PoolNotFound"


def test_autoscale_evaluate_enable_and_reevaluate(account):
    account.create_pool(
        spec(
            "auto",
            vm_count={"dedicated": 0},
            autoscale={"enabled": True, "formula": "$TargetDedicatedNodes = 2;", "evaluation_interval": 60},
        )
    )
    account.create_pool(spec("fixed"))
    run = account.evaluate_autoscale("auto")  # the pool's own formula
    assert run.error is None and run.results["$TargetDedicatedNodes"] == "2"
    run = account.evaluate_autoscale("auto", "$TargetDedicatedNodes = 1; $TargetLowPriorityNodes = 3;")
    assert run.results["$TargetLowPriorityNodes"] == "3"
    steady(account, "auto", idle=2)
    assert account.reevaluate_autoscale("auto") is True
    assert account.reevaluate_autoscale("fixed") is False
    account.enable_autoscale("auto", "$TargetDedicatedNodes = 1;", timedelta(seconds=30))
    steady(account, "auto", idle=1)
    with pytest.raises(BatchError) as info:
        account.evaluate_autoscale("fixed")
    assert info.value.code == "AutoScalingNotEnabled"
    with pytest.raises(BatchConflictError) as info:
        account.resize_pool("auto", dedicated=5)
    assert info.value.code == "AutoScalingEnabled"
    with pytest.raises(BatchError) as info:
        account.evaluate_autoscale("auto", "$TargetDedicatedNodes = = ;")
    assert info.value.status == 400 and "\n" not in str(info.value)


def test_supported_images_not_offered_locally(account):
    assert account.supported_images() is None


# --- jobs --------------------------------------------------------------------------------------


def test_idempotent_job_create_reports_what_merging_needs(account):
    account.create_pool(idle_spec("jp"))
    settings = JobSettings(
        uses_task_dependencies=True, job_preparation_command="echo prep", on_task_failure="performexitoptionsjobaction"
    )
    first = account.create_job("merge-me", "jp", settings)
    assert first.created and first.status == "created" and first.existing is None
    again = account.create_job("merge-me", "jp", settings)
    assert not again.created and again.status == "exists"
    ex = again.existing
    assert (ex.id, ex.pool_id, ex.state) == ("merge-me", "jp", "active")
    assert ex.job_preparation_command_line == "/bin/sh -c 'echo prep'"
    assert ex.on_task_failure == "performexitoptionsjobaction" and ex.uses_task_dependencies
    assert ex.merge_conflict("jp", settings) is None
    # what the proxy remembers of a job it created is what the service reports of it
    assert JobInfo.created("merge-me", "jp", settings) == replace(ex, creation_time=None)
    assert "pool" in ex.merge_conflict("other", settings)
    assert "preparation" in ex.merge_conflict(
        "jp", JobSettings(uses_task_dependencies=True, on_task_failure="performexitoptionsjobaction")
    )
    # a create on another pool also reports the existing job instead of raising
    elsewhere = account.create_job("merge-me", "elsewhere")
    assert not elsewhere.created and elsewhere.existing.pool_id == "jp"
    assert account.get_job("merge-me").pool_id == "jp"
    with pytest.raises(BatchNotFoundError) as info:
        account.get_job("no-such-job")
    assert (info.value.code, info.value.status) == ("JobNotFound", 404)
    assert str(info.value).startswith(f"{account.account}: get job 'no-such-job': JobNotFound:")


def test_a_job_our_records_place_there_is_read_not_recreated(account):
    account.create_pool(idle_spec("lx"))
    account.create_job("known", "lx")
    account.reset_requests()
    again = account.create_job("known", "lx", likely_exists=True)
    assert not again.created and again.existing.pool_id == "lx"
    assert account.requests == {"GET /jobs/{id}": 1}  # no refused create before the read
    # the records were stale (the job was deleted meanwhile): it is created after all
    account.reset_requests()
    fresh = account.create_job("never-made", "lx", likely_exists=True)
    assert fresh.created and account.requests == {"GET /jobs/{id}": 1, "POST /jobs": 1}


def test_bulk_add_250_with_a_duplicate_then_resubmit(account):
    account.create_pool(idle_spec("bulk"))
    account.create_job("bulk-job", "bulk")
    tasks = [TaskDefinition(id=f"task-{i:05d}", command=f"echo {i}") for i in range(250)]
    assert account.add_tasks("bulk-job", [tasks[100]]).added == ["task-00100"]
    account.reset_requests()
    report = account.add_tasks("bulk-job", tasks)
    assert account.requests == {"POST /jobs/{id}/addtaskcollection": 3} and report.requests == 3
    assert report.ok and report.existing == ["task-00100"] and len(report.added) == 249
    assert report.succeeded == 250 and [r.task_id for r in report.results] == [t.id for t in tasks]
    again = account.add_tasks("bulk-job", tasks)
    assert again.ok and len(again.existing) == 250 and again.added == []
    assert account.task_ids("bulk-job") == {t.id for t in tasks}
    counts = account.job_task_counts("bulk-job")
    assert (counts.active, counts.running, counts.completed) == (250, 0, 0)


def test_placement_calls_answer_alike_through_the_default_pipeline(account, lb_workspace):
    """What Azure accounts get (requests transport, the SDK's full policy list) against the
    lean loopback one: the per-placement calls, read as JSON either way, agree."""
    from azure.core.pipeline.transport import RequestsTransport

    default = BatchAccount(
        account.service_url, workspace=lb_workspace, client_options={"transport": RequestsTransport(), "logging_enable": True}
    )
    try:
        account.create_pool(idle_spec("both"))
        results = {}
        for name, acct in (("lean", account), ("default", default)):
            job = f"both-{name}"
            assert acct.create_job(job, "both").created
            again = acct.create_job(job, "both")
            assert not again.created and again.existing is not None and again.existing.pool_id == "both"
            report = acct.add_tasks(job, [TaskDefinition(id="a", command="true"), TaskDefinition(id="bad id!", command="true")])
            second = acct.add_tasks(job, [TaskDefinition(id="a", command="true")])
            results[name] = (report.added, [r.code for r in report.failed], second.existing, acct.task_ids(job))
            with pytest.raises(BatchNotFoundError) as info:
                acct.task_ids("no-such-job")
            assert info.value.code == "JobNotFound"
        added, failed, existing, ids = results["lean"]
        assert results["default"] == results["lean"]
        assert added == ["a"] and len(failed) == 1 and existing == ["a"] and ids == {"a"}
    finally:
        default.close()


def test_per_task_failures_are_reported_not_counted(account):
    account.create_pool(idle_spec("bad"))
    account.create_job("no-deps", "bad")
    report = account.add_tasks(
        "no-deps",
        [
            TaskDefinition(id="ok-1", command="true"),
            TaskDefinition(id="bad id!", command="true"),  # invalid id
            TaskDefinition(id="dep", command="true", depends_on=("ok-1",)),  # job has no dependencies
            TaskDefinition(id="ok-2", command="true"),
        ],
    )
    assert not report.ok and report.added == ["ok-1", "ok-2"] and report.succeeded == 2
    failed = {r.task_id: r.code for r in report.failed}
    assert failed["dep"] == "TaskDependenciesNotSpecifiedOnJob"
    assert failed["bad id!"] in ("InvalidPropertyValue", "MissingRequiredProperty")
    assert account.task_ids("no-deps") == {"ok-1", "ok-2"}
    with pytest.raises(BatchNotFoundError) as info:
        account.add_tasks("missing-job", [TaskDefinition(id="x", command="true")])
    assert info.value.code == "JobNotFound"


def test_tasks_run_and_outputs_read_back(account):
    account.create_pool(spec("run", vm_count={"dedicated": 2}, task_slots_per_node=2, inter_node_communication_enabled=True))
    steady(account, "run", idle=2)
    account.create_job("runs", "run", JobSettings(uses_task_dependencies=True))
    tasks = [
        TaskDefinition(id="hello", command='echo "hello $NAME" && echo oops >&2', environment={"NAME": "batch"}),
        TaskDefinition(id="after", command="echo after", depends_on=("hello",)),
        TaskDefinition(id="fails", command="exit 3"),
        TaskDefinition(id="mpi", command="echo primary", num_instances=2, coordination_command="true"),
        TaskDefinition(id="slow", command="sleep 30", max_wall_time_s=1),
    ]
    assert account.add_tasks("runs", tasks).ok
    done = {t.id: t for t in completed(account, "runs", 5)}
    assert done["hello"].exit_code == 0 and done["hello"].result == "success"
    assert done["hello"].node_id and done["hello"].pool_id == "run"
    assert done["hello"].start_time <= done["hello"].end_time <= done["after"].start_time
    assert (done["fails"].exit_code, done["fails"].result) == (3, "failure")
    assert done["mpi"].result == "success"
    assert done["slow"].result == "failure" and done["slow"].failure_code
    assert account.task_output("runs", "hello") == "hello batch\n"
    assert account.task_output("runs", "hello", "stderr") == "oops\n"
    assert account.read_task_file("runs", "hello", "stdout.txt", max_bytes=5) == b"hello"
    assert account.get_task("runs", "after").state == "completed"
    counts = account.job_task_counts("runs")
    assert (counts.completed, counts.succeeded, counts.failed) == (5, 3, 2)
    with pytest.raises(BatchNotFoundError) as info:
        account.read_task_file("runs", "hello", "nothing.txt")
    assert info.value.code and info.value.status == 404
    account.set_auto_complete("runs")  # every task is done: the job completes by itself
    wait_for(lambda: account.get_job("runs").state == "completed", "the job to complete")


def test_a_task_file_is_read_from_an_offset_and_past_its_end_reads_nothing(account):
    account.create_pool(spec("rng"))
    steady(account, "rng", idle=1)
    account.create_job("rng-job", "rng")
    assert account.add_tasks("rng-job", [TaskDefinition(id="t", command="echo 0123456789")]).ok
    completed(account, "rng-job", 1)
    assert account.read_task_file("rng-job", "t", offset=3) == b"3456789\n"
    assert account.read_task_file("rng-job", "t", offset=3, max_bytes=4) == b"3456"
    assert account.read_task_file("rng-job", "t", offset=11) == b""  # the end: nothing new
    assert account.read_task_file("rng-job", "t", offset=50, max_bytes=10) == b""


def test_a_missing_task_or_file_is_one_error_and_no_logged_traceback(account, caplog):
    """A download that fails is read as any other Batch error: its code, and no
    "deserialization error" warning with the SDK's traceback on stderr before it."""
    account.create_pool(spec("nf"))
    steady(account, "nf", idle=1)
    account.create_job("nf-job", "nf")
    assert account.add_tasks("nf-job", [TaskDefinition(id="done", command="true")]).ok
    completed(account, "nf-job", 1)
    caplog.set_level(logging.WARNING)
    for args, code in (
        (("no-such-job", "done"), "JobNotFound"),
        (("nf-job", "no-such-task"), "TaskNotFound"),
        (("nf-job", "done", "nothing.txt"), "FileNotFound"),
    ):
        with pytest.raises(BatchNotFoundError) as info:
            account.read_task_file(*args)
        assert info.value.code == code and info.value.status == 404 and "\n" not in str(info.value), str(info.value)
    assert not caplog.records, [r.getMessage() for r in caplog.records]


def test_terminate_and_delete_twice_are_not_errors(account):
    account.create_pool(idle_spec("td"))
    account.create_job("td-job", "td")
    account.reset_requests()

    def state() -> str | None:  # via the job list: GET /jobs/{id} would hide a poller's requests
        return next((j.state for j in account.list_jobs() if j.id == "td-job"), None)

    assert account.terminate_job("td-job", "done here") is True
    wait_for(lambda: state() == "completed", "td-job to be completed")
    assert account.terminate_job("td-job") is False
    assert [j.id for j in account.list_jobs(state="completed")] == ["td-job"]
    assert account.delete_job("td-job") is True
    assert account.delete_job("td-job") is False
    assert account.terminate_job("td-job") is False
    wait_for(lambda: state() is None, "td-job to be gone")
    # sent without LROPollers: a poller would have started a thread that GETs the job
    assert "GET /jobs/{id}" not in account.requests
    assert not [t for t in threading.enumerate() if t.name.startswith("LROPoller")]
    assert account.requests["POST /jobs/{id}/terminate"] == 3 and account.requests["DELETE /jobs/{id}"] == 2


def test_job_schedule_lifecycle(account):
    account.create_pool(spec("sched"))
    steady(account, "sched", idle=1)
    created = account.create_job_schedule("nightly", "sched", recurrence_interval=timedelta(seconds=1))
    assert created.created
    again = account.create_job_schedule("nightly", "sched", recurrence_interval=5)
    assert not again.created and again.existing.pool_id == "sched"
    info = account.get_job_schedule("nightly")
    assert (info.state, info.pool_id, info.recurrence_interval) == ("active", "sched", timedelta(seconds=1))
    job = wait_for(lambda: account.get_job_schedule("nightly").recent_job_id, "the schedule's first job")
    # without a job manager the job starts empty and stays open until its tasks are in
    (waiting,) = account.list_jobs_from_schedule("nightly", state="active")
    assert (waiting.id, waiting.pool_id, waiting.on_all_tasks_complete) == (job, "sched", "noaction")
    assert account.task_ids(job) == set()
    assert account.add_tasks(job, [TaskDefinition(id="tick", command="echo tick")]).added == ["tick"]
    account.set_auto_complete(job)
    wait_for(lambda: account.get_job(job).state == "completed", "the recurrence's job to end with its task")
    assert account.task_output(job, "tick") == "tick\n"
    assert job in {j.id for j in account.list_jobs_from_schedule("nightly")}
    assert account.terminate_job_schedule("nightly") is True
    wait_for(lambda: account.get_job_schedule("nightly").state == "completed", "the schedule to complete")
    # already completed: not an error (Azure answers JobScheduleCompleted → False; localbatch accepts it)
    assert account.terminate_job_schedule("nightly") in (True, False)
    assert account.delete_job_schedule("nightly") is True
    assert account.delete_job_schedule("nightly") is False

    def gone():
        try:
            account.get_job_schedule("nightly")
        except BatchNotFoundError as exc:
            return exc.code == "JobScheduleNotFound"
        return False

    wait_for(gone, "the schedule to be deleted")


# --- credentials, errors, threads --------------------------------------------------------------


def test_forged_key_is_an_auth_error(localbatch, account, caplog):
    caplog.set_level(logging.DEBUG)
    forged = base64.b64encode(b"f" * 64).decode()
    bad = BatchAccount(account.service_url, key=forged, client_options={"logging_enable": True})
    with pytest.raises(BatchAuthError) as info:
        bad.list_pools()
    err = info.value
    assert (err.code, err.status) == ("AuthenticationFailed", 403)
    assert forged not in str(err) and forged not in repr(bad) and "\n" not in str(err)
    assert caplog.records and forged not in caplog.text  # the SDK's own debug logging included
    assert err.__cause__ is not None  # chained to the SDK error
    bad.close()


def test_get_account_caches_and_is_thread_safe(localbatch, lb_workspace, monkeypatch):
    monkeypatch.setenv("BATCHFED_HOME", str(lb_workspace))
    url = localbatch.account_url("shared")
    accounts: list[BatchAccount] = []
    errors: list[BaseException] = []

    def work():
        try:
            acct = get_account(url + "/")
            accounts.append(acct)
            acct.create_pool(spec("sh"), exists_ok=True)
            for _ in range(5):
                acct.snapshot_pools()
                acct.create_job("sh-job", "sh")
        except BaseException as exc:  # collected: assertion below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    assert len({id(a) for a in accounts}) == 1 and len(accounts) == 8
    assert accounts[0].requests["POST /jobs"] == 40


def test_a_task_larger_than_any_request_fails_alone_with_batchs_reason(account):
    # 200,000 variables: a > 4 MB body, larger than localbatch reads; its neighbours still go in
    account.create_pool(idle_spec("huge"))
    account.create_job("huge-env", "huge")
    env = {f"V{i}": "x" for i in range(200_000)}
    tasks = [
        TaskDefinition(id="small-1", command="true"),
        TaskDefinition(id="huge", command="true", environment=env),
        *(TaskDefinition(id=f"small-{i}", command="true") for i in range(2, 120)),
    ]
    report = account.add_tasks("huge-env", tasks)
    assert [(r.task_id, r.code) for r in report.failed] == [("huge", "RequestBodyTooLarge")]
    assert report.succeeded == 119 and "huge" not in account.task_ids("huge-env")


def test_a_virtual_network_is_only_a_label_on_localbatch_and_the_log_says_so(account, caplog):
    # localbatch refuses what it cannot honour (a VNet placement): the adapter sends the subnet
    # as a label instead, says so, and the pool's facts still name it for placement
    subnet = "/subscriptions/s/resourceGroups/r/providers/Microsoft.Network/virtualNetworks/v/subnets/a"
    with caplog.at_level(logging.WARNING, logger="batchfed_lab.batch"):
        assert account.create_pool(spec("vnet-pool", virtual_network={"arm_subnet_id": subnet}))
    warned = [r.getMessage() for r in caplog.records if "virtual_network" in r.getMessage()]
    assert len(warned) == 1 and "vnet-pool" in warned[0]
    assert account.snapshot_pool("vnet-pool").facts.subnet_id == subnet
