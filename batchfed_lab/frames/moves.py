"""The frame of moves: placed jobs the proxy re-placed, one row per move (from, to, why, when)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd

from ..store.records import Action, utc
from ._base import ACTION_STATES, _frame

MOVE_KINDS = pd.CategoricalDtype(["pool_gone", "node_lost", "start_failed", "preempted", "exit_code", "stalled"])

MOVE_COLUMNS: dict[str, Any] = {
    "job_id": "object",
    "move": "Int64",
    "kind": MOVE_KINDS,
    "from_pool": "object",
    "from_location": "object",
    "to_pool": "object",
    "why": "object",
    "when": "utc",
    "state": ACTION_STATES,
    "moved_tasks": "Int64",
    "finished_tasks": "Int64",
    "unique_id": "object",
}


def moves_frame(moves: Sequence[Action]) -> pd.DataFrame:
    """Each move of a job, oldest first: ``job_id``, ``move`` (1, 2, …), ``kind`` (the failure
    kind, categorical), ``from_pool`` / ``from_location`` (the pool it left), ``to_pool`` (where
    it went; ``None`` while the move is queued or blocked), ``why`` (the rule that fired),
    ``when`` (UTC, the decision), ``state`` of the move's action, ``moved_tasks`` (tasks that
    moved) and ``finished_tasks`` (tasks that had finished and stayed), ``unique_id`` of the move."""
    rows = []
    for a in moves:
        record = a.payload.get("move") or {}
        placed = a.progress.get("placed_pool")
        moved = a.progress.get("moved_tasks")
        rows.append(
            {
                "job_id": a.target_id,
                "move": len(record.get("kinds") or ()) or None,
                "kind": record.get("kind"),
                "from_pool": (record.get("from") or {}).get("pool_id"),
                "from_location": (record.get("from") or {}).get("location"),
                "to_pool": placed.rsplit("#", 1)[-1] if isinstance(placed, str) else None,
                "why": record.get("why"),
                "when": utc(record["at"]) if isinstance(record.get("at"), (int, float)) else None,
                "state": a.state.value,
                "moved_tasks": len(moved) if isinstance(moved, list) else None,
                "finished_tasks": a.progress.get("finished_tasks"),
                "unique_id": a.id,
            }
        )
    return _frame(rows, MOVE_COLUMNS)
