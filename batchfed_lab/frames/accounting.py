"""Frames of a shared federation: estimated cost (per task, or summed by user, job or pool)
and the fair-share view (``%fed share``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from ._base import _frame

COST_TASK_COLUMNS: dict[str, Any] = {
    "job_id": "object",
    "submitter": "object",
    "pool_id": "object",
    "location": "object",
    "vm_size": "object",
    "task_id": "object",
    "state": "object",
    "node_kind": "object",
    "run_s": "float64",
    "price_per_hour": "float64",
    "est_cost": "float64",
}
COST_BY = {"user": "submitter", "job": "job_id", "pool": "pool_id"}
ESTIMATE_NOTE = "estimates: list prices (docs/accounting.md) x task run time; not a bill"


def cost_frame(rows: Sequence[Mapping[str, Any]], by: str | None = None, *, as_of: str | None = None) -> pd.DataFrame:
    """Estimated cost. Without ``by``: one row per task — ``job_id``, ``submitter``,
    ``pool_id``, ``location``, ``vm_size``, ``task_id``, ``state``, ``node_kind`` (dedicated
    unless the pool has only low-priority nodes), ``run_s`` (start → end, or → now while it
    runs), ``price_per_hour`` (its node's) and ``est_cost`` = run time × node price ÷ task
    slots per node (NaN without a price). With ``by`` (``user``, ``job`` or ``pool``): one
    row per user / job / pool with ``tasks``, ``run_h`` and ``est_cost`` (sum), largest first.
    ``df.attrs["note"]`` says these are estimates and ``df.attrs["prices_as_of"]`` dates them."""
    df = _frame([dict(r) for r in rows], COST_TASK_COLUMNS)
    if by is not None:
        key = COST_BY[by]
        grouped = df.groupby(key, dropna=False, observed=True)
        df = pd.DataFrame(
            {
                "tasks": grouped["task_id"].count().astype("int64"),
                "run_h": grouped["run_s"].sum() / 3600.0,
                "est_cost": grouped["est_cost"].sum(min_count=1),
            }
        )
        df = df.reset_index().rename(columns={key: "user" if by == "user" else key})
        df = df.sort_values("est_cost", ascending=False, na_position="last").reset_index(drop=True)
    df.attrs["note"] = ESTIMATE_NOTE
    df.attrs["prices_as_of"] = as_of
    return df


SHARE_COLUMNS: dict[str, Any] = {
    "user": "object",
    "group": "object",
    "shares": "float64",
    "norm_shares": "float64",
    "usage": "float64",
    "norm_usage": "float64",
    "fair_share": "float64",
    "queued": "int64",
    "blocked": "int64",
    "placed": "int64",
    "held_cores": "float64",
    "spent": "float64",
    "budget": "float64",
}


def share_frame(rows: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """``%fed share`` (like Slurm's ``sshare``): one row per user — ``user``, ``group``,
    ``shares`` (raw) and ``norm_shares`` (fraction of all), ``usage`` (decayed core-hours
    the federation's placements ran: measured once finished, elapsed while running) and
    ``norm_usage`` (fraction of all), ``fair_share`` (the factor 2^(−U/S) the claim order uses, over usage
    plus the unrun rest of running placements' estimates: 1 unserved, 0.5 served exactly
    their share), their work: ``queued``, ``blocked`` and ``placed`` actions,
    ``held_cores`` (placed work counted against quotas), and this month's estimated
    ``spent`` against their ``budget`` (NaN: none). Highest factor first."""
    df = _frame([dict(r) for r in rows], SHARE_COLUMNS)
    return df.sort_values(["fair_share", "user"], ascending=[False, True]).reset_index(drop=True)
