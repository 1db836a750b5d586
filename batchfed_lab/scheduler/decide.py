"""The scheduler's one entry point: which pool, if any, takes this task group now."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from functools import partial
from typing import Any, NamedTuple

from ..config.constraints import FederationConstraints
from .hard_checks import _MISS, Failure, _new_verdict, build_hard_checks
from .matching import Check, constraint_table, decision_plan, load_verdict
from .policies import Choice, Policy, get_policy
from .reasons import verdict_summary
from .requirements import Requirements, resolve
from .types import Decision, PoolFacts, PoolSnapshot, TaskGroup, Verdict, Verdicts

JOB_CREATE_FAILED = "job creation failed on this pool in this attempt"


def decide_requirements(
    req: Requirements,
    pools: Iterable[PoolSnapshot],
    now: float,
    policy: str | Policy = "largest-fit",
    exclude: Iterable[str] | Mapping[str, str] = (),
) -> Decision:
    """Choose a pool for resolved requirements.

    ``exclude`` holds pool keys that cannot take this job (job creation failed
    there, or the job id lives on another pool of the same account) — optionally
    mapped to the reason; they get an "excluded" verdict and are not chosen.
    """
    choose = get_policy(policy) if isinstance(policy, str) else policy
    reasons = dict(exclude) if isinstance(exclude, Mapping) else dict.fromkeys(exclude, JOB_CREATE_FAILED)
    judge = _Judge(req, now, reasons)
    screened = judge.screen(pools)
    choice, data_note = _choose_near_data(screened.candidates, req, choose)
    if choice is None:
        return _blocked(req, screened, Verdicts(judge.verdicts))
    chosen_reason = f"chosen: {choice.rule}, {choice.capacity} {req.unit} available{data_note}"
    return _chosen(req, choice, Verdicts(partial(judge.verdicts, (choice.pool.key, chosen_reason))), data_note)


class _Screened(NamedTuple):
    total: int  # distinct pools
    candidates: list[PoolSnapshot]  # passed the hard constraints and the load filter
    hard_failures: int


class _Judge:
    """One decision's view of its pools: excluded by the caller, by a hard constraint,
    skipped by load, or eligible. ``screen`` is the placement's pass and keeps nothing per
    pool; ``verdicts`` gives every pool's verdict, when the decision's table is read."""

    def __init__(self, req: Requirements, now: float, reasons: dict[str, str]):
        self.req, self.now = req, now
        self.plan = decision_plan(build_hard_checks(req))
        failures: dict[str, Failure] = {}  # many pools share a reason (the job lives elsewhere in their account)
        self.excluded = {key: failures.setdefault(why, _job_create(why)) for key, why in reasons.items()}
        self.pools: dict[str, PoolSnapshot] = {}  # by key, as screened

    def screen(self, pools: Iterable[PoolSnapshot]) -> _Screened:
        """One pass over the pools (a large federation does not fit in the CPU's caches)."""
        seen = self.pools
        candidates: list[PoolSnapshot] = []
        hard_failures = 0
        for p in pools:  # the hot path: per pool, a field look-up and a dict hit per check
            key = p.facts.key
            if key in seen:
                continue  # the same pool given twice counts once
            seen[key] = p
            if self.failure(p.facts) is not None:
                hard_failures += 1
            elif load_verdict(p, self.req, self.now) is None:
                candidates.append(p)
        return _Screened(len(self.pools), candidates, hard_failures)

    def failure(self, facts: PoolFacts) -> Failure | None:
        """The pool's first failure: the caller's exclusion, else the first hard constraint."""
        if self.excluded:
            failed = self.excluded.get(facts.key)
            if failed is not None:
                return failed
        found: Any = None  # a Failure, None, or _MISS until the memo misses
        for depends_on, memo, failure in self.plan:
            found = memo.get(depends_on(facts), _MISS)
            if found is _MISS:
                found = failure(facts)
            if found is not None:
                break
        return found  # type: ignore[no-any-return]  # the loop ends on a Failure or None

    def verdicts(self, chosen: tuple[str, str] | None = None) -> tuple[Verdict, ...]:
        """Every pool's verdict in pool-key order; ``chosen`` is the chosen pool's (key, reason)."""
        out = []
        for key in sorted(self.pools):
            p = self.pools[key]
            failed = self.failure(p.facts)
            if failed is not None:
                out.append(_new_verdict(Verdict, (key, *failed)))
            elif chosen is not None and key == chosen[0]:
                out.append(Verdict(key, "chosen", reason=chosen[1]))
            else:
                out.append(load_verdict(p, self.req, self.now) or Verdict(key, "eligible"))
        return tuple(out)


def _job_create(why: str) -> Failure:
    return ("excluded", "job_create", "job can be created", "conflict", f"job_create: {why}")


def _choose_near_data(candidates: list[PoolSnapshot], req: Requirements, choose: Policy) -> tuple[Choice | None, str]:
    """The soft data rule: among the eligible pools, those in the region of the job's inputs
    first (moving data across regions costs money and time); the others only when none there
    can take the group. The note says which way it went."""
    if not req.data_regions or req.data_hard:
        return _choose(candidates, req, choose), (f"; {req.data_text}" if req.data_hard else "")
    near = [p for p in candidates if p.facts.location in req.data_regions]
    choice = _choose(near, req, choose) if near else None
    if choice is not None:
        return choice, f"; {req.data_text}"
    return _choose(candidates, req, choose), f"; {req.data_text}, none eligible there"


def _choose(candidates: list[PoolSnapshot], req: Requirements, choose: Policy) -> Choice | None:
    """The policy's pick among the eligible pools, trying the allowed node kinds in order."""
    if not candidates or req.need <= 0:
        return None
    for kind in req.node_kinds:
        choice = choose(candidates, kind, req.need, req.unit, req.allow_autoscale)
        if choice is not None:
            return choice
    return None


def _blocked(req: Requirements, screened: _Screened, verdicts: Verdicts) -> Decision:
    reason = _blocked_reason(screened.total, screened.hard_failures, len(screened.candidates), req)
    if not screened.candidates and req.need > 0:  # every pool failed: say how (the capacity case has no failure)
        summary = verdict_summary(verdicts)
        if summary:
            reason = f"{reason}: {summary}"
    return Decision(pool=None, unit=req.unit, required=req.need, reason=reason, verdicts=verdicts)


def _chosen(req: Requirements, choice: Choice, verdicts: Verdicts, data_note: str = "") -> Decision:
    return Decision(
        pool=choice.pool.key,
        node_kind=choice.kind,
        unit=req.unit,
        required=req.need,
        capacity=choice.capacity,
        rule=choice.rule,
        reason=f"{choice.pool.pool_id}: {choice.rule} ({choice.capacity} {req.unit} for {req.need} needed, "
        f"{choice.kind.replace('_', '-')}){data_note}",
        verdicts=verdicts,
    )


def _blocked_reason(total: int, hard: int, candidates: int, req: Requirements) -> str:
    if total == 0:
        return "the federation has no pools"
    if req.need <= 0:
        return "the task group has no tasks"
    if hard == total:
        return f"no pool satisfies the constraints ({hard} of {total} excluded)"
    if candidates == 0:
        return f"no eligible pool can take work now ({hard} excluded by constraints, {total - hard} skipped by load)"
    return f"no eligible pool has enough capacity for {req.need} {req.unit} ({candidates} eligible)"


def decide(
    constraints: FederationConstraints,
    group: TaskGroup,
    pools: Sequence[PoolSnapshot],
    now: float,
    policy: str | Policy = "largest-fit",
    *,
    exclude: Iterable[str] | Mapping[str, str] = (),
    native_default: bool | None = None,
    windows_default: bool | None = False,
    data_regions: Mapping[str, str | None] | None = None,
) -> Decision:
    """Pure: constraints + task group + pool snapshots + now + policy → decision with verdicts.
    ``data_regions``: the storage accounts of the job's inputs → their region (None: unknown)."""
    req = resolve(constraints, group, native_default=native_default, windows_default=windows_default, data_regions=data_regions)
    return decide_requirements(req, pools, now, policy, exclude)


def constraint_matrix(
    constraints: FederationConstraints,
    group: TaskGroup,
    pools: Sequence[PoolSnapshot],
    now: float,
    *,
    native_default: bool | None = None,
    windows_default: bool | None = False,
    data_regions: Mapping[str, str | None] | None = None,
) -> list[Check]:
    """Explain's full table: for every pool, every constraint the job sets (pass / fail,
    required, actual), then the load filter as one ``load`` row. The decision itself stops
    at a pool's first failure; this dry-run view does not."""
    req = resolve(constraints, group, native_default=native_default, windows_default=windows_default, data_regions=data_regions)
    checks = build_hard_checks(req)
    rows: list[Check] = []
    for p in sorted(pools, key=lambda p: p.key):
        rows += constraint_table(p.facts, checks)
        if req.data_regions and not req.data_hard:  # the soft rule: a preference, shown as its own row
            near = p.facts.location in req.data_regions
            rows.append(Check(p.key, "data", near, ", ".join(sorted(req.data_regions)), p.facts.location))
        v = load_verdict(p, req, now)
        rows.append(Check(p.key, "load", v is None, v.required or "" if v else "capacity now", v.reason if v else "ok"))
    return rows
