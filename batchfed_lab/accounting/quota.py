"""Quotas (pure): caps on concurrent cores, nodes or tasks per user and per federation, over
the work that is running or placed and not finished. A placement that would exceed a cap
waits; its verdict names the cap (``quota: user ada has 64 of 64 cores``)."""

from __future__ import annotations

from collections.abc import Sequence

from ..config.accounting import Limits, Quotas
from ..scheduler.types import Decision, Verdict
from .demand import Demand

UNITS = ("cores", "nodes", "tasks")


def _amount(x: float) -> str:
    return f"{x:g}" if float(x).is_integer() else f"{x:.1f}"


def limits_of(user: str, quotas: Quotas) -> Limits:
    return quotas.users.get(user, quotas.default_user)


def _over(who: str, need: Demand, held: Demand, limits: Limits) -> str | None:
    for unit in UNITS:
        cap = getattr(limits, unit)
        if cap is not None and held.of(unit) + need.of(unit) > cap:
            return f"quota: {who} has {_amount(held.of(unit))} of {_amount(cap)} {unit}"
    return None


def quota_verdict(
    user: str, federation_id: str, need: Demand, held_user: Demand, held_federation: Demand, quotas: Quotas
) -> str | None:
    """Why ``need`` cannot be placed now (the first cap it would exceed), or None."""
    return _over(f"user {user}", need, held_user, limits_of(user, quotas)) or _over(
        f"federation {federation_id}", need, held_federation, quotas.federation
    )


def waiting(decision: Decision, pool_key: str, reason: str, constraint: str) -> Decision:
    """``decision`` turned into a wait: no pool, ``reason``, and the pool it chose marked skipped
    by ``constraint`` (``quota`` or ``budget``)."""
    verdicts: Sequence[Verdict] = [
        v._replace(status="skipped", constraint=constraint, reason=reason) if v.pool == pool_key else v for v in decision.verdicts
    ]
    return Decision(pool=None, unit=decision.unit, required=decision.required, reason=reason, verdicts=verdicts)
