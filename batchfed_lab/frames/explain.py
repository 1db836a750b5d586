"""Frames of a dry run: one row per job and pool, and the pools × constraints matrix."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import pandas as pd

from ._base import (
    KINDS,
    VERDICT_COLUMNS,
    _frame,
)

if TYPE_CHECKING:
    from ..results import Explanation


EXPLAIN_COLUMNS: dict[str, Any] = {
    "job_id": "object",
    "kind": KINDS,
    **VERDICT_COLUMNS,
    "chosen": "bool",
    "price_per_hour": "float64",
    "est_cost": "float64",
}


def verdicts_frame(explanations: Sequence[Explanation]) -> pd.DataFrame:
    """A dry run's verdicts: one row per (job, pool), pools in key order.

    ``job_id``, ``kind``; the pool: ``pool_id``, ``account``, ``location``; ``status``
    (categorical: chosen / eligible / excluded by a hard constraint / skipped by the load
    filter); ``passed`` (chosen or eligible); ``constraint`` — the first constraint the pool
    fails (SPEC §4.5), e.g. ``memory``, ``location``, ``nodes``, ``blackout`` — with
    ``required`` and ``actual`` as text (None when it passes); ``verdict`` (one readable
    line, e.g. ``memory: needs ≥ 64g, has 7g``); ``chosen`` (the pool the proxy would pick now);
    ``price_per_hour`` (a node of the pool, at the node kind the job would get there) and
    ``est_cost`` (the job there for its max_wall_time, else one hour) — ESTIMATES from the
    price table (docs/accounting.md), NaN where the price is unknown.
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
                    "price_per_hour": e.costs.get(v.pool, (None, None))[0],
                    "est_cost": e.costs.get(v.pool, (None, None))[1],
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
