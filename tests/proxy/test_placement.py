"""The proxy places each job on a pool that satisfies its constraints, explains what it
cannot place, keeps FIFO per job id, and handles merges, terminate/delete and schedules.

Everything is real: a detached proxy process, localbatch running the tasks, SQLite.
"""

from __future__ import annotations

import pytest
from federation_stack import IMAGE, POOLS, SUBNET, wait_for

from batchfed_lab.store import ActionState

# one job per constraint family → the pools that satisfy it (see conftest's table)
FAMILIES = [
    ("location", "federation_constraints: {pool: {location: eastus}}", {"eus-hpc", "eus-lowpri"}),
    ("vm-size", "federation_constraints: {compute_node: {vm_size: STANDARD_NC6S_V3}}", {"we-gpu"}),
    ("cores", "federation_constraints: {compute_node: {cores: {amount: 64}}}", {"eus-hpc"}),
    (
        "memory-m-suffix",
        "federation_constraints: {compute_node: {memory: {amount: 32768m, schedulable_variance: 0}}}",
        {"eus-lowpri"},
    ),
    ("gpu", "federation_constraints: {compute_node: {gpu: true}}", {"we-gpu"}),
    ("gpu-task", "gpus: 1", {"we-gpu"}),
    ("infiniband", "federation_constraints: {compute_node: {infiniband: true}}", {"eus-hpc"}),
    ("exclusive", "federation_constraints: {compute_node: {exclusive: true, gpu: false}}", {"jp-custom"}),
    ("low-priority-only", "federation_constraints: {pool: {low_priority_nodes: {exclusive: true}}}", {"eus-lowpri", "jp-auto"}),
    ("dedicated-only", "federation_constraints: {pool: {low_priority_nodes: {allow: false}, location: eastus}}", {"eus-hpc"}),
    ("autoscale-only", "federation_constraints: {pool: {autoscale: {exclusive: true}}}", {"jp-auto"}),
    ("no-autoscale", "federation_constraints: {pool: {autoscale: {allow: false}, location: japaneast}}", {"jp-custom"}),
    ("native", "federation_constraints: {pool: {native: true}}", {"we-native"}),
    ("windows", "federation_constraints: {pool: {windows: true}}", {"jp-windows"}),
    ("custom-image", f"federation_constraints: {{pool: {{custom_image_arm_id: '{IMAGE.upper()}'}}}}", {"jp-custom"}),
    ("virtual-network", f"federation_constraints: {{pool: {{virtual_network_arm_id: '{SUBNET}'}}}}", {"jp-custom"}),
    (
        "registry",
        "federation_constraints: {pool: {container_registries: {public: [docker.io]}}}\n  registry_image: true",
        {"we-native"},
    ),
    (
        "backlog",
        "federation_constraints: {pool: {max_active_task_backlog: {ratio: 0}, location: westeurope}}",
        {"we-native", "we-gpu"},
    ),
    ("multi-instance", "multi_instance: true", {"eus-hpc"}),
]


def job_yaml(job_id: str, extra: str) -> str:
    task = "{command: echo placed on $AZ_BATCH_POOL_ID}"
    lines = [f"- id: {job_id}"]
    if extra == "gpus: 1":
        task = "{command: echo gpu, gpus: 1}"
    elif extra == "multi_instance: true":
        task = "{command: echo $AZ_BATCH_HOST_LIST, multi_instance: {num_instances: 2}}"
    elif "registry_image: true" in extra:
        lines.append("  " + extra.split("\n")[0])
        task = "{command: echo container, docker_image: myacr.azurecr.io/tools/echo:1}"
        extra = ""
    if extra and extra not in ("gpus: 1", "multi_instance: true"):
        lines.append(f"  {extra}")
    lines.append(f"  tasks: [{task}]")
    return "\n".join(lines)


@pytest.fixture(scope="module")
def families(stack):
    stack.federation("families", list(POOLS))
    stack.start_proxy()
    body = "job_specifications:\n" + "\n".join(job_yaml(f"fam-{name}", extra) for name, extra, _ in FAMILIES)
    sub = stack.client.submit("families", body)
    sub.wait(timeout=60)
    return {a.target_id: a for a in sub.actions()}


@pytest.mark.parametrize("name,extra,allowed", FAMILIES, ids=[f[0] for f in FAMILIES])
def test_each_constraint_family_lands_on_a_pool_that_satisfies_it(stack, families, name, extra, allowed):
    action = families[f"fam-{name}"]
    assert action.state is ActionState.PLACED
    (loc,) = stack.client.locations("families", f"fam-{name}")
    assert loc.pool_id in allowed, f"{name}: placed on {loc.pool_id}, allowed {sorted(allowed)}"
    assert action.id in loc.unique_ids and loc.account in ("lab1", "lab2")


