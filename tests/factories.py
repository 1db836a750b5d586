"""Factories shared by tests: scheduler inputs in one line each."""

from __future__ import annotations

from typing import Any

from batchfed_lab.config.constraints import FederationConstraints
from batchfed_lab.scheduler.types import NodeCounts, PoolFacts, PoolSnapshot, TaskGroup, VmSize

NOW = 1_800_000_000.0

SIZES = {
    "standard_d2_v3": VmSize("standard_d2_v3", 2, 8192),
    "standard_d4_v3": VmSize("standard_d4_v3", 4, 16384),
    "standard_d8_v3": VmSize("standard_d8_v3", 8, 32768),
    "standard_e4_v3": VmSize("standard_e4_v3", 4, 32768),
    "standard_nc6s_v3": VmSize("standard_nc6s_v3", 6, 114688, gpus=1),
    "standard_hb120rs_v3": VmSize("standard_hb120rs_v3", 120, 458752, rdma=True),
    "standard_nc24rs_v3": VmSize("standard_nc24rs_v3", 24, 458752, gpus=4, rdma=True),
    "standard_f1": VmSize("standard_f1", 1, 2048),
}


def make_pool(
    pool_id: str = "p",
    *,
    vm_size: str = "standard_d2_v3",
    size: Any = "catalog",
    idle: int = 1,
    running: int = 0,
    lp_idle: int = 0,
    lp_running: int = 0,
    slots: int = 1,
    account: str = "acct",
    location: str = "westeurope",
    active_tasks: int | None = 0,
    allocation_state: str = "steady",
    state: str = "active",
    blackout_until: float | None = None,
    **facts: Any,
) -> PoolSnapshot:
    facts.setdefault("target_dedicated", idle + running)
    facts.setdefault("target_low_priority", lp_idle + lp_running)
    f = PoolFacts(
        pool_id=pool_id,
        service_url=f"http://127.0.0.1:1/accounts/{account}",
        account=account,
        location=location,
        vm_size=vm_size,
        size=SIZES.get(vm_size.lower()) if size == "catalog" else size,
        task_slots_per_node=slots,
        **facts,
    )
    return PoolSnapshot(
        f,
        dedicated=NodeCounts(idle=idle, running=running),
        low_priority=NodeCounts(idle=lp_idle, running=lp_running),
        active_tasks=active_tasks,
        allocation_state=allocation_state,
        state=state,
        blackout_until=blackout_until,
    )


def make_constraints(**sections: Any) -> FederationConstraints:
    """``make_constraints(pool={'location': 'eastus'}, compute_node={'gpu': True})``"""
    return FederationConstraints.model_validate(sections)


def group(total: int = 1, **kw: Any) -> TaskGroup:
    kw.setdefault("max_instances", 1)
    return TaskGroup(total_instances=total, task_count=kw.pop("task_count", total), **kw)
