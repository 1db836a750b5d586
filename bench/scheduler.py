"""Scheduler benchmark: median decision time and decisions/s for 10 … 10,000 pools.

Every constraint family is set (location, subnet, custom image, windows, native,
autoscale, low-priority, exclusive, gpu, infiniband, cores, memory, registries,
backlog), and the pools are varied so each family excludes some of them while
a tenth pass everything and go through the choice policy.

Targets (issue 2): ≤ 2 ms median at 1,000 pools; 10,000 pools ≤ 12× the
1,000-pool time (linear). Run: ``.venv/bin/python bench/scheduler.py``.
"""

from __future__ import annotations

import gc
import random
import statistics
import sys
import time

from batchfed_lab.config.constraints import FederationConstraints
from batchfed_lab.scheduler import decide
from batchfed_lab.scheduler.types import NodeCounts, PoolFacts, PoolSnapshot, TaskGroup, VmSize

SUBNET = "/subscriptions/s/resourcegroups/rg/providers/microsoft.network/virtualnetworks/v/subnets/batch"
IMAGE = "/subscriptions/s/resourcegroups/rg/providers/microsoft.compute/images/research-2026"
LOCATIONS = ["westeurope", "eastus", "japaneast"]
SIZES = [
    VmSize("standard_nc24rs_v3", 24, 458752, gpus=4, rdma=True),
    VmSize("standard_nc6s_v3", 6, 114688, gpus=1),
    VmSize("standard_d8_v3", 8, 32768),
    VmSize("standard_hb120rs_v3", 120, 458752, rdma=True),
]

CONSTRAINTS = FederationConstraints.model_validate(
    {
        "pool": {
            "autoscale": {"allow": True, "exclusive": False},
            "low_priority_nodes": {"allow": True, "exclusive": False},
            "native": True,
            "windows": False,
            "location": "westeurope",
            "container_registries": {"private_docker_hub": True, "public": ["mcr.microsoft.com"]},
            "max_active_task_backlog": {"ratio": 4, "autoscale_exempt": True},
            "custom_image_arm_id": IMAGE,
            "virtual_network_arm_id": SUBNET,
        },
        "compute_node": {
            "cores": {"amount": 16, "schedulable_variance": 1},
            "memory": {"amount": "256g"},
            "exclusive": False,
            "gpu": True,
            "infiniband": True,
        },
    }
)
GROUP = TaskGroup(total_instances=8, task_count=8, gpu=True, infiniband=True, registries=frozenset({"myacr.azurecr.io"}))


def make_pools(n: int, seed: int = 7) -> list[PoolSnapshot]:
    rnd = random.Random(seed)
    pools = []
    for i in range(n):
        passes_all = i % 10 == 0
        size = SIZES[0] if passes_all else rnd.choice(SIZES)
        facts = PoolFacts(
            pool_id=f"pool-{i:05d}",
            service_url=f"https://acct{i % 7}.{LOCATIONS[i % 3]}.batch.azure.com",
            account=f"acct{i % 7}",
            location="westeurope" if passes_all else rnd.choice(LOCATIONS),
            vm_size=size.name,
            size=size,
            task_slots_per_node=rnd.choice([1, 2, 4]),
            autoscale=rnd.random() < 0.2,
            inter_node_communication=rnd.random() < 0.5,
            native=passes_all or rnd.random() < 0.7,
            windows=not passes_all and rnd.random() < 0.1,
            custom_image_id=IMAGE if passes_all or rnd.random() < 0.8 else None,
            subnet_id=SUBNET if passes_all or rnd.random() < 0.8 else None,
            registry_logins=frozenset({"myacr.azurecr.io"}) if passes_all or rnd.random() < 0.8 else frozenset(),
            target_dedicated=4,
            target_low_priority=2,
        )
        pools.append(
            PoolSnapshot(
                facts,
                dedicated=NodeCounts(idle=rnd.randint(0, 4), running=rnd.randint(0, 4)),
                low_priority=NodeCounts(idle=rnd.randint(0, 2), running=rnd.randint(0, 2)),
                active_tasks=rnd.randint(0, 40),
            )
        )
    return pools


def median_seconds(pool_sets: dict[int, list[PoolSnapshot]], repeats: dict[int, int], rounds: int = 40) -> dict[int, float]:
    """Median decision time per pool-set size. The sizes are timed in turns, a slice of each
    per round, so a noisy stretch of the machine weighs on every size alike and the
    10,000 / 1,000 ratio compares like with like."""
    now = time.time()
    gc.collect()
    for pools in pool_sets.values():
        decide(CONSTRAINTS, GROUP, pools, now)  # warm-up
    samples: dict[int, list[float]] = {n: [] for n in pool_sets}
    for _ in range(rounds):
        for n, pools in pool_sets.items():
            for _ in range(max(1, repeats[n] // rounds)):
                t0 = time.perf_counter()
                decide(CONSTRAINTS, GROUP, pools, now)
                samples[n].append(time.perf_counter() - t0)
    return {n: statistics.median(s) for n, s in samples.items()}


def main() -> int:
    sizes = [10, 100, 1_000, 10_000]
    repeats = {10: 4000, 100: 1000, 1_000: 600, 10_000: 120}
    pool_sets = {n: make_pools(n) for n in sizes}
    results = median_seconds(pool_sets, repeats)
    print(f"{'pools':>7} {'median ms':>10} {'decisions/s':>12} {'eligible':>9} {'chosen':>14}")
    for n in sizes:
        med = results[n]
        d = decide(CONSTRAINTS, GROUP, pool_sets[n], time.time())
        eligible = sum(v.status in ("eligible", "chosen") for v in d.verdicts)
        print(f"{n:>7} {med * 1e3:>10.3f} {1 / med:>12.0f} {eligible:>9} {d.pool and d.pool.rsplit('#')[-1]!s:>14}")
    ratio = results[10_000] / results[1_000]
    ok_time = results[1_000] <= 0.002
    ok_linear = ratio <= 12
    print()
    print(f"1,000 pools: {results[1_000] * 1e3:.3f} ms median (target ≤ 2 ms): {'met' if ok_time else 'MISSED'}")
    print(f"10,000 / 1,000 pools: {ratio:.2f}× (target ≤ 12×, linear): {'met' if ok_linear else 'MISSED'}")
    return 0 if ok_time and ok_linear else 1


if __name__ == "__main__":
    sys.exit(main())