def test_placed_tasks_really_ran_on_the_chosen_pool(stack, families):
    def done():
        rows = stack.client.tasks("families", "fam-location")
        return rows and rows[0].task.state == "completed" and rows[0]

    row = wait_for(done, 30, "the task to complete")
    out = stack.client.task_output("families", "fam-location", row.task.id)
    assert out.strip() == f"placed on {row.pool_id}"


def test_blocked_job_explains_per_pool_later_actions_wait_other_ids_flow_zap_unblocks(stack):
    stack.federation("blocking", ["we-native", "eus-hpc", "jp-custom"], unique_job_ids=False)
    stack.start_proxy()
    c = stack.client
    blocked = c.submit(
        "blocking",
        "job_specifications:\n- id: stuck\n  federation_constraints: {pool: {location: mars}}\n  tasks: [{command: echo a}]\n",
    )
    wait_for(lambda: c.blocked("blocking"), 20, "the action to be blocked")
    (b,) = c.blocked("blocking")
    assert b.id == blocked.unique_ids[0] and b.state is ActionState.BLOCKED
    assert "no pool satisfies the constraints" in b.reason
    assert {v["pool_id"]: v["constraint"] for v in b.verdicts} == {
        "we-native": "location",
        "eus-hpc": "location",
        "jp-custom": "location",
    }
    assert all(v["required"] == "mars" and v["actual"] for v in b.verdicts)

    later = c.submit("blocking", "job_specifications:\n- id: stuck\n  tasks: [{command: echo b}]\n")
    other = c.submit("blocking", "job_specifications:\n- id: free\n  tasks: [{command: echo c}]\n")
    other.wait(timeout=30)  # another job id flows past the blocked one
    assert later.actions()[0].state is ActionState.QUEUED, "a later action of the blocked job id must wait"

    c.zap("blocking", b.id)
    later.wait(timeout=30)
    assert blocked.actions()[0].state is ActionState.ZAPPED


def test_fifo_per_job_id(stack):
    stack.federation("fifo", ["we-native", "eus-hpc"], unique_job_ids=False)
    stack.start_proxy()
    subs = [stack.client.submit("fifo", f"job_specifications:\n- id: seq\n  tasks: [{{command: echo {i}}}]\n") for i in range(12)]
    for s in subs:
        s.wait(timeout=60)
    placed = [s.actions()[0] for s in subs]
    order = sorted(placed, key=lambda a: a.placed_at)
    assert [a.id for a in order] == [a.id for a in placed], "actions of one job id are placed in enqueue order"


def test_non_unique_federation_merges_task_groups_and_suffixes_dependent_ids(stack):
    stack.federation("merging", ["we-native", "eus-hpc"], unique_job_ids=False)
    stack.start_proxy()
    group = (
        "job_specifications:\n- id: merged\n  federation_constraints: {pool: {location: westeurope}}\n"
        "  tasks:\n  - {id: prep, command: echo prep}\n  - {id: run, command: echo run, depends_on: [prep]}\n"
    )
    first = stack.client.submit("merging", group)
    first.wait(timeout=30)
    second = stack.client.submit("merging", group)
    second.wait(timeout=30)
    (loc,) = stack.client.locations("merging", "merged")
    assert loc.pool_id == "we-native" and set(loc.unique_ids) == set(first.unique_ids + second.unique_ids)
    ids = stack.account("lab1").task_ids("merged")
    expected = {f"{t}-{u.replace('-', '')[:8]}" for u in first.unique_ids + second.unique_ids for t in ("prep", "run")}
    assert ids == expected


def test_generated_ids_are_renumbered_when_merging(stack):
    stack.federation("renumber", ["we-native"], unique_job_ids=False)
    stack.start_proxy()
    body = "job_specifications:\n- id: gen\n  tasks:\n  - {command: echo a}\n  - {command: echo b}\n"
    for _ in range(2):
        stack.client.submit("renumber", body).wait(timeout=30)
    assert stack.account("lab1").task_ids("gen") == {"task-00000", "task-00001", "task-00002", "task-00003"}


def test_unique_federation_refuses_a_second_add_of_a_job_id(stack):
    from batchfed_lab.errors import ConflictError

    stack.federation("uniq", ["we-native"])
    body = "job_specifications:\n- id: once\n  tasks: [{command: echo}]\n"
    stack.client.submit("uniq", body)
    before = len(stack.client.actions("uniq"))
    with pytest.raises(ConflictError, match="once"):
        stack.client.submit("uniq", body)
    assert len(stack.client.actions("uniq")) == before


