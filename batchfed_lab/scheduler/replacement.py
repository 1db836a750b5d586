"""Re-placement, as pure functions: does a placed job move, which of its tasks move, and
which pools a move may not go to.

The proxy observes a placed job (its pool's condition, its tasks' states) and asks
:func:`judge` what its ``replacement`` rules say: nothing, keep retrying in place, move, or
moved too often already. A move carries the unfinished tasks only (:func:`tasks_to_move`);
the old pool, and the pools outside the allowed regions, are excluded from its decision with
a verdict saying why (:func:`move_exclusions`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Literal

from ..config.jobs import TaskDefinition
from ..config.replacement import FAILURE_KINDS, FailureKind, PreemptedRule, ReplacementRules, StalledRule
from .types import PoolSnapshot

#: the failure code of a task whose own command exited non-zero: it ran to its end; any other
#: failure code means the service ended it (job terminated, node removed, …) and it did not
RAN_TO_ITS_END = frozenset({None, "FailureExitCode"})

Outcome = Literal["none", "retry", "move", "exhausted"]


@dataclass(frozen=True, slots=True)
class TaskState:
    """What Batch says about one task of the placed job."""

    id: str
    state: str  # active | preparing | running | completed
    exit_code: int | None = None
    failure_code: str | None = None
    requeues: int = 0


@dataclass(frozen=True, slots=True)
class PoolCondition:
    """The placed job's pool as the proxy's pool listing sees it."""

    pool_id: str
    present: bool = True
    state: str = "active"  # active | deleting | missing
    target_nodes: int = 1
    current_nodes: int = 1
    autoscale: bool = False
    unusable_nodes: int = 0
    start_failed_nodes: int = 0

    @classmethod
    def of(cls, snap: PoolSnapshot | None, pool_id: str) -> PoolCondition:
        if snap is None or snap.state == "missing":
            return cls(pool_id, present=False, state="missing")
        f = snap.facts
        return cls(
            pool_id,
            state=snap.state,
            target_nodes=f.target_dedicated + f.target_low_priority,
            current_nodes=snap.dedicated.total + snap.low_priority.total,
            autoscale=f.autoscale,
            unusable_nodes=snap.dedicated.unusable + snap.low_priority.unusable,
            start_failed_nodes=snap.dedicated.start_failed + snap.low_priority.start_failed,
        )


@dataclass(frozen=True, slots=True)
class Observation:
    """One look at a placed job: its pool, its tasks, how long since it was placed, and the
    kinds of the moves it made already (oldest first) with their preemptions."""

    job_id: str
    pool: PoolCondition
    tasks: tuple[TaskState, ...]
    placed_for: float = 0.0
    moves: tuple[FailureKind, ...] = ()
    earlier_preemptions: int = 0


@dataclass(frozen=True, slots=True)
class Judgement:
    outcome: Outcome
    kind: FailureKind | None = None
    events: int = 0
    text: str = ""
    prefer_dedicated: bool = False
    regions: tuple[str, ...] | None = None

    @property
    def moves(self) -> bool:
        return self.outcome == "move"


NOTHING = Judgement("none")


def done(task: TaskState, rules: ReplacementRules) -> bool:
    """A task that ran to its end: never run again. One the service ended (terminate, node
    removal) did not; nor did one that exited with a code the rules blame on the node."""
    if task.state != "completed" or task.failure_code not in RAN_TO_ITS_END:
        return False
    codes = rules.exit_code.codes if rules.exit_code.move else ()
    return task.exit_code not in codes


def events(kind: FailureKind, obs: Observation, rules: ReplacementRules) -> int:
    """How many events of ``kind`` the observation shows (0: none)."""
    pool = obs.pool
    if kind == "pool_gone":
        empty = pool.target_nodes == 0 and pool.current_nodes == 0 and not pool.autoscale
        return int(not pool.present or pool.state != "active" or empty)
    if kind == "node_lost":
        return pool.unusable_nodes
    if kind == "start_failed":
        return pool.start_failed_nodes
    unfinished = [t for t in obs.tasks if not done(t, rules)]
    if kind == "preempted":
        return max((t.requeues for t in unfinished), default=0)
    if kind == "exit_code":
        codes = set(rules.exit_code.codes)
        return sum(1 for t in obs.tasks if t.state == "completed" and t.exit_code in codes and t.failure_code in RAN_TO_ITS_END)
    stalled = obs.placed_for >= rules.stalled.after and all(t.state == "active" and t.requeues == 0 for t in obs.tasks)
    return int(stalled)


def _text(kind: FailureKind, n: int, obs: Observation, rules: ReplacementRules) -> str:
    pool = obs.pool.pool_id
    if kind == "pool_gone":
        return f"pool {pool} is gone" if not obs.pool.present or obs.pool.state != "active" else f"pool {pool} has no nodes"
    if kind == "node_lost":
        return f"{n} node{'s' * (n != 1)} lost on {pool}"
    if kind == "start_failed":
        return f"start task failed on {n} node{'s' * (n != 1)} of {pool}"
    if kind == "preempted":
        return f"{n} preemption{'s' * (n != 1)} on {pool}"
    if kind == "exit_code":
        codes = ", ".join(map(str, rules.exit_code.codes))
        return f"{n} task{'s' * (n != 1)} exited with {codes} on {pool}"
    return f"queued {obs.placed_for:.0f} s on {pool} with no task started"


def judge(obs: Observation, rules: ReplacementRules) -> Judgement:
    """What the rules say about one look at a placed job. The first kind that moves wins;
    otherwise the first kind seen says why the job stays (``retry`` or ``exhausted``)."""
    if not obs.tasks or all(done(t, rules) for t in obs.tasks):
        return NOTHING
    staying: Judgement | None = None
    for kind in FAILURE_KINDS:
        n = events(kind, obs, rules)
        if n == 0:
            continue
        rule = rules.rule(kind)
        text = _text(kind, n, obs, rules)
        if not rule.move or n <= rule.retry_in_place:
            staying = staying or Judgement("retry", kind, n, f"retried in place: {text}")
            continue
        made = sum(1 for k in obs.moves if k == kind)
        if len(obs.moves) >= rules.max_moves or made >= rules.moves_allowed(kind):
            staying = staying or Judgement("exhausted", kind, n, f"not moved ({len(obs.moves)} moves made already): {text}")
            continue
        return Judgement("move", kind, n, f"moved: {text}", _prefer_dedicated(kind, n, obs, rules), rules.allowed_regions(kind))
    return staying or NOTHING


def _prefer_dedicated(kind: FailureKind, n: int, obs: Observation, rules: ReplacementRules) -> bool:
    rule: PreemptedRule = rules.preempted
    seen = obs.earlier_preemptions + (n if kind == "preempted" else 0)
    return rule.prefer == "dedicated" and seen >= rule.prefer_after


def stall_candidate(obs: Observation, rules: ReplacementRules) -> bool:
    """Whether a stalled move could fire (then the caller checks that another pool has room)."""
    rule: StalledRule = rules.stalled
    return rule.move and events("stalled", obs, rules) > rule.retry_in_place


def tasks_to_move(placed: Sequence[TaskDefinition], finished: Iterable[str]) -> list[TaskDefinition]:
    """The placed tasks that did not finish, as they move: their ids kept (never renumbered
    again), and their dependencies on finished tasks dropped (those are satisfied). A task
    moves with the unfinished tasks it depends on, which move too."""
    gone = set(finished)
    return [
        replace(t, generated_id=False, depends_on=tuple(d for d in t.depends_on if d not in gone))
        for t in placed
        if t.id not in gone
    ]


def move_exclusions(
    pools: Iterable[PoolSnapshot], left: Mapping[str, str], regions: Sequence[str] | None, job_id: str = "job"
) -> dict[str, str]:
    """Pool key → why a move may not go there: the pools it left (``left``: key → why it
    left), and the pools outside ``regions`` when the rules list regions. The other pools of
    an account it left stay open: there the move runs under another Batch job id
    (:func:`moved_batch_job_id`), the terminated job keeping the user's."""
    out = {key: f"moved away: {why}" for key, why in left.items()}
    if not regions:
        return out
    allowed = {r.lower() for r in regions}
    for p in pools:
        if p.key not in out and (p.facts.location or "").lower() not in allowed:
            out[p.key] = f"region {p.facts.location or '?'} is not among the regions allowed for moves"
    return out


def moved_batch_job_id(job_id: str, move_number: int) -> str:
    """The Batch job id of a job's ``move_number``-th move when it lands in an account that
    still holds the job under its own id (Batch job ids are unique per account and at most 64
    characters): ``<job id>-moved-<n>``, a long id cut and kept apart by a digest of it."""
    suffix = f"-moved-{move_number}"
    if len(job_id) + len(suffix) <= 64:
        return job_id + suffix
    digest = hashlib.sha1(job_id.encode()).hexdigest()[:8]
    return f"{job_id[: 64 - len(suffix) - 9]}-{digest}{suffix}"


__all__ = [
    "RAN_TO_ITS_END",
    "Judgement",
    "Observation",
    "PoolCondition",
    "TaskState",
    "done",
    "events",
    "judge",
    "move_exclusions",
    "moved_batch_job_id",
    "stall_candidate",
    "tasks_to_move",
]
