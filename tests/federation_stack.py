"""A real embedded federation for proxy tests and drills: localbatch with 7 pools in 3 locations
over 2 accounts, an SQLite store, and the proxy as a detached process.

Pools (chosen so every constraint family has exactly the pools that satisfy it):

=============  =======  ==========  ===================  ======================================
pool           account  location    size                 notable
=============  =======  ==========  ===================  ======================================
we-native      lab1     westeurope  standard_d2_v3       2 nodes × 2 slots, native, registry login
we-gpu         lab1     westeurope  standard_nc6s_v3     GPU, 1 node × 1 slot
eus-hpc        lab1     eastus      standard_hb120rs_v3  RDMA, 2 nodes, inter-node communication
eus-lowpri     lab2     eastus      standard_e4_v3       low-priority only (2 nodes), 32 GiB
jp-auto        lab2     japaneast   standard_d4_v3       autoscale ($TargetDedicatedNodes = 1)
jp-custom      lab2     japaneast   standard_f2s_v2      custom image + subnet, 1 slot
jp-windows     lab2     japaneast   standard_d2_v3       Windows
=============  =======  ==========  ===================  ======================================
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from batchfed_lab.batch.adapter import BatchAccount, close_accounts
from batchfed_lab.client import Client, connect
from batchfed_lab.config import load_pool
from batchfed_lab.localbatch import control
from batchfed_lab.proxy import lifecycle

IMAGE = "/subscriptions/s1/resourceGroups/rg/providers/Microsoft.Compute/images/research-2026"
SUBNET = "/subscriptions/s1/resourceGroups/rg/providers/Microsoft.Network/virtualNetworks/vnet/subnets/batch"


def _pool(pid: str, size: str, location: str, **extra: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {"id": pid, "vm_size": size, "location": location, "vm_count": {"dedicated": 1}}
    spec.update(extra)
    return {"pool_specification": spec}


POOLS: dict[str, tuple[str, dict[str, Any]]] = {
    "we-native": (
        "lab1",
        _pool(
            "we-native",
            "standard_d2_v3",
            "westeurope",
            vm_count={"dedicated": 2},
            task_slots_per_node=2,
            vm_configuration={
                "platform_image": {"publisher": "Canonical", "offer": "ubuntu-24_04-lts", "sku": "server", "native": True}
            },
            container_registries=[{"server": "myacr.azurecr.io", "username": "robot"}],
        ),
    ),
    "we-gpu": ("lab1", _pool("we-gpu", "standard_nc6s_v3", "westeurope")),
    "eus-hpc": (
        "lab1",
        _pool(
            "eus-hpc",
            "standard_hb120rs_v3",
            "eastus",
            vm_count={"dedicated": 2},
            inter_node_communication_enabled=True,
            task_slots_per_node=4,
        ),
    ),
    "eus-lowpri": (
        "lab2",
        _pool("eus-lowpri", "standard_e4_v3", "eastus", vm_count={"dedicated": 0, "low_priority": 2}, task_slots_per_node=2),
    ),
    "jp-auto": (
        "lab2",
        _pool(
            "jp-auto",
            "standard_d4_v3",
            "japaneast",
            vm_count={"dedicated": 0},
            autoscale={"enabled": True, "formula": "$TargetDedicatedNodes = 1;", "evaluation_interval": "00:05:00"},
            task_slots_per_node=2,
        ),
    ),
    "jp-custom": (
        "lab2",
        _pool(
            "jp-custom",
            "standard_f2s_v2",
            "japaneast",
            vm_configuration={"custom_image": {"arm_image_id": IMAGE, "node_agent": "batch.node.ubuntu 22.04"}},
            virtual_network={"arm_subnet_id": SUBNET},
        ),
    ),
    "jp-windows": (
        "lab2",
        _pool(
            "jp-windows",
            "standard_d2_v3",
            "japaneast",
            vm_configuration={
                "platform_image": {"publisher": "MicrosoftWindowsServer", "offer": "WindowsServer", "sku": "2022-datacenter"}
            },
        ),
    ),
}

FAST_FEDERATION = """\
federation:
  proxy_options:
    polling_interval: {federations: 5, actions: 1, recurrences: 0.2}
    logging: {level: debug}
    scheduling:
      after_success: {blackout_interval: 0, evaluate_autoscale: true}