def test_terminate_and_delete_reach_every_pool_of_the_job(stack):
    # two accounts: a Batch job id is unique per account, so one id on two pools needs two
    stack.federation("spread", ["we-native", "eus-lowpri"], unique_job_ids=False)
    stack.start_proxy()
    c = stack.client
    for loc in ("westeurope", "eastus"):
        c.submit(
            "spread",
            f"job_specifications:\n- id: twice\n  federation_constraints: {{pool: {{location: {loc}}}}}\n  tasks: [{{command: sleep 30}}]\n",
        ).wait(timeout=30)
    assert {loc.pool_id for loc in c.locations("spread", "twice")} == {"we-native", "eus-lowpri"}

    term = c.terminate("spread", ["twice"])
    wait_for(
        lambda: all(
            a.state is ActionState.DONE
            for a in c.store.list_actions("spread", target_id="twice")
            if a.method.value == "terminate"
        ),
        30,
        "terminate to be done",
    )
    assert term.unique_ids and all(loc.terminated_at is not None for loc in c.locations("spread", "twice"))
    assert stack.account("lab1").get_job("twice").state in ("terminating", "completed")

    c.delete("spread", ["twice"])
    wait_for(lambda: not c.locations("spread", "twice"), 30, "locations to be deleted")
    from batchfed_lab.errors import BatchNotFoundError

    def gone():
        try:
            stack.account("lab1").get_job("twice")
        except BatchNotFoundError:
            return True
        return False

    wait_for(gone, 30, "the Batch job to be deleted")


def test_terminate_without_location_is_skipped_unless_forced(stack):
    stack.federation("ghost", ["we-native"])
    res = stack.client.terminate("ghost", ["never-added"])
    assert res.skipped == ["never-added"] and not res.actions
    forced = stack.client.terminate("ghost", ["never-added"], force=True)
    assert len(forced.actions) == 1


def test_job_schedule_creates_recurring_jobs(stack):
    stack.federation("sched", ["we-native"])
    stack.start_proxy()
    sub = stack.client.submit(
        "sched",
        "job_specifications:\n- id: nightly\n  recurrence:\n    schedule: {recurrence_interval: 1}\n"
        "  tasks: [{command: echo tick}]\n",
    )
    sub.wait(timeout=30)
    (loc,) = stack.client.locations("sched", "nightly")
    assert loc.kind.value == "job_schedule"
    account = stack.account("lab1")
    done = wait_for(
        lambda: len(ids := [j.id for j in account.list_jobs_from_schedule("nightly", state="completed")]) >= 2 and ids,
        30,
        "two recurrences to run their tasks",
    )
    for job_id in done[:2]:  # Batch creates each job empty; the proxy adds the task group to each
        assert account.task_ids(job_id) == {"task-00000"}
        assert account.task_output(job_id, "task-00000") == "tick\n"
    stack.client.delete("sched", schedule_ids=["nightly"])
    wait_for(lambda: not stack.client.locations("sched", "nightly"), 30, "the schedule to be deleted")


def test_a_payload_that_no_longer_validates_fails_with_its_reason(stack):
    from batchfed_lab.store import NewAction

    stack.federation("badpayload", ["we-native"])
    stack.start_proxy()
    (a,) = stack.client.store.enqueue("badpayload", [NewAction(kind="job", method="add", target_id="x", payload={"version": 99})])
    wait_for(lambda: stack.client.store.get_action("badpayload", a.id).state is ActionState.FAILED, 20, "the action to fail")
    failed = stack.client.store.get_action("badpayload", a.id)
    assert "unknown payload version 99" in failed.error


def test_concurrent_decisions_respect_each_others_blackout(stack):
    """Three jobs decided at once on 8 workers go to three pools: a pool is held (blackout,
    load) the moment it is chosen, not when its placement completes."""
    import threading

    from batchfed_lab.proxy import lifecycle
    from batchfed_lab.proxy.daemon import LoopOptions, ProxyDaemon
    from batchfed_lab.proxy.processor import ProcessingOptions

    lifecycle.stop(stack.client.workspace, all=True)
    stack.federation("spreadout", ["we-native", "eus-hpc", "jp-custom", "jp-auto"])
    daemon = ProxyDaemon(
        stack.client.store,
        stack.client.account,
        ProcessingOptions(blackout_interval=60, evaluate_autoscale=False),
        LoopOptions(workers=8, lease_ttl=3, lease_renew=1),
        proxy_id="blackout-test",
    )
    stack.client.proxy_suspend()  # enqueue all three before the proxy looks
    runner = threading.Thread(target=daemon.run)
    runner.start()
    try:
        body = "job_specifications:\n" + "".join(f"- id: spread-{i}\n  tasks: [{{command: 'true'}}]\n" for i in range(3))
        sub = stack.client.submit("spreadout", body)
        stack.client.proxy_resume()
        sub.wait(timeout=30)
        pools = [stack.client.locations("spreadout", f"spread-{i}")[0].pool_id for i in range(3)]
        assert len(set(pools)) == 3, f"placed on {pools}: a blacked-out pool was chosen again"
    finally:
        stack.client.proxy_resume()
        daemon.stop()
        runner.join(timeout=60)


