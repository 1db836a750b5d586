"""``federation_constraints.replacement``: when the proxy moves a placed job to another pool.

Each failure kind has its own rule: how many times the job is left to recover where it is
(``retry_in_place``), then whether it ``move``s. Defaults are safe: a deleted pool and a lost
node move the job at once, three preemptions in a row move it, the other kinds are off
until a job asks for them. ``max_moves`` bounds how often one job moves in all, and
``regions`` lists where it may go (unset: any region its constraints allow).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from .loading import PathError

FailureKind = Literal["preempted", "node_lost", "pool_gone", "start_failed", "exit_code", "stalled"]
FAILURE_KINDS: tuple[FailureKind, ...] = ("pool_gone", "node_lost", "start_failed", "preempted", "exit_code", "stalled")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True, allow_inf_nan=False)


def _regions(v: object) -> object:
    if isinstance(v, (list, tuple)):
        out = tuple(str(x).strip().lower() for x in v)
        if any(not r or " " in r for r in out):
            raise ValueError("must be ARM region names without spaces, e.g. 'westeurope'")
        return out
    return v


class KindRule(_Section):
    """One failure kind: tolerated ``retry_in_place`` times on the pool, then moved (if ``move``)."""

    move: bool = Field(False, description="move the job to another eligible pool once the retries are used")
    retry_in_place: int = Field(0, ge=0, le=1000, description="events tolerated on the pool before a move")
    max_moves: int | None = Field(None, ge=0, le=100, description="moves of this kind at most (unset: the job's max_moves)")
    regions: tuple[str, ...] | None = Field(None, description="regions a move of this kind may go to")

    _r = field_validator("regions", mode="before")(classmethod(lambda cls, v: _regions(v)))


class PreemptedRule(KindRule):
    move: bool = Field(True, description="move the job once its preemptions pass retry_in_place")
    retry_in_place: int = Field(2, ge=0, le=1000, description="preemptions tolerated; the next one moves the job")
    prefer: Literal["dedicated"] | None = Field(
        None, description="'dedicated': from then on a move requires dedicated-only pools"
    )
    prefer_after: int = Field(3, ge=1, le=1000, description="preemptions (over all moves) before 'prefer' applies")


class ExitCodeRule(KindRule):
    codes: tuple[int, ...] = Field((), description="exit codes that mean the node, not the code, failed (e.g. 137)")

    @model_validator(mode="after")
    def _codes_when_moving(self) -> ExitCodeRule:
        if self.move and not self.codes:
            raise PathError(("codes",), [], "list the exit codes that move the job, e.g. [137]")
        return self


class StalledRule(KindRule):
    after: float = Field(600.0, gt=0, le=7 * 86400, description="seconds queued on the pool with no task started")


class ReplacementRules(_Section):
    """Per failure kind, when a placed job moves to another pool."""

    pool_gone: KindRule = Field(KindRule(move=True), description="the pool was deleted, or resized to zero without autoscale")
    node_lost: KindRule = Field(KindRule(move=True), description="a node of the pool became unusable")
    start_failed: KindRule = Field(KindRule(), description="a node's start task (or image pull) failed")
    preempted: PreemptedRule = Field(PreemptedRule(), description="low-priority nodes were taken back while tasks ran")
    exit_code: ExitCodeRule = Field(ExitCodeRule(), description="tasks exited with a listed code (e.g. 137, OOM-killed)")
    stalled: StalledRule = Field(StalledRule(), description="queued on the pool with no task started for too long")
    max_moves: int = Field(3, ge=0, le=100, description="moves of one job at most, all kinds together")
    regions: tuple[str, ...] | None = Field(None, description="regions any move may go to (unset: any)")

    _r = field_validator("regions", mode="before")(classmethod(lambda cls, v: _regions(v)))

    def rule(self, kind: FailureKind) -> KindRule:
        rule: KindRule = getattr(self, kind)
        return rule

    def allowed_regions(self, kind: FailureKind) -> tuple[str, ...] | None:
        own = self.rule(kind).regions
        return own if own is not None else self.regions

    def moves_allowed(self, kind: FailureKind) -> int:
        own = self.rule(kind).max_moves
        return self.max_moves if own is None else min(own, self.max_moves)

    def summary(self) -> list[str]:
        """One line per kind, as ``explain`` shows them."""
        lines = []
        for kind in FAILURE_KINDS:
            r = self.rule(kind)
            if not r.move:
                lines.append(f"{kind}: off")
                continue
            text = f"{kind}: move at once" if r.retry_in_place == 0 else f"{kind}: move after {r.retry_in_place + 1} in a row"
            if isinstance(r, ExitCodeRule):
                text += f" (exit codes {', '.join(map(str, r.codes))})"
            if isinstance(r, StalledRule):
                text = f"{kind}: move after {r.after:g} s queued with no task started, if another pool has room"
            if isinstance(r, PreemptedRule) and r.prefer:
                text += f"; {r.prefer} nodes after {r.prefer_after} preemptions"
            regions = self.allowed_regions(kind)
            text += f"; at most {self.moves_allowed(kind)} moves" + (f"; to {', '.join(regions)}" if regions else "")
            lines.append(text)
        return lines


__all__ = ["FAILURE_KINDS", "ExitCodeRule", "FailureKind", "KindRule", "PreemptedRule", "ReplacementRules", "StalledRule"]
