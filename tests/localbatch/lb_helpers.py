"""Helpers shared by the localbatch tests (imported as ``lb_helpers``)."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from azure.batch import BatchClient
from azure.batch import models as bm

from batchfed_lab.localbatch import control
from batchfed_lab.localbatch.launch import isolation


def wait_for(condition: Callable[[], object], timeout: float = 20.0, what: str = "condition", interval: float = 0.05):
    """Poll ``condition`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(interval)


def leftover_processes(workspace: Path) -> list[str]:
    """Live localbatch servers of this workspace, and task processes under its node root."""
    found = []
    ws = str(workspace)
    root = str(isolation.node_root(workspace / "localbatch"))
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            stat = (entry / "stat").read_text()
            if stat[stat.rfind(")") + 2 :].startswith("Z"):
                continue  # a zombie is dead already
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            env = (entry / "environ").read_bytes().decode(errors="replace")
        except OSError:
            continue
        if (control.SERVER_MODULE in cmd and ws in cmd) or f"AZ_BATCH_NODE_ROOT_DIR={root}" in env:
            found.append(f"{entry.name}: {cmd[:120]}")
    return found


def sh(script: str) -> str:
    """Shell text as a Batch command line: Batch runs command lines without a shell, so name one
    (single-quoted, as the federation's adapter writes it)."""
    return "/bin/sh -c '" + script.replace("'", "'\\''") + "'"


def start_server(workspace: Path, **kwargs) -> control.LocalBatchInfo:
    kwargs.setdefault("allocation_delay_ms", 20)
    return control.start(workspace, **kwargs)


def vm_config(**kwargs) -> bm.VirtualMachineConfiguration:
    return bm.VirtualMachineConfiguration(
        image_reference=bm.BatchVmImageReference(publisher="canonical", offer="0001-com-ubuntu-server-jammy", sku="22_04-lts"),
        node_agent_sku_id="batch.node.ubuntu 22.04",
        **kwargs,
    )


def make_pool(
    client: BatchClient, pool_id: str = "pool", *, dedicated: int = 1, low: int = 0, slots: int = 1, wait: bool = True, **kwargs
) -> bm.BatchPool:
    client.create_pool(
        bm.BatchPoolCreateOptions(
            id=pool_id,
            vm_size="standard_d2s_v3",
            virtual_machine_configuration=kwargs.pop("virtual_machine_configuration", vm_config()),
            target_dedicated_nodes=dedicated,
            target_low_priority_nodes=low,
            task_slots_per_node=slots,
            **kwargs,
        )
    )
    if wait:
        return wait_for(lambda: _steady(client, pool_id, dedicated + low), 10, f"pool {pool_id} to be steady")
    return client.get_pool(pool_id)


def _steady(client: BatchClient, pool_id: str, nodes: int):
    p = client.get_pool(pool_id)
    ok = p.allocation_state == bm.AllocationState.STEADY and p.current_dedicated_nodes + p.current_low_priority_nodes == nodes
    return p if ok else None


def make_job(client: BatchClient, job_id: str = "job", pool_id: str = "pool", **kwargs) -> None:
    client.create_job(bm.BatchJobCreateOptions(id=job_id, pool_info=bm.BatchPoolInfo(pool_id=pool_id), **kwargs))


def wait_tasks_done(client: BatchClient, job_id: str, count: int, timeout: float = 30.0) -> list[bm.BatchTask]:
    wait_for(
        lambda: client.get_job_task_counts(job_id).task_counts.completed >= count, timeout, f"{count} completed tasks in {job_id}"
    )
    return list(client.list_tasks(job_id))


def stdout_of(client: BatchClient, job_id: str, task_id: str, name: str = "stdout.txt") -> str:
    return b"".join(client.download_task_file(job_id, task_id, name)).decode()
