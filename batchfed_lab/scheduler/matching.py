"""Per-pool verdicts: hard constraints (SPEC §4.1) then the load filter (§4.2).

Hard constraints exclude a pool for this attempt; the load filter only skips
it now (it may have room later). The checks (:mod:`.hard_checks`) run in the
original's order and the first failure names the constraint with the required
and the actual value. A decision runs them as a plan of memoised steps, so a
10,000-pool federation costs a few dict look-ups per pool.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from datetime import datetime, timezone
from typing import NamedTuple

from .hard_checks import Failure, HardCheck
from .requirements import Requirements
from .types import PoolFacts, PoolSnapshot, Verdict

Step = tuple[Callable[[PoolFacts], Hashable], dict[Hashable, "Failure | None"], Callable[[PoolFacts], "Failure | None"]]


def decision_plan(checks: list[HardCheck]) -> list[Step]:
    """The hot path's form of ``checks``: ``(depends_on, memo, failure)`` steps, where a run of
    consecutive checks that read the same fields (the size checks) is one step with one
    look-up. ``memo.get(depends_on(facts))`` answers a value judged before; else
    ``failure(facts)`` judges it (the run's first failure, or None) and remembers it."""
    plan: list[Step] = []
    i = 0
    while i < len(checks):
        j = i + 1
        while j < len(checks) and checks[j].fields == checks[i].fields:
            j += 1
        run = checks[i:j]
        if len(run) == 1:
            plan.append((run[0].depends_on, run[0].memo, run[0].failure))
        else:
            plan.append(_fused(run))
        i = j
    return plan


def _fused(run: list[HardCheck]) -> Step:
    depends_on = run[0].depends_on
    memo: dict[Hashable, Failure | None] = {}

    def failure(facts: PoolFacts) -> Failure | None:
        found = None
        for check in run:
            found = check.failure(facts)
            if found is not None:
                break
        memo[depends_on(facts)] = found
        return found

    return depends_on, memo, failure


class Check(NamedTuple):
    """One cell of explain's pool × constraint table."""

    pool: str
    constraint: str
    passed: bool
    required: str
    actual: str


def constraint_table(facts: PoolFacts, checks: list[HardCheck]) -> list[Check]:
    """Every hard constraint the job sets, judged on one pool — not only the first failure
    (the hot path stops there; explain wants the whole row)."""
    out = []
    size_ok = True
    for check in checks:
        name = check.constraint
        if name in ("gpu", "infiniband", "cores", "memory") and not size_ok:
            out.append(Check(facts.key, name, False, check.required, "size unknown"))
            continue
        failed = check.failure(facts)
        if name == "size unknown":
            size_ok = failed is None
        out.append(Check(facts.key, name, failed is None, str(check.required), str(check.actual(facts))))
    return out


def hard_verdict(facts: PoolFacts, checks: list[HardCheck]) -> Verdict | None:
    for check in checks:
        verdict = check(facts)
        if verdict is not None:
            return verdict
    return None


def _skip(p: PoolSnapshot, constraint: str, required: str, actual: str, reason: str) -> Verdict:
    return Verdict(p.key, "skipped", constraint, required, actual, reason)


def load_verdict(p: PoolSnapshot, req: Requirements, now: float) -> Verdict | None:
    """Soft filter: a failing pool is skipped now and retried later (SPEC §4.2)."""
    if p.state != "active":
        return _skip(p, "state", "active", p.state, f"pool is {p.state}")
    if p.blackout_until is not None and now < p.blackout_until:
        left = p.blackout_until - now
        until = datetime.fromtimestamp(p.blackout_until, timezone.utc).strftime("%H:%M:%S")
        return _skip(p, "blackout", "no recent placement", f"until {until} UTC", f"blackout after a placement: {left:.0f}s left")
    autoscale_ok = req.allow_autoscale and p.facts.autoscale
    if not autoscale_ok:
        kinds = req.node_kinds
        schedulable = 0
        for k in kinds:  # a plain loop: this runs for every candidate pool of every decision
            schedulable += (p.dedicated if k == "dedicated" else p.low_priority).schedulable
        if schedulable == 0:
            label = " or ".join("dedicated" if k == "dedicated" else "low-priority" for k in kinds)
            return _skip(p, "nodes", f"schedulable {label} nodes", "0", f"no schedulable (idle or running) {label} nodes")
    if req.backlog_ratio is not None:
        slots = p.total_slots
        active = p.active_tasks
        if active is None:
            return _skip(p, "backlog", f"≤ {req.backlog_ratio:g}", "unknown", "active task count unknown")
        if slots > 0:
            ratio = active / slots
        elif p.facts.autoscale and p.allocation_state == "steady" and req.backlog_autoscale_exempt:
            ratio = 0.0
        else:
            return _skip(p, "backlog", f"≤ {req.backlog_ratio:g}", "no slots", "backlog ratio undefined: no schedulable slots")
        if ratio > req.backlog_ratio + 1e-12:
            return _skip(
                p,
                "backlog",
                f"≤ {req.backlog_ratio:g}",
                f"{ratio:.2f}",
                f"backlog {active} active / {slots} slots = {ratio:.2f} > {req.backlog_ratio:g}",
            )
    return None
