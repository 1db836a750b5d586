"""Frames of federations, pools (live capacity) and proxies."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import pandas as pd

from ..accounting.cost import pool_burn_rate
from ..accounting.prices import PriceTable, default_prices
from ._base import (
    ALLOCATION_STATES,
    POOL_STATES,
    PROXY_ROLES,
    _frame,
)

if TYPE_CHECKING:
    from ..results import FederationSummary
    from ..scheduler.types import PoolSnapshot


# --------------------------------------------------------------------------- federations
FEDERATION_COLUMNS: dict[str, Any] = {
    "federation_id": "object",
    "unique_job_ids": "bool",
    "created_at": "utc",
    "pools": "int64",
    "pool_ids": "object",
    "accounts": "object",
    "locations": "object",
    "located_jobs": "int64",
    "queued": "int64",
    "blocked": "int64",
    "failed": "int64",
}


def federations_frame(summaries: Sequence[FederationSummary]) -> pd.DataFrame:
    """One row per federation.

    ``federation_id``; ``unique_job_ids`` (bool); ``created_at`` (UTC); ``pools`` (count);
    ``pool_ids``, ``accounts``, ``locations`` (comma-separated, sorted); ``located_jobs``
    (job ids with a location); ``queued``, ``blocked``, ``failed`` (actions by state).
    """
    rows = []
    for s in summaries:
        rows.append(
            {
                "federation_id": s.federation.id,
                "unique_job_ids": s.federation.unique_job_ids,
                "created_at": s.federation.created_at,
                "pools": len(s.pools),
                "pool_ids": ", ".join(p.pool_id for p in s.pools),
                "accounts": ", ".join(sorted({p.account or "" for p in s.pools} - {""})),
                "locations": ", ".join(sorted({p.location or "" for p in s.pools} - {""})),
                "located_jobs": s.counts.located_jobs,
                "queued": s.counts.queued,
                "blocked": s.counts.blocked,
                "failed": s.counts.failed,
            }
        )
    return _frame(rows, FEDERATION_COLUMNS)


# --------------------------------------------------------------------------- pools
POOL_COLUMNS: dict[str, Any] = {
    "federation_id": "object",
    "pool_id": "object",
    "account": "object",
    "location": "object",
    "vm_size": "object",
    "cores": "Int64",
    "memory_gib": "float64",
    "gpus": "Int64",
    "rdma": "boolean",
    "task_slots_per_node": "int64",
    "dedicated_idle": "int64",
    "dedicated_running": "int64",
    "dedicated_other": "int64",
    "dedicated_target": "int64",
    "low_priority_idle": "int64",
    "low_priority_running": "int64",
    "low_priority_other": "int64",
    "low_priority_target": "int64",
    "slots_total": "int64",
    "slots_available": "int64",
    "active_tasks": "Int64",
    "backlog_ratio": "float64",
    "autoscale": "bool",
    "inter_node_communication": "bool",
    "native": "bool",
    "windows": "bool",
    "state": POOL_STATES,
    "allocation_state": ALLOCATION_STATES,
    "blackout_until": "utc",
    "batch_service_url": "object",
    "price_per_hour": "float64",
    "low_priority_price_per_hour": "float64",
    "burn_per_hour": "float64",
}


def _pool_row(federation_id: str | None, s: PoolSnapshot, table: PriceTable) -> dict[str, Any]:
    f = s.facts
    price = table.price_of(f)
    size = f.size
    slots = f.task_slots_per_node
    available = s.total_slots
    return {
        "federation_id": federation_id,
        "pool_id": f.pool_id,
        "account": f.account,
        "location": f.location,
        "vm_size": f.vm_size,
        "cores": None if size is None else size.cores,
        "memory_gib": None if size is None else round(size.memory_gib, 3),
        "gpus": None if size is None else size.gpus,
        "rdma": None if size is None else size.rdma,
        "task_slots_per_node": slots,
        "dedicated_idle": s.dedicated.idle,
        "dedicated_running": s.dedicated.running,
        "dedicated_other": s.dedicated.other,
        "dedicated_target": f.target_dedicated,
        "low_priority_idle": s.low_priority.idle,
        "low_priority_running": s.low_priority.running,
        "low_priority_other": s.low_priority.other,
        "low_priority_target": f.target_low_priority,
        "slots_total": (s.dedicated.total + s.low_priority.total) * slots,
        "slots_available": available,
        "active_tasks": s.active_tasks,
        "backlog_ratio": (s.active_tasks / available) if s.active_tasks is not None and available else None,
        "autoscale": f.autoscale,
        "inter_node_communication": f.inter_node_communication,
        "native": f.native,
        "windows": f.windows,
        "state": s.state,
        "allocation_state": s.allocation_state,
        "blackout_until": None if s.blackout_until is None else pd.Timestamp(s.blackout_until, unit="s", tz="UTC"),
        "batch_service_url": f.service_url,
        "price_per_hour": None if price is None else price.dedicated,
        "low_priority_price_per_hour": None if price is None else price.low_priority,
        "burn_per_hour": pool_burn_rate(s, price),
    }


def pools_frame(federation_id: str | None, snapshots: Iterable[PoolSnapshot], prices: PriceTable | None = None) -> pd.DataFrame:
    """One row per pool of a federation, with its live capacity.

    Identity: ``federation_id``, ``pool_id``, ``account``, ``location``, ``batch_service_url``.
    Size (from the VM size catalog; ``<NA>`` when the size is unknown): ``vm_size``,
    ``cores`` (Int64), ``memory_gib`` (float), ``gpus`` (Int64), ``rdma`` (boolean).
    Nodes by state for each kind — ``dedicated_idle``, ``dedicated_running``,
    ``dedicated_other`` (starting, rebooting, preempted, …), ``dedicated_target`` and the
    same four ``low_priority_*`` — and ``task_slots_per_node``.
    ``slots_total`` = all nodes × slots per node; ``slots_available`` = (idle + running
    nodes) × slots per node (SPEC §1). ``active_tasks`` (Int64; ``<NA>`` when not
    counted) and ``backlog_ratio`` = active tasks ÷ available slots (NaN without slots).
    Flags: ``autoscale``, ``inter_node_communication``, ``native``, ``windows``.
    ``state`` (active / deleting / missing) and ``allocation_state`` (steady / resizing /
    stopping) are categorical; ``blackout_until`` (UTC) is when a pool in its post-placement
    blackout becomes a candidate again (``NaT``: not blacked out, or not published).
    Cost ESTIMATES from the price table (``prices``, default the shipped one; NaN when the
    size or region has no price): ``price_per_hour`` and ``low_priority_price_per_hour`` of a
    node, and ``burn_per_hour``, what the pool's allocated nodes cost per hour now.
    """
    table = prices if prices is not None else default_prices()
    rows = [_pool_row(federation_id, s, table) for s in snapshots]
    return _frame(rows, POOL_COLUMNS)


# --------------------------------------------------------------------------- proxies
PROXY_COLUMNS: dict[str, Any] = {
    "proxy_id": "object",
    "host": "object",
    "pid": "Int64",
    "local": "bool",
    "running": "bool",
    "role": PROXY_ROLES,
    "leader": "bool",
    "suspended": "bool",
    "heartbeat_age_s": "float64",
    "version": "object",
    "started": "utc",
    "uptime_s": "float64",
    "federations": "object",
    "actions_processed": "int64",
    "placed": "int64",
    "blocked": "int64",
    "failed": "int64",
    "log": "object",
}


def proxies_frame(status: Sequence[dict[str, Any]]) -> pd.DataFrame:
    """``proxy status``: one row per proxy the workspace knows.

    ``proxy_id``, ``host`` (the machine it runs on), ``pid`` (Int64), ``local`` (it runs on
    this machine), ``running`` (its local process is alive, or its heartbeat in the store is
    younger than its lease), ``role`` (categorical: leader / standby / starting / stopping /
    stale: heartbeat older than the lease), ``leader`` (holds the
    lease), ``suspended``, ``heartbeat_age_s``, ``version``, ``started`` (UTC),
    ``uptime_s``, ``federations`` (watched, comma-separated), ``actions_processed``
    (sum of its outcome counters), ``placed``, ``blocked``, ``failed`` (three of those
    counters), ``log`` (its log file).
    """
    rows = []
    for s in status:
        counters = s.get("counters") or {}
        rows.append(
            {
                "proxy_id": s.get("proxy_id"),
                "host": s.get("host"),
                "pid": s.get("pid"),
                "local": bool(s.get("local")),
                "running": bool(s.get("running")),
                "role": s.get("role"),
                "leader": bool(s.get("leader")),
                "suspended": bool(s.get("suspended")),
                "heartbeat_age_s": s.get("heartbeat_age_s"),
                "version": s.get("version"),
                "started": s.get("started"),
                "uptime_s": s.get("uptime_s"),
                "federations": ", ".join(s.get("federations") or []),
                "actions_processed": sum(v for k, v in counters.items() if k != "task_add_failures" and isinstance(v, int)),
                **{k: int(counters.get(k) or 0) for k in ("placed", "blocked", "failed")},
                "log": s.get("log"),
            }
        )
    return _frame(rows, PROXY_COLUMNS)