"""


@dataclass
class Stack:
    root: Path
    client: Client
    urls: dict[str, str]
    config: Path
    started: list[int] = field(default_factory=list)

    def account(self, name: str) -> BatchAccount:
        return self.client.account(self.urls[name])

    def start_proxy(self, *, standby: bool = False) -> lifecycle.ProxyProcess:
        proxy, _ = lifecycle.start(self.client.workspace, config=self.config, standby=standby)
        self.started.append(proxy.pid)
        return proxy

    def kill9(self, proxy: lifecycle.ProxyProcess) -> None:
        os.kill(proxy.pid, signal.SIGKILL)
        wait_for(lambda: not lifecycle.pid_alive(proxy.pid), 10, "the killed proxy to exit")

    def federation(self, fed_id: str, pools: list[str], *, unique_job_ids: bool = True) -> None:
        """Create a federation of ``pools``, taking them out of earlier test federations
        (a pool belongs to one federation at a time)."""
        for fed in self.client.federations():
            mine = [m.pool_id for m in self.client.pools(fed.id) if m.pool_id in pools]
            if mine:
                self.client.remove_pools(fed.id, mine)
        self.client.create_federation(fed_id, unique_job_ids=unique_job_ids)
        for name in pools:
            account, _ = POOLS[name]
            self.client.add_pools(fed_id, pool_ids=[name], batch_service_url=self.urls[account])


def wait_for(predicate, timeout: float, what: str, interval: float = 0.05):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(interval)


def located_counts(stack: Stack, fed: str) -> tuple[dict[str, int], dict[str, int]]:
    """Per job id of ``fed`` (ids start with ``<fed>-``): on how many pools it exists in Batch,
    and how many tasks it has there — counted in localbatch, not in the proxy's bookkeeping."""
    pools: dict[str, int] = {}
    tasks: dict[str, int] = {}
    for account in stack.urls:
        acct = stack.account(account)
        for job in acct.list_jobs():
            if not job.id.startswith(f"{fed}-"):
                continue
            pools[job.id] = pools.get(job.id, 0) + 1
            tasks[job.id] = tasks.get(job.id, 0) + len(acct.task_ids(job.id))
    return pools, tasks


def workspace_processes(root: Path) -> list[int]:
    """Pids of live processes started for this workspace (server, proxy, tasks)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            cwd = os.readlink(entry / "cwd")
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z" and (str(root) in cmdline or cwd.startswith(str(root))):
            found.append(int(entry.name))
    return found


@contextmanager
def running_stack(
    root: Path,
    *,
    settings: str = "proxy: {lease_seconds: 3, renew_seconds: 1, workers: 8}\n",
    federation_yaml: str = FAST_FEDERATION,
    latency_ms: float | None = None,
) -> Iterator[Stack]:
    """localbatch + the pools of ``POOLS`` in a fresh workspace at ``root``; on exit every
    proxy and localbatch are stopped by pid and no process of the workspace may survive."""
    root.mkdir(parents=True, exist_ok=True)
    # short leases so failover tests take seconds, not the production 15 s
    (root / "settings.yaml").write_text(settings)
    old = os.environ.get("BATCHFED_HOME")
    os.environ["BATCHFED_HOME"] = str(root)
    client = connect(root)
    config = root / "federation.yaml"
    config.write_text(federation_yaml)
    # relaxed limits: recurrences shorter than Azure's 1-minute minimum, so schedules tick in tests
    control.start(client.workspace, allocation_delay_ms=50, latency_ms=latency_ms, relaxed_limits=True)
    try:
        urls = {a: control.account_url(a, client.workspace) for a in ("lab1", "lab2")}
        for _name, (account, spec) in POOLS.items():
            client.account(urls[account]).create_pool(load_pool(spec).pool_specification)
        s = Stack(root, client, urls, config)
        # nodes come up after the allocation delay; tests start from steady pools
        wait_for(
            lambda: all(p.allocation_state == "steady" for a in urls.values() for p in client.account(a).list_pools()),
            20,
            "pools to be steady",
        )
        yield s
    finally:
        lifecycle.stop(client.workspace, all=True)
        control.stop(client.workspace)
        client.close()
        close_accounts()
        if old is None:
            os.environ.pop("BATCHFED_HOME", None)
        else:
            os.environ["BATCHFED_HOME"] = old
        left = workspace_processes(root)
        for pid in left:
            os.kill(pid, signal.SIGKILL)
        assert not left, f"processes left behind: {left}"
