"""A fuller workflow against a running localbatch, with nothing but the azure-batch SDK.

Written only against azure-batch, as for Azure Batch itself: a pool, a job with task
dependencies, 12 tasks (a fan-out, a fan-in over an id range, a failing exit code with a retry,
a task blocked by the failed one), the files they leave, and the errors the service answers.
Command lines ask for a shell explicitly, as on Azure, where they are not run under one.

It finds the endpoint and key as ``localbatch_sdk_only.py`` does; start a server first, e.g.
``python -m batchfed_lab.localbatch start --workspace /tmp/ws``, then
``LOCALBATCH_WORKSPACE=/tmp/ws python docs/examples/localbatch_sdk_workflow.py``.
It prints one line per fact it checked and exits non-zero on the first that does not hold.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

from azure.batch import BatchClient
from azure.batch import models as bm
from azure.core.credentials import AzureNamedKeyCredential
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError

POOL = "workflow-pool"


def endpoint_and_key() -> tuple[str, str, str]:
    url, key = os.environ.get("LOCALBATCH_ACCOUNT_URL"), os.environ.get("LOCALBATCH_ACCOUNT_KEY")
    if url and key:
        return url, url.rstrip("/").rsplit("/", 1)[-1], key
    home = Path(os.environ.get("LOCALBATCH_WORKSPACE") or os.environ.get("BATCHFED_HOME") or Path.home() / ".batchfed")
    discovery = home / "runtime" / "localbatch.json"
    if not discovery.exists():
        sys.exit(f"no running localbatch: {discovery} is missing (start one, or set LOCALBATCH_ACCOUNT_URL/_KEY)")
    record = json.loads(discovery.read_text())
    account = os.environ.get("LOCALBATCH_ACCOUNT", "demo")
    key = Path(record["key_file"]).read_text().strip()
    return record["account_url_template"].format(account=account), account, key


def check(fact: str, holds: bool) -> None:
    print(f"{'ok' if holds else 'FAILED'}: {fact}")
    if not holds:
        sys.exit(1)


def shell(script: str) -> str:
    return f"/bin/sh -c '{script}'"


def create_pool(client: BatchClient) -> None:
    try:
        client.create_pool(
            bm.BatchPoolCreateOptions(
                id=POOL,
                vm_size="standard_d2s_v3",
                virtual_machine_configuration=bm.VirtualMachineConfiguration(
                    image_reference=bm.BatchVmImageReference(
                        publisher="canonical", offer="0001-com-ubuntu-server-jammy", sku="22_04-lts"
                    ),
                    node_agent_sku_id="batch.node.ubuntu 22.04",
                ),
                target_dedicated_nodes=2,
                task_slots_per_node=2,
            )
        )
    except ResourceExistsError:
        pass  # re-running the example reuses the pool
    deadline = time.monotonic() + 120
    while client.get_pool(POOL).allocation_state != bm.AllocationState.STEADY:
        if time.monotonic() > deadline:
            sys.exit("the pool did not become steady")
        time.sleep(0.2)


def tasks() -> list[bm.BatchTaskCreateOptions]:
    """1-4 produce a part each; 5-8 each read one part (7 fails with exit code 3, retried once);
    9 joins parts 1-4 (an id range); 10 waits on 7 and stays blocked; 11 follows 9; 12 writes a
    result file and to stderr."""

    def task(n: int, script: str, after: list[str] | None = None, **kwargs) -> bm.BatchTaskCreateOptions:
        deps = bm.BatchTaskDependencies(task_ids=after) if after else None
        return bm.BatchTaskCreateOptions(id=str(n), command_line=shell(script), depends_on=deps, **kwargs)

    out = [task(n, f"echo part {n} > part.txt; echo produced {n}") for n in range(1, 5)]
    for n in range(5, 9):
        code = 3 if n == 7 else 0
        out.append(
            task(
                n,
                f"echo consumed {n - 4}; exit {code}",
                [str(n - 4)],
                constraints=bm.BatchTaskConstraints(max_task_retry_count=1),
            )
        )
    join = bm.BatchTaskDependencies(task_id_ranges=[bm.BatchTaskIdRange(start=1, end=4)])
    out.append(bm.BatchTaskCreateOptions(id="9", command_line=shell("echo joined 1-4"), depends_on=join))
    out.append(task(10, "echo never", ["7"]))
    out.append(task(11, "echo after 9", ["9"]))
    out.append(
        task(
            12,
            "echo result $N > result.txt; echo warning >&2",
            environment_settings=[bm.EnvironmentSetting(name="N", value="42")],
        )
    )
    return out


def wait_for_completed(client: BatchClient, job_id: str, count: int) -> None:
    deadline = time.monotonic() + 120
    while client.get_job_task_counts(job_id).task_counts.completed < count:
        if time.monotonic() > deadline:
            sys.exit(f"fewer than {count} tasks completed within 120 s")
        time.sleep(0.2)


def check_outcomes(client: BatchClient, job_id: str) -> None:
    by_id = {t.id: t for t in client.list_tasks(job_id)}
    done = [i for i in map(str, range(1, 13)) if i != "7" and i != "10"]
    check(
        "tasks 1-6, 8, 9, 11, 12 succeeded",
        all(by_id[i].execution_info.result == bm.BatchTaskExecutionResult.SUCCESS for i in done),
    )
    seven = by_id["7"].execution_info
    check(
        "task 7 failed with exit code 3 after one retry", (seven.exit_code, seven.retry_count, seven.result) == (3, 1, "failure")
    )
    check("task 7's failure is FailureExitCode", seven.failure_info is not None and seven.failure_info.code == "FailureExitCode")
    check("task 10 stays active: its dependency failed", by_id["10"].state == bm.BatchTaskState.ACTIVE)
    out = b"".join(client.download_task_file(job_id, "9", "stdout.txt")).decode().strip()
    check("task 9 ran after 1-4 and printed", out == "joined 1-4")


def check_files(client: BatchClient, job_id: str) -> None:
    names = {f.name for f in client.list_task_files(job_id, "12", recursive=True)}
    check("task 12 left stdout.txt, stderr.txt and wd/result.txt", {"stdout.txt", "stderr.txt", "wd/result.txt"} <= names)
    props = client.get_task_file_properties(job_id, "12", "wd/result.txt")
    check("wd/result.txt is 10 bytes", props.content_length == len("result 42\n"))
    part = b"".join(client.download_task_file(job_id, "12", "wd/result.txt", ocp_range="bytes=7-8")).decode()
    check("a byte range reads 42", part == "42")
    err = b"".join(client.download_task_file(job_id, "12", "stderr.txt")).decode().strip()
    check("stderr.txt holds what went to stderr", err == "warning")


def check_errors(client: BatchClient, job_id: str) -> None:
    try:
        client.get_task(job_id, "no-such-task")
        check("a missing task raises ResourceNotFoundError", False)
    except ResourceNotFoundError as exc:
        check("a missing task raises ResourceNotFoundError (TaskNotFound)", exc.error.code == "TaskNotFound")
    try:
        client.create_job(bm.BatchJobCreateOptions(id=job_id, pool_info=bm.BatchPoolInfo(pool_id=POOL)))
        check("a second job with the same id raises ResourceExistsError", False)
    except ResourceExistsError as exc:
        check("a second job with the same id raises ResourceExistsError (JobExists)", exc.error.code == "JobExists")
    try:
        client.create_task(job_id, bm.BatchTaskCreateOptions(id="not a valid id", command_line="true"))
        check("an invalid task id is a 400", False)
    except HttpResponseError as exc:
        check("an invalid task id is a 400", exc.status_code == 400)


def main() -> None:
    url, account, key = endpoint_and_key()
    client = BatchClient(url, AzureNamedKeyCredential(account, key))
    create_pool(client)
    job_id = f"workflow-{int(time.time() * 1000)}"
    client.create_job(bm.BatchJobCreateOptions(id=job_id, pool_info=bm.BatchPoolInfo(pool_id=POOL), uses_task_dependencies=True))
    result = client.create_tasks(job_id, tasks())
    check("12 tasks added", len(result.result_values or []) == 12)
    wait_for_completed(client, job_id, 11)
    check_outcomes(client, job_id)
    check_files(client, job_id)
    check_errors(client, job_id)
    client.begin_delete_job(job_id, polling_interval=1).result()
    client.close()
    print("workflow ok")


if __name__ == "__main__":
    main()
