"""pandas DataFrames for federations, pools, placements, locations, verdicts, tasks and proxies.

Every builder returns its columns in a fixed order with fixed dtypes, also when it has no
rows, so code written against a frame does not break on an empty one. Conventions:

- timestamps are ``datetime64[us, UTC]`` (missing: ``NaT``);
- states and other closed vocabularies are ``category`` with every possible value as a
  category (so ``value_counts()`` shows zeros too);
- counts that may be unknown are nullable ``Int64``; flags that may be unknown ``boolean``;
- text is ``object`` (missing: ``None``).

The columns are listed in each builder's docstring and in ``docs/magics.md``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

import pandas as pd

from .results import action_note
from .scheduler.types import pool_key
from .store.records import Action, ActionState, Location, PoolMember

if TYPE_CHECKING:
    from .results import Explanation, FederatedTask, FederationSummary
    from .scheduler.types import PoolSnapshot

__all__ = [
    "ACTION_STATES",
    "blocked_frame",
    "federations_frame",
    "frame_records",
    "locations_frame",
    "placements_frame",
    "pools_frame",
    "proxies_frame",
    "tasks_frame",
    "verdicts_frame",
]

#: every timestamp column: microseconds (what the store keeps), UTC
UTC_DTYPE = "datetime64[us, UTC]"
ACTION_STATES = [s.value for s in ActionState]
KINDS = ["job", "job_schedule"]
METHODS = ["add", "terminate", "delete"]
VERDICT_STATUSES = ["chosen", "eligible", "excluded", "skipped"]
POOL_STATES = ["active", "deleting", "missing"]
ALLOCATION_STATES = ["steady", "resizing", "stopping"]
TASK_STATES = ["active", "preparing", "running", "completed"]
TASK_RESULTS = ["success", "failure"]
PROXY_ROLES = ["leader", "standby", "starting", "stopping", "stale"]


def _frame(rows: list[dict[str, Any]], dtypes: dict[str, Any]) -> pd.DataFrame:
    """Rows → a frame with exactly ``dtypes``' columns, in order, with those dtypes.

    Built column by column so that text stays ``object`` with ``None`` for missing values
    on pandas 2 and 3 alike (pandas 3 would infer its ``str`` dtype and turn None into NaN).
    """
    data: dict[str, Any] = {}
    for col, dtype in dtypes.items():
        values = [r.get(col) for r in rows]
        if dtype == "utc":
            data[col] = pd.to_datetime(pd.Series(values, dtype="object"), utc=True).astype(UTC_DTYPE)
        elif isinstance(dtype, list):
            data[col] = pd.Categorical(values, categories=dtype)
        else:
            data[col] = pd.Series(values, dtype=dtype)
    return pd.DataFrame(data, columns=list(dtypes))


def frame_records(df: pd.DataFrame) -> list[dict[str, Any]]:
    """A frame as JSON-ready records (what ``--raw`` prints): ISO 8601 UTC times, null for
    missing values, categories as their text."""
    return json.loads(df.to_json(orient="records", date_format="iso", date_unit="us"))


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
}


def pools_frame(federation_id: str | None, snapshots: Iterable[PoolSnapshot]) -> pd.DataFrame:
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
    """
    rows = []
    for s in snapshots:
        f = s.facts
        size = f.size
        slots = f.task_slots_per_node
        available = s.total_slots
        rows.append(
            {
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
            }
        )
    return _frame(rows, POOL_COLUMNS)


