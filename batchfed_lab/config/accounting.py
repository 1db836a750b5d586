"""federation.yaml ``federation.accounting``: priorities, fair share, quotas, budgets and
prices of a federation shared by a group (docs/accounting.md)."""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

_NAME = re.compile(r"^[^\s]{1,256}$")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True, allow_inf_nan=False)


def _names(v: dict[str, object]) -> dict[str, object]:
    for name in v:
        if not _NAME.fullmatch(name):
            raise ValueError(f"{name!r} is not a user or group name (no spaces, 1-256 characters)")
    return v


class Group(_Section):
    share: float = Field(1, gt=0, description="the group's share, split equally among its members")
    members: tuple[str, ...] = Field(..., min_length=1, description="submitter names (Entra ID upn, or OS user)")


class FairShare(_Section):
    enabled: bool = Field(True, description="interleave users by fair share (else priority and age alone order the queue)")
    half_life_hours: float = Field(168, gt=0, description="usage decays by half every this many hours (Slurm's default: 7 days)")
    assumed_job_hours: float = Field(1, gt=0, description="hours a placement is charged for when the job sets no max_wall_time")
    shares: dict[str, float] = Field({}, description="share per user; anyone not named (nor in a group) has share 1")
    groups: dict[str, Group] = Field({}, description="share per group of users")

    _users = field_validator("shares")(classmethod(lambda cls, v: _names(v)))
    _groups = field_validator("groups")(classmethod(lambda cls, v: _names(v)))

    @field_validator("shares")
    @classmethod
    def _positive(cls, v: dict[str, float]) -> dict[str, float]:
        for user, share in v.items():
            if not share > 0:
                raise ValueError(f"share of {user!r} must be > 0, not {share}")
        return v


class Limits(_Section):
    cores: float | None = Field(None, gt=0, description="concurrent cores (running + placed, not finished)")
    nodes: float | None = Field(None, gt=0, description="concurrent nodes")
    tasks: int | None = Field(None, gt=0, description="concurrent tasks")


class Quotas(_Section):
    users: dict[str, Limits] = Field({}, description="caps per user")
    default_user: Limits = Field(Limits(), description="caps of every user not named in users")
    federation: Limits = Field(Limits(), description="caps of the whole federation")

    _users = field_validator("users")(classmethod(lambda cls, v: _names(v)))


class Budgets(_Section):
    currency: str = Field("USD", description="the price table's currency")
    users: dict[str, float] = Field({}, description="spend per user per calendar month (UTC)")
    groups: dict[str, float] = Field({}, description="spend per fair-share group per calendar month (UTC)")

    _users = field_validator("users")(classmethod(lambda cls, v: _names(v)))

    @model_validator(mode="after")
    def _non_negative(self) -> Budgets:
        for who, amount in {**self.users, **self.groups}.items():
            if amount < 0:
                raise ValueError(f"budget of {who!r} must be ≥ 0, not {amount}")
        return self


class Accounting(_Section):
    priority_aging_seconds: float = Field(
        3.6,
        gt=0,
        description="waiting this long is worth one priority point (3.6: a −1000 job outranks a fresh +1000 one after 2 h)",
    )
    fair_share: FairShare = Field(FairShare(), description="interleave users by weighted fair share over recent usage")
    quotas: Quotas = Field(Quotas(), description="caps on concurrent cores, nodes or tasks per user and per federation")
    budgets: Budgets = Field(Budgets(), description="spend per user or group per calendar month, enforced at routing")
    prices: str | None = Field(None, description="a price CSV replacing the shipped one (same columns; docs/accounting.md)")
