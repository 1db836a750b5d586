"""Drive a running localbatch with nothing but the azure-batch SDK.

The same code talks to Azure Batch when given an Azure account URL and key: that is the point.
It creates a pool, a job and three tasks, waits for them and prints their stdout.

Where it finds the endpoint and key (first match wins):

1. ``LOCALBATCH_ACCOUNT_URL`` and ``LOCALBATCH_ACCOUNT_KEY`` (the account name is the last part
   of the URL, ``http://127.0.0.1:<port>/accounts/<account>``);
2. the workspace ``LOCALBATCH_WORKSPACE`` or ``BATCHFED_HOME`` (default ``~/.batchfed``): the
   discovery file ``runtime/localbatch.json`` gives the URL, ``localbatch/key`` the key; the
   account is ``LOCALBATCH_ACCOUNT`` (default ``demo``).

Start a server first, e.g. ``python -m batchfed_lab.localbatch start --workspace /tmp/ws``,
then ``LOCALBATCH_WORKSPACE=/tmp/ws python docs/examples/localbatch_sdk_only.py``.
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
from azure.core.exceptions import ResourceExistsError


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


def main() -> None:
    url, account, key = endpoint_and_key()
    client = BatchClient(url, AzureNamedKeyCredential(account, key))

    try:
        client.create_pool(
            bm.BatchPoolCreateOptions(
                id="example-pool",
                vm_size="standard_d2s_v3",
                virtual_machine_configuration=bm.VirtualMachineConfiguration(
                    image_reference=bm.BatchVmImageReference(
                        publisher="canonical", offer="0001-com-ubuntu-server-jammy", sku="22_04-lts"
                    ),
                    node_agent_sku_id="batch.node.ubuntu 22.04",
                ),
                target_dedicated_nodes=1,
                task_slots_per_node=2,
                metadata=[bm.BatchMetadataItem(name="batchfed_location", value="westeurope")],
            )
        )
    except ResourceExistsError:
        pass  # re-running the example reuses the pool

    job_id = f"example-{int(time.time() * 1000)}"
    client.create_job(bm.BatchJobCreateOptions(id=job_id, pool_info=bm.BatchPoolInfo(pool_id="example-pool")))
    client.create_tasks(
        job_id,
        [
            bm.BatchTaskCreateOptions(
                id=f"task-{i}",
                # as on Azure, a command line is not run under a shell: ask for one to expand $VARS
                command_line=f"/bin/sh -c 'echo \"task {i} ran on $AZ_BATCH_NODE_ID\"'",
                environment_settings=[bm.EnvironmentSetting(name="N", value=str(i))],
            )
            for i in range(3)
        ],
    )

    deadline = time.monotonic() + 60
    while client.get_job_task_counts(job_id).task_counts.completed < 3:
        if time.monotonic() > deadline:
            sys.exit("the tasks did not finish within 60 s")
        time.sleep(0.2)

    for task in sorted(client.list_tasks(job_id), key=lambda t: t.id):
        out = b"".join(client.download_task_file(job_id, task.id, "stdout.txt")).decode().strip()
        print(f"{task.id}: exit {task.execution_info.exit_code}: {out}")
    client.begin_delete_job(job_id, polling_interval=1).result()
    client.close()


if __name__ == "__main__":
    main()
