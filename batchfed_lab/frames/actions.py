"""Frames of actions: placements, blocked actions, job locations and schedule recurrences."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

import pandas as pd

from ..results import action_note
from ..scheduler.types import pool_key
from ..store.records import Action, ActionState, Location, PoolMember
from ._base import (
    ACTION_STATES,
    KINDS,
    METHODS,
    VERDICT_COLUMNS,
    _frame,
)

if TYPE_CHECKING:
    pass


# --------------------------------------------------------------------------- actions
PLACEMENT_COLUMNS: dict[str, Any] = {
    "job_id": "object",
    "submitter": "object",
    "priority": "int64",
    "kind": KINDS,
    "method": METHODS,
    "unique_id": "object",
    "pool_id": "object",
    "account": "object",
    "location": "object",
    "state": ACTION_STATES,
    "reason": "object",
    "enqueued": "utc",
    "placed": "utc",
    "latency_s": "float64",
}


_ERROR_ONLY = frozenset(ActionState) - {ActionState.BLOCKED, ActionState.PLACED}  # states whose reason is a stale block


def _placement_row(a: Action) -> dict[str, Any]:
    pool = (a.progress or {}).get("pool") or {}
    return {
        "job_id": a.target_id,
        "submitter": a.submitter,
        "priority": a.priority,
        "kind": a.kind.value,
        "method": a.method.value,
        "unique_id": a.id,
        "pool_id": pool.get("pool_id"),
        "account": pool.get("account"),
        "location": pool.get("location"),
        "state": a.state.value,
        "reason": a.error if a.state in _ERROR_ONLY else action_note(a),
        "enqueued": a.enqueued_at,
        "placed": a.placed_at,
        "latency_s": (a.placed_at - a.enqueued_at).total_seconds() if a.placed_at else None,
    }


def placements_frame(actions: Sequence[Action]) -> pd.DataFrame:
    """One row per action, in the order given (FIFO per job id from the client).

    ``job_id``; ``submitter`` (whose credential enqueued it) and ``priority``; ``kind``
    (job / job_schedule), ``method`` (add / terminate / delete) and
    ``state`` (queued / placed / done / blocked / failed / zapped) are categorical;
    ``unique_id``; where it was placed: ``pool_id``, ``account``, ``location`` (None until
    placed); ``reason`` (why it is blocked, the error it failed with, or the tasks a placement
    could not add, e.g. ``1 of 2 task(s) not added: a (TaskIdInUse: …)``); ``enqueued`` and
    ``placed`` (UTC); ``latency_s`` = placed − enqueued in seconds (NaN until placed).
    """
    return _frame([_placement_row(a) for a in actions], PLACEMENT_COLUMNS)


BLOCKED_COLUMNS: dict[str, Any] = {
    "job_id": "object",
    "submitter": "object",
    "kind": KINDS,
    "unique_id": "object",
    "state": ACTION_STATES,
    "reason": "object",
    "enqueued": "utc",
    "attempts": "int64",
    "next_attempt": "utc",
    **VERDICT_COLUMNS,
}


def blocked_frame(actions: Sequence[Action], pools: Iterable[PoolMember] = ()) -> pd.DataFrame:
    """Blocked and failed actions (and placed ones that left tasks out) with their per-pool
    explanation: one row per (action, pool verdict); an action without verdicts (e.g. failed)
    has one row with empty verdict columns.

    Action columns: ``job_id``, ``submitter``, ``kind``, ``unique_id``, ``state`` (categorical), ``reason``
    (the block reason, the failure, or the tasks not added), ``enqueued`` and ``next_attempt`` (UTC),
    ``attempts``. Verdict columns as in :func:`verdicts_frame`: ``pool_id``, ``account``,
    ``location``, ``status``, ``passed``, ``constraint``, ``required``, ``actual``,
    ``verdict``. ``account`` and ``location`` come from ``pools`` (the federation's
    members); a pool removed since the verdict was recorded has them empty.
    """
    members = {pool_key(m.batch_service_url, m.pool_id): m for m in pools}
    rows = []
    for a in actions:
        base = {
            "job_id": a.target_id,
            "submitter": a.submitter,
            "kind": a.kind.value,
            "unique_id": a.id,
            "state": a.state.value,
            "reason": action_note(a),
            "enqueued": a.enqueued_at,
            "attempts": a.attempts,
            "next_attempt": a.next_attempt_at,
        }
        verdicts = a.verdicts or []
        if not verdicts:
            rows.append({**base, "passed": False})
        for v in verdicts:
            m = members.get(str(v.get("pool", "")))
            rows.append(
                {
                    **base,
                    "pool_id": v.get("pool_id"),
                    "account": m.account if m else None,
                    "location": m.location if m else None,
                    "status": v.get("status"),
                    "passed": v.get("status") in ("chosen", "eligible"),
                    "constraint": v.get("constraint"),
                    "required": v.get("required"),
                    "actual": v.get("actual"),
                    "verdict": v.get("reason"),
                }
            )
    return _frame(rows, BLOCKED_COLUMNS)


# --------------------------------------------------------------------------- locations
LOCATION_COLUMNS: dict[str, Any] = {
    "job_id": "object",
    "submitter": "object",
    "kind": KINDS,
    "pool_id": "object",
    "account": "object",
    "location": "object",
    "unique_id": "object",
    "added": "utc",
    "terminated": "utc",
    "batch_service_url": "object",
    "batch_job_id": "object",
}


def locations_frame(locations: Sequence[Location], submitters: Mapping[str, str | None] | None = None) -> pd.DataFrame:
    """Placed jobs and job schedules: one row per (job id, pool, unique id served there).

    ``job_id``, ``submitter`` (of the action that placed it, from ``submitters``: action
    unique id → name), ``kind`` (categorical), where it lives: ``pool_id``, ``account``,
    ``location``, ``batch_service_url``; ``unique_id`` of the task group (action) and
    ``added`` (UTC) when it was added there; ``terminated`` (UTC) when the job was
    terminated on that pool (``NaT`` while it runs); ``batch_job_id``, the job's id on Batch
    there (its own id, unless a move to another pool of the same account derived one).
    """
    rows = []
    for loc in locations:
        base = {
            "job_id": loc.job_id,
            "kind": loc.kind.value,
            "pool_id": loc.pool_id,
            "account": loc.account,
            "location": loc.location,
            "terminated": loc.terminated_at,
            "batch_service_url": loc.batch_service_url,
            "batch_job_id": loc.batch_id,
        }
        pairs: list[tuple[str | None, datetime | None]] = list(zip(loc.unique_ids, loc.addition_timestamps)) or [
            (None, loc.created_at)
        ]
        for uid, at in pairs:
            rows.append({**base, "unique_id": uid, "added": at, "submitter": (submitters or {}).get(uid or "")})
    return _frame(rows, LOCATION_COLUMNS)


RECURRENCE_COLUMNS: dict[str, Any] = {
    "job_id": "object",
    "schedule_id": "object",
    "state": "object",
    "pool_id": "object",
    "account": "object",
    "location": "object",
    "created": "utc",
}


def recurrences_frame(schedule_id: str, jobs: Sequence[tuple[Any, Location]]) -> pd.DataFrame:
    """A job schedule's recurrence jobs, newest first: ``job_id`` (``<schedule>:job-<n>``),
    ``schedule_id``, ``state`` (Batch's job state), where (``pool_id``, ``account``,
    ``location``) and ``created`` (UTC)."""
    rows = [
        {
            "job_id": job.id,
            "schedule_id": schedule_id,
            "state": job.state,
            "pool_id": loc.pool_id,
            "account": loc.account,
            "location": loc.location,
            "created": job.creation_time,
        }
        for job, loc in jobs
    ]
    return _frame(rows, RECURRENCE_COLUMNS)
