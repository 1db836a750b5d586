"""The scheduler's one entry point: which pool, if any, takes this task group now."""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable, Mapping, Sequence
from operator import itemgetter
from typing import Any, NamedTuple

from ..config.constraints import FederationConstraints
from .hard_checks import _MISS, _new_verdict, build_hard_checks
from .matching import Check, constraint_table, decision_plan, load_verdict
from .policies import Choice, Policy, get_policy
from .reasons import verdict_summary
from .requirements import Requirements, resolve
from .types import Decision, PoolSnapshot, TaskGroup, Verdict

JOB_CREATE_FAILED = "job creation failed on this pool in this attempt"
_pool_of = itemgetter(0)  # a verdict's pool key


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
    judged = _judge_pools(req, pools, now, reasons)
    choice = _choose(judged.candidates, req, choose)
    ordered = sorted(judged.verdicts.values(), key=_pool_of)  # by pool key alone: keys are unique
    if choice is None:
        return _blocked(req, judged, ordered)
    return _chosen(req, choice, ordered)


class _Judged(NamedTuple):
    verdicts: dict[str, Verdict]  # pool key → its verdict, each pool once
    candidates: list[PoolSnapshot]  # passed the hard constraints and the load filter
    hard_failures: int


def _judge_pools(req: Requirements, pools: Iterable[PoolSnapshot], now: float, reasons: dict[str, str]) -> _Judged:
    """Every pool's verdict: excluded by the caller, by a hard constraint, skipped by load, or eligible."""
    plan = decision_plan(build_hard_checks(req))
    verdicts: dict[str, Verdict] = {}
    candidates: list[PoolSnapshot] = []
    hard_failures = 0
    why_text: dict[str, str] = {}
    for p in pools:  # the hot path: per pool, a field look-up and a dict hit per check
        facts = p.facts
        key = facts.key
        if key in verdicts:
            continue  # the same pool given twice counts once
        if reasons and key in reasons:
            why = reasons[key]
            text = why_text.get(why)
            if text is None:  # many pools share a reason (the job lives elsewhere in their account)
                text = why_text[why] = f"job_create: {why}"
            verdicts[key] = Verdict(key, "excluded", "job_create", "job can be created", "conflict", text)
            hard_failures += 1
            continue
        failed: Any = None  # a Failure, None, or _MISS until the memo misses
        for depends_on, memo, failure in plan:
            failed = memo.get(depends_on(facts), _MISS)
            if failed is _MISS:
                failed = failure(facts)
            if failed is not None:
                break
        if failed is not None:
            hard_failures += 1
            verdicts[key] = _new_verdict(Verdict, (key, *failed))
            continue
        v = load_verdict(p, req, now)
        if v is None:
            candidates.append(p)
            v = Verdict(key, "eligible")
        verdicts[key] = v
    return _Judged(verdicts, candidates, hard_failures)


def _choose(candidates: list[PoolSnapshot], req: Requirements, choose: Policy) -> Choice | None:
    """The policy's pick among the eligible pools, trying the allowed node kinds in order."""
    if not candidates or req.need <= 0:
        return None
    for kind in req.node_kinds:
        choice = choose(candidates, kind, req.need, req.unit, req.allow_autoscale)
        if choice is not None:
            return choice
    return None


def _blocked(req: Requirements, judged: _Judged, ordered: list[Verdict]) -> Decision:
    reason = _blocked_reason(len(judged.verdicts), judged.hard_failures, len(judged.candidates), req)
    if not judged.candidates and req.need > 0:  # every pool failed: say how (the capacity case has no failure)
        summary = verdict_summary(ordered)
        if summary:
            reason = f"{reason}: {summary}"
    return Decision(pool=None, unit=req.unit, required=req.need, reason=reason, verdicts=tuple(ordered))


def _chosen(req: Requirements, choice: Choice, ordered: list[Verdict]) -> Decision:
    chosen_key = choice.pool.key
    at = bisect_left(ordered, (chosen_key,))  # the (unique) key leads each verdict
    ordered[at] = ordered[at]._replace(status="chosen", reason=f"chosen: {choice.rule}, {choice.capacity} {req.unit} available")
    return Decision(
        pool=chosen_key,
        node_kind=choice.kind,
        unit=req.unit,
        required=req.need,
        capacity=choice.capacity,
        rule=choice.rule,
        reason=f"{choice.pool.pool_id}: {choice.rule} ({choice.capacity} {req.unit} for {req.need} needed, {choice.kind.replace('_', '-')})",
        verdicts=tuple(ordered),
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
) -> Decision:
    """Pure: constraints + task group + pool snapshots + now + policy → decision with verdicts."""
    req = resolve(constraints, group, native_default=native_default, windows_default=windows_default)
    return decide_requirements(req, pools, now, policy, exclude)


def constraint_matrix(
    constraints: FederationConstraints,
    group: TaskGroup,
    pools: Sequence[PoolSnapshot],
    now: float,
    *,
    native_default: bool | None = None,
    windows_default: bool | None = False,
) -> list[Check]:
    """Explain's full table: for every pool, every constraint the job sets (pass / fail,
    required, actual), then the load filter as one ``load`` row. The decision itself stops
    at a pool's first failure; this dry-run view does not."""
    req = resolve(constraints, group, native_default=native_default, windows_default=windows_default)
    checks = build_hard_checks(req)
    rows: list[Check] = []
    for p in sorted(pools, key=lambda p: p.key):
        rows += constraint_table(p.facts, checks)
        v = load_verdict(p, req, now)
        rows.append(Check(p.key, "load", v is None, v.required or "" if v else "capacity now", v.reason if v else "ok"))
    return rows
