"""``fed pool …``: the pools of a federation (add, remove, list) and of a Batch account
(list, create, delete, resize)."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError
from .shape import Result, done, frame_result, table

if TYPE_CHECKING:
    from ..client import Client
    from ..results import PoolSnapshot


# The columns the CLI prints; --raw and the DataFrames have them all.
POOL_TEXT = [
    "pool_id",
    "account",
    "location",
    "vm_size",
    "cores",
    "memory_gib",
    "gpus",
    "dedicated_idle",
    "dedicated_running",
    "low_priority_idle",
    "low_priority_running",
    "slots_available",
    "slots_total",
    "active_tasks",
    "autoscale",
    "allocation_state",
    "blackout_until",
    "price_per_hour",
]
ACCOUNT_POOL_TEXT = [
    "pool_id",
    "vm_size",
    "location",
    "state",
    "allocation_state",
    "dedicated_idle",
    "dedicated_running",
    "dedicated_other",
    "dedicated_target",
    "low_priority_idle",
    "low_priority_running",
    "low_priority_other",
    "low_priority_target",
    "task_slots_per_node",
    "autoscale",
    "active_tasks",
]


def _member(m: Any) -> dict[str, Any]:
    return {
        "federation_id": m.federation_id,
        "pool_id": m.pool_id,
        "account": m.account,
        "location": m.location,
        "batch_service_url": m.batch_service_url,
    }


def pool_add(c: Client, a: SimpleNamespace) -> Result:
    res = c.add_pools(
        a.federation_id,
        pool_config=list(a.pool_configs) or None,
        pool_ids=a.pool_ids,
        batch_service_url=a.batch_service_url,
        account=a.account,
        create=a.create,
    )
    names = ", ".join(f"{m.pool_id} ({m.account}, {m.location})" for m in res.pools)
    return done(f"added to {a.federation_id}: {names}", res, [_member(m) for m in res.pools], res.warnings)


def pool_remove(c: Client, a: SimpleNamespace) -> Result:
    res = c.remove_pools(a.federation_id, a.pool_ids, all=a.all, batch_service_url=a.batch_service_url)
    names = ", ".join(m.pool_id for m in res.pools) or "no pools"
    return done(f"removed from {a.federation_id}: {names}", res, [_member(m) for m in res.pools], res.warnings)


def pool_list(c: Client, a: SimpleNamespace) -> Result:
    if a.federation_id is None:
        return _account_pool_list(c, a)
    if a.batch_service_url or a.account:
        raise ConfigError("--batch-service-url / --account list the pools of a Batch account: give no federation id")
    return frame_result(c.pools_frame(a.federation_id), POOL_TEXT, f"federation {a.federation_id} has no pools")


def _where(a: SimpleNamespace) -> dict[str, Any]:
    return {"batch_service_url": a.batch_service_url, "account": a.account}


def _account_pool_list(c: Client, a: SimpleNamespace) -> Result:
    from ..frames import pools_frame

    snaps = c.account_pools(**_where(a))
    df = pools_frame(None, snaps)
    return Result(df, lambda: table(df, ACCOUNT_POOL_TEXT, "no pools"), lambda: [snapshot_dict(s) for s in snaps], rich=True)


def pool_create(c: Client, a: SimpleNamespace) -> Result:
    op = c.create_pool(Path(a.pool_config), exists_ok=a.exists_ok, **_where(a))
    return done(f"pool {op.pool_id} {'created' if op.changed else 'exists'} in {op.service_url}", op, asdict(op))


def pool_delete(c: Client, a: SimpleNamespace) -> Result:
    op = c.delete_pool(Path(a.pool_config), **_where(a))
    return done(f"pool {op.pool_id} {'deleting' if op.changed else 'already gone'}", op, asdict(op))


def pool_resize(c: Client, a: SimpleNamespace) -> Result:
    op = c.resize_pool(Path(a.pool_config), dedicated=a.dedicated, low_priority=a.low_priority, **_where(a))
    return done(f"pool {op.pool_id} resizing to {op.dedicated} dedicated, {op.low_priority} low-priority", op, asdict(op))


def snapshot_dict(snap: PoolSnapshot) -> dict[str, Any]:
    """A pool snapshot as JSON-ready data (what ``pool list --raw`` prints for an account)."""
    f, size = snap.facts, snap.facts.size
    return {
        "id": f.pool_id,
        "account": f.account,
        "service_url": f.service_url,
        "location": f.location,
        "vm_size": f.vm_size,
        "size": None
        if size is None
        else {"cores": size.cores, "memory_mib": size.memory_mib, "gpus": size.gpus, "rdma": size.rdma},
        "state": snap.state,
        "allocation_state": snap.allocation_state,
        "task_slots_per_node": f.task_slots_per_node,
        "autoscale": f.autoscale,
        "inter_node_communication": f.inter_node_communication,
        "native": f.native,
        "windows": f.windows,
        "custom_image_id": f.custom_image_id,
        "subnet_id": f.subnet_id,
        "registry_logins": sorted(f.registry_logins),
        "target_dedicated": f.target_dedicated,
        "target_low_priority": f.target_low_priority,
        "dedicated": {"idle": snap.dedicated.idle, "running": snap.dedicated.running, "other": snap.dedicated.other},
        "low_priority": {"idle": snap.low_priority.idle, "running": snap.low_priority.running, "other": snap.low_priority.other},
        "active_tasks": snap.active_tasks,
    }
