"""Pool choice among the pools that passed every filter (SPEC §4.3).

A policy is one replaceable function. ``largest-fit`` is the original's
behaviour (its lists were sorted largest first); ``best-fit`` takes the
smallest pool that covers the need, which fragments capacity less. Both break
ties by pool id (then by account), never by the order the pools were given in.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal, NamedTuple

from ..errors import SchedulingError
from .types import NodeKind, PoolSnapshot


@dataclass(frozen=True, slots=True)
class Choice:
    pool: PoolSnapshot
    kind: NodeKind
    capacity: int
    rule: str


class Capacity(NamedTuple):
    """One candidate's capacity of one node kind, in the unit the group needs (a tuple: one is
    built per candidate pool of every decision, three times faster than a frozen dataclass)."""

    pool: PoolSnapshot
    idle: int
    schedulable: int


def capacities(pools: Sequence[PoolSnapshot], kind: NodeKind, unit: Literal["slots", "nodes"]) -> list[Capacity]:
    out = []
    for p in pools:
        nodes = p.dedicated if kind == "dedicated" else p.low_priority
        per = p.facts.task_slots_per_node if unit == "slots" else 1
        idle, sched = nodes.idle * per, nodes.schedulable * per
        if sched > 0 or p.facts.autoscale:
            out.append(Capacity(p, idle, sched))
    return out


Policy = Callable[[Sequence[PoolSnapshot], NodeKind, int, Literal["slots", "nodes"], bool], "Choice | None"]


def _select(
    pools: Sequence[PoolSnapshot],
    kind: NodeKind,
    need: int,
    unit: Literal["slots", "nodes"],
    allow_autoscale: bool,
    smallest_first: bool,
) -> Choice | None:
    caps = capacities(pools, kind, unit)
    if not caps:
        return None
    # the best fit by one pass (min), not by sorting: this runs for every placement; ties go
    # by pool id, so the answer does not depend on the input order
    sign = 1 if smallest_first else -1
    fit_idle = [c for c in caps if c.idle > 0 and c.idle >= need]
    if fit_idle:
        c = min(fit_idle, key=lambda c: (sign * c.idle, c.pool.facts.tie_key))
        return Choice(c.pool, kind, c.idle, "idle-fit")
    fit_sched = [c for c in caps if c.schedulable >= need]
    if fit_sched:
        c = min(fit_sched, key=lambda c: (sign * c.schedulable, c.pool.facts.tie_key))
        return Choice(c.pool, kind, c.schedulable, "schedulable-fit")
    # nothing fits: the fall-backs look at the pools largest first
    by_idle = sorted((c for c in caps if c.idle > 0), key=lambda c: (-c.idle, c.pool.facts.tie_key))
    by_sched = sorted(caps, key=lambda c: (-c.schedulable, c.pool.facts.tie_key))
    if allow_autoscale:
        for c in (*by_idle, *by_sched):
            if c.pool.facts.autoscale and c.pool.allocation_state == "steady":
                return Choice(c.pool, kind, c.schedulable, "steady-autoscale")
    if unit == "slots":
        # a backlog is accepted for slot-counted groups: the pool will get to them
        for c in by_idle:
            return Choice(c.pool, kind, c.idle, "backlog")
        for c in by_sched:
            if c.schedulable >= 1:
                return Choice(c.pool, kind, c.schedulable, "backlog")
    return None


def largest_fit(
    pools: Sequence[PoolSnapshot], kind: NodeKind, need: int, unit: Literal["slots", "nodes"], allow_autoscale: bool
) -> Choice | None:
    return _select(pools, kind, need, unit, allow_autoscale, smallest_first=False)


def best_fit(
    pools: Sequence[PoolSnapshot], kind: NodeKind, need: int, unit: Literal["slots", "nodes"], allow_autoscale: bool
) -> Choice | None:
    return _select(pools, kind, need, unit, allow_autoscale, smallest_first=True)


POLICIES: dict[str, Policy] = {"largest-fit": largest_fit, "best-fit": best_fit}


def get_policy(name: str) -> Policy:
    try:
        return POLICIES[name]
    except KeyError:
        raise SchedulingError(f"unknown scheduling policy {name!r}; choose one of: {', '.join(POLICIES)}") from None