def _in_process_proxy(stack, proxy_id: str):
    """A proxy in this process (no lease, no threads: ``run_once``) whose Batch clients are the
    test's own, so their request counters show every call it makes."""
    from batchfed_lab.proxy import lifecycle
    from batchfed_lab.proxy.daemon import ProxyDaemon
    from batchfed_lab.proxy.processor import ProcessingOptions

    lifecycle.stop(stack.client.workspace, all=True)
    return ProxyDaemon(
        stack.client.store,
        stack.client.account,
        ProcessingOptions(blackout_interval=0, evaluate_autoscale=False),
        proxy_id=proxy_id,
    )


def test_a_remembered_job_merges_without_being_read_and_is_created_again_when_deleted_outside(stack):
    stack.federation("memo", ["we-native"], unique_job_ids=False)
    proxy = _in_process_proxy(stack, "memo-test")
    acct = stack.account("lab1")
    body = "job_specifications:\n- id: memo-job\n  tasks: [{command: 'true'}, {command: 'true'}]\n"

    first = stack.client.submit("memo", body)
    proxy.run_once("memo")
    assert first.actions()[0].state is ActionState.PLACED
    acct.reset_requests()
    second = stack.client.submit("memo", body)
    proxy.run_once("memo")
    assert second.actions()[0].state is ActionState.PLACED
    calls = acct.requests
    assert "GET /jobs/{id}" not in calls and "POST /jobs" not in calls, calls  # merged on what it created
    assert calls["GET /jobs/{id}/tasks"] == 1 and calls["POST /jobs/{id}/addtaskcollection"] == 1
    assert acct.task_ids("memo-job") == {f"task-{i:05d}" for i in range(4)}

    acct.delete_job("memo-job")  # behind the federation's back
    wait_for(lambda: "memo-job" not in {j.id for j in acct.list_jobs()}, 20, "the job to be deleted")
    third = stack.client.submit("memo", body)
    proxy.run_once("memo")
    assert third.actions()[0].state is ActionState.PLACED
    assert acct.task_ids("memo-job") == {"task-00000", "task-00001"}  # a new job, numbered afresh


def test_a_remembered_job_closed_outside_refuses_the_add_and_the_pool_is_excluded(stack):
    stack.federation("memo-closed", ["we-native"], unique_job_ids=False)
    proxy = _in_process_proxy(stack, "memo-closed-test")
    acct = stack.account("lab1")
    body = "job_specifications:\n- id: memo-closed\n  tasks: [{command: 'true'}]\n"
    stack.client.submit("memo-closed", body)
    proxy.run_once("memo-closed")
    acct.terminate_job("memo-closed")  # behind the federation's back
    wait_for(lambda: acct.get_job("memo-closed").state == "completed", 20, "the job to complete")

    later = stack.client.submit("memo-closed", body)
    proxy.run_once("memo-closed")
    (a,) = later.actions()
    assert a.state is ActionState.BLOCKED, "its only pool holds a closed job of that id"
    assert "JobCompleted" in a.progress["last_exclusion"]
    acct.reset_requests()
    wait_for(lambda: proxy.run_once("memo-closed"), 20, "the blocked action's retry")
    assert acct.requests.get("GET /jobs/{id}") == 1  # the retry asks the service, not its memory
    (a,) = later.actions()
    assert a.state is ActionState.BLOCKED and "is completed" in a.progress["last_exclusion"]
    stack.client.zap("memo-closed", a.id)


def test_a_task_too_large_for_batch_fails_its_action_at_once_with_batchs_reason(stack):
    # 200,000 variables: more than 4 MB as one task, more than Batch takes in any request
    stack.federation("toolarge", ["we-native"])
    stack.start_proxy()
    env = {f"V{i}": "x" for i in range(200_000)}
    job = {"id": "huge", "tasks": [{"command": "true", "environment_variables": env}]}
    (a,) = stack.client.submit("toolarge", {"job_specifications": [job]}).actions()
    done = (ActionState.FAILED, ActionState.PLACED)
    wait_for(lambda: stack.client.store.get_action("toolarge", a.id).state in done, 60, "the action to end")
    failed = stack.client.store.get_action("toolarge", a.id)
    assert failed.state is ActionState.FAILED and "RequestBodyTooLarge" in failed.error
    assert failed.errors == 0  # failed at once: no retry, no outage
