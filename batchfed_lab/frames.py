"""pandas DataFrames for pools, placements, verdicts and tasks (documented columns, proper dtypes).

Timestamps are UTC-aware; states are categoricals with every possible state as a category.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd

from .store.records import Action, ActionState

ACTION_STATES = [s.value for s in ActionState]


def _utc(values: Sequence[Any]) -> pd.Series:
    return pd.to_datetime(pd.Series(list(values), dtype="object"), utc=True)


def placements_frame(actions: Sequence[Action]) -> pd.DataFrame:
    """One row per action: job id, kind, unique id, pool, account, location, state,
    enqueued / placed time and latency (seconds)."""
    rows = []
    for a in actions:
        pool = (a.progress or {}).get("pool") or {}
        rows.append(
            {
                "job_id": a.target_id,
                "kind": a.kind.value,
                "method": a.method.value,
                "unique_id": a.id,
                "pool_id": pool.get("pool_id"),
                "account": pool.get("account"),
                "location": pool.get("location"),
                "state": a.state.value,
                "reason": a.reason if a.state is ActionState.BLOCKED else a.error,
                "enqueued": a.enqueued_at,
                "placed": a.placed_at,
                "latency_s": (a.placed_at - a.enqueued_at).total_seconds() if a.placed_at else None,
            }
        )
    cols = ["job_id", "kind", "method", "unique_id", "pool_id", "account", "location", "state", "reason", "enqueued", "placed", "latency_s"]
    df = pd.DataFrame(rows, columns=cols)
    df["state"] = pd.Categorical(df["state"], categories=ACTION_STATES)
    df["enqueued"] = _utc(df["enqueued"])
    df["placed"] = _utc(df["placed"])
    df["latency_s"] = df["latency_s"].astype("float64")
    return df
