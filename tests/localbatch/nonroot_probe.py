"""Run as a user other than root by test_localbatch_isolation: start localbatch in the workspace
given, run a task that probes what it can read and daemonises, and print what happened as JSON."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from azure.batch import models as bm
from azure.core.exceptions import ResourceNotFoundError

from batchfed_lab import runtime
from batchfed_lab.localbatch import control


def _wait(condition, timeout: float = 20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise SystemExit(f"timed out: {condition}")


def _file(client, task_id: str, name: str) -> str:
    """The file's text, or "" while the task has not written it yet."""
    try:
        return b"".join(client.download_task_file("job", task_id, name)).decode()
    except ResourceNotFoundError:
        return ""


def main(ws: Path) -> dict:
    info = control.start(ws, allocation_delay_ms=20)
    client = control.batch_client("nonroot", ws)
    out: dict = {}
    try:
        image = bm.BatchVmImageReference(publisher="canonical", offer="0001-com-ubuntu-server-jammy", sku="22_04-lts")
        vmc = bm.VirtualMachineConfiguration(image_reference=image, node_agent_sku_id="batch.node.ubuntu 22.04")
        client.create_pool(
            bm.BatchPoolCreateOptions(id="pool", vm_size="x", virtual_machine_configuration=vmc, target_dedicated_nodes=1)
        )
        _wait(lambda: [n for n in client.list_nodes("pool") if n.state == bm.BatchNodeState.IDLE])
        client.create_job(bm.BatchJobCreateOptions(id="job", pool_info=bm.BatchPoolInfo(pool_id="pool")))
        probe = (
            f"cat /proc/{info.pid}/environ >/dev/null 2>&1 && echo read || echo denied; "
            f"cat {control.key_file(ws)} >/dev/null 2>&1 && echo read || echo denied; "
            "setsid sleep 300 & echo $! > daemon"
        )
        client.create_task("job", bm.BatchTaskCreateOptions(id="probe", command_line=f"/bin/sh -c '{probe}'"))
        _wait(lambda: client.get_task("job", "probe").state == bm.BatchTaskState.COMPLETED)
        out["server_environment"], out["key"] = _file(client, "probe", "stdout.txt").split()
        daemon = int(_file(client, "probe", "wd/daemon"))
        out["daemon_ends_with_its_task"] = bool(_wait(lambda: not runtime.alive(daemon), 10))
        client.create_task(
            "job",
            bm.BatchTaskCreateOptions(id="long", command_line="/bin/sh -c 'setsid sleep 300 & echo $! > daemon; sleep 300'"),
        )
        _wait(lambda: client.get_task("job", "long").state == bm.BatchTaskState.RUNNING)
        daemon = int(_wait(lambda: _file(client, "long", "wd/daemon").strip()))
    finally:
        client.close()
        control.stop(ws)
    out["daemon_ends_with_stop"] = bool(_wait(lambda: not runtime.alive(daemon), 10))
    return out


if __name__ == "__main__":
    print(json.dumps(main(Path(sys.argv[1]))))