# --------------------------------------------------------------------------- actions
PLACEMENT_COLUMNS: dict[str, Any] = {
    "job_id": "object",
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

    ``job_id``; ``kind`` (job / job_schedule), ``method`` (add / terminate / delete) and
    ``state`` (queued / placed / done / blocked / failed / zapped) are categorical;
    ``unique_id``; where it was placed: ``pool_id``, ``account``, ``location`` (None until
    placed); ``reason`` (why it is blocked, the error it failed with, or the tasks a placement
    could not add, e.g. ``1 of 2 task(s) not added: a (TaskIdInUse: …)``); ``enqueued`` and
    ``placed`` (UTC); ``latency_s`` = placed − enqueued in seconds (NaN until placed).
    """
    return _frame([_placement_row(a) for a in actions], PLACEMENT_COLUMNS)


VERDICT_COLUMNS: dict[str, Any] = {
    "pool_id": "object",
    "account": "object",
    "location": "object",
    "status": VERDICT_STATUSES,
    "passed": "bool",
    "constraint": "object",
    "required": "object",
    "actual": "object",
    "verdict": "object",
}

BLOCKED_COLUMNS: dict[str, Any] = {
    "job_id": "object",
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

    Action columns: ``job_id``, ``kind``, ``unique_id``, ``state`` (categorical), ``reason``
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


EXPLAIN_COLUMNS: dict[str, Any] = {"job_id": "object", "kind": KINDS, **VERDICT_COLUMNS, "chosen": "bool"}


def verdicts_frame(explanations: Sequence[Explanation]) -> pd.DataFrame:
    """A dry run's verdicts: one row per (job, pool), pools in key order.

    ``job_id``, ``kind``; the pool: ``pool_id``, ``account``, ``location``; ``status``
    (categorical: chosen / eligible / excluded by a hard constraint / skipped by the load
    filter); ``passed`` (chosen or eligible); ``constraint`` — the first constraint the pool
    fails (SPEC §4.5), e.g. ``memory``, ``location``, ``nodes``, ``blackout`` — with
    ``required`` and ``actual`` as text (None when it passes); ``verdict`` (one readable
    line, e.g. ``memory: needs ≥ 64g, has 7g``); ``chosen`` (the pool the proxy would pick now).
    """
    rows = []
    for e in explanations:
        facts = {s.key: s.facts for s in e.pools}
        for v in e.decision.verdicts:
            f = facts.get(v.pool)
            rows.append(
                {
                    "job_id": e.job_id,
                    "kind": e.kind,
                    "pool_id": v.pool_id,
                    "account": f.account if f else None,
                    "location": f.location if f else None,
                    "status": v.status,
                    "passed": v.status in ("chosen", "eligible"),
                    "constraint": v.constraint,
                    "required": v.required,
                    "actual": v.actual,
                    "verdict": v.reason,
                    "chosen": v.status == "chosen",
                }
            )
    return _frame(rows, EXPLAIN_COLUMNS)


MATRIX_COLUMNS: dict[str, Any] = {
    "job_id": "object",
    "pool_id": "object",
    "account": "object",
    "location": "object",
    "constraint": "object",
    "passed": "bool",
    "required": "object",
    "actual": "object",
}


def matrix_frame(explanations: Sequence[Explanation]) -> pd.DataFrame:
    """A dry run's full table: one row per (job, pool, constraint the job sets), every
    constraint judged — not only the first failure — plus one ``load`` row per pool (the
    load filter: schedulable nodes, backlog, blackout). Columns: ``job_id``, ``pool_id``,
    ``account``, ``location``, ``constraint``, ``passed`` (bool), ``required``, ``actual``
    (text; for ``load`` rows ``actual`` is the load reason or ``ok``)."""
    rows = []
    for e in explanations:
        facts = {s.key: s.facts for s in e.pools}
        for c in e.matrix:
            f = facts.get(c.pool)
            rows.append(
                {
                    "job_id": e.job_id,
                    "pool_id": c.pool.rsplit("#", 1)[-1],
                    "account": f.account if f else None,
                    "location": f.location if f else None,
                    "constraint": c.constraint,
                    "passed": c.passed,
                    "required": c.required,
                    "actual": c.actual,
                }
            )
    return _frame(rows, MATRIX_COLUMNS)


# --------------------------------------------------------------------------- locations
LOCATION_COLUMNS: dict[str, Any] = {
    "job_id": "object",
    "kind": KINDS,
    "pool_id": "object",
    "account": "object",
    "location": "object",
    "unique_id": "object",
    "added": "utc",
    "terminated": "utc",
    "batch_service_url": "object",
}


def locations_frame(locations: Sequence[Location]) -> pd.DataFrame:
    """Placed jobs and job schedules: one row per (job id, pool, unique id served there).

    ``job_id``, ``kind`` (categorical), where it lives: ``pool_id``, ``account``,
    ``location``, ``batch_service_url``; ``unique_id`` of the task group (action) and
    ``added`` (UTC) when it was added there; ``terminated`` (UTC) when the job was
    terminated on that pool (``NaT`` while it runs).
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
        }
        pairs: list[tuple[str | None, datetime | None]] = list(zip(loc.unique_ids, loc.addition_timestamps)) or [
            (None, loc.created_at)
        ]
        for uid, at in pairs:
            rows.append({**base, "unique_id": uid, "added": at})
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


# --------------------------------------------------------------------------- tasks
TASK_COLUMNS: dict[str, Any] = {
    "job_id": "object",
    "task_id": "object",
    "pool_id": "object",
    "account": "object",
    "location": "object",
    "node_id": "object",
    "state": TASK_STATES,
    "exit_code": "Int64",
    "result": TASK_RESULTS,
    "retry_count": "int64",
    "start_time": "utc",
    "end_time": "utc",
    "duration_s": "float64",
    "failure_code": "object",
    "failure_message": "object",
}


def tasks_frame(tasks: Sequence[FederatedTask]) -> pd.DataFrame:
    """One row per task of a job on each pool the job lives on.

    ``job_id``, ``task_id``; where: ``pool_id``, ``account``, ``location``, ``node_id``;
    ``state`` (categorical: active / preparing / running / completed); ``exit_code``
    (Int64, ``<NA>`` until it ran); ``result`` (categorical: success / failure);
    ``retry_count``; ``start_time`` and ``end_time`` (UTC) and ``duration_s``;
    ``failure_code`` and ``failure_message`` when it failed to run.
    """
    rows = []
    for ft in tasks:
        t = ft.task
        duration = (t.end_time - t.start_time).total_seconds() if t.start_time and t.end_time else None
        rows.append(
            {
                "job_id": ft.job_id,
                "task_id": t.id,
                "pool_id": ft.pool_id,
                "account": ft.account,
                "location": ft.location,
                "node_id": t.node_id,
                "state": t.state,
                "exit_code": t.exit_code,
                "result": t.result,
                "retry_count": t.retry_count,
                "start_time": t.start_time,
                "end_time": t.end_time,
                "duration_s": duration,
                "failure_code": t.failure_code,
                "failure_message": t.failure_message,
            }
        )
    return _frame(rows, TASK_COLUMNS)


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
