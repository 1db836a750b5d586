"""What the leading proxy's accountant publishes in its heartbeat (usage, held work, its
quotas and budgets), read back by a new leader, by ``explain`` and by ``%fed share``.
The store is passed in (duck-typed): accounting imports no store."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..config.accounting import Budgets, Quotas
from ..config.jobs import JobSpecification
from ..errors import StoreError
from ..scheduler.types import Decision, PoolSnapshot
from .budget import budget_verdict
from .demand import Demand, job_demand
from .quota import quota_verdict, waiting
from .usage import Placement, keys_of


def last_published(store: Any) -> dict[str, Any] | None:
    """The accounting record of the leader that heartbeat last (else of any proxy)."""
    try:
        records = [r for r in store.list_proxies() if isinstance((r.info or {}).get("accounting"), dict)]
    except StoreError:
        return None
    if not records:
        return None
    # a standby publishes what it took back when it started: the leader's view wins
    leaders = [r for r in records if r.role == "leader"] or records
    newest = max(leaders, key=lambda r: r.heartbeat_at.timestamp() if r.heartbeat_at else 0.0)
    found: dict[str, Any] = newest.info["accounting"]
    return found


def held_of(record: Mapping[str, Any] | None, federation_id: str) -> dict[str, Demand]:
    """User → held demand in one federation, as published."""
    per = ((record or {}).get("held") or {}).get(federation_id) or {}
    return {u: Demand(float(v[0]), float(v[1]), int(v[2])) for u, v in per.items()}


def open_of(record: Mapping[str, Any] | None, federation_id: str) -> list[Placement]:
    """The open placements (job ids, estimates) of one federation, as published."""
    urls = [str(u) for u in (record or {}).get("urls") or []]
    rows = [Placement.from_list(v, urls) for v in (record or {}).get("open") or []]
    return [p for p in rows if p.federation_id == federation_id]


def usage_of(record: Mapping[str, Any] | None, federation_id: str) -> dict[str, float]:
    """User → usage in one federation at the record's time: settled (decayed) plus what the
    open placements ran by then."""
    at = float((record or {}).get("as_of") or 0.0)
    usage = {str(u): float(v) for u, v in (((record or {}).get("usage") or {}).get(federation_id) or {}).items()}
    for p in open_of(record, federation_id):
        usage[p.user] = usage.get(p.user, 0.0) + p.running_core_hours(at)
    return usage


def committed_of(record: Mapping[str, Any] | None, federation_id: str) -> dict[str, float]:
    """User → what the claim order weighs in one federation: usage plus the rest of each open
    placement's estimate (see :meth:`~.usage.UsageBook.committed`)."""
    at = float((record or {}).get("as_of") or 0.0)
    out = usage_of(record, federation_id)
    for p in open_of(record, federation_id):
        out[p.user] = out.get(p.user, 0.0) + max(0.0, p.demand.cores * p.hours - p.running_core_hours(at))
    return out


def spent_of(record: Mapping[str, Any] | None, federation_id: str) -> dict[str, float]:
    """This month's spend per user and group:NAME in one federation (settled + running)."""
    return {str(k): float(v) for k, v in (((record or {}).get("spent") or {}).get(federation_id) or {}).items()}


def reserved_of(record: Mapping[str, Any] | None, federation_id: str, group_of: Any) -> dict[str, float]:
    """What budgets count: the spend plus the rest of each open placement's estimate."""
    at = float((record or {}).get("as_of") or 0.0)
    out = spent_of(record, federation_id)
    for p in open_of(record, federation_id):
        for key in keys_of(p.user, group_of(p.user)):
            out[key] = out.get(key, 0.0) + max(0.0, p.cost - p.running_cost(at))
    return out


def assumed_hours(record: Mapping[str, Any] | None) -> float:
    """The hours the proxy charges a job without max_wall_time (1 without a proxy)."""
    return float(((record or {}).get("shares") or {}).get("assumed_job_hours") or 1.0)


def explain_wait(
    record: Mapping[str, Any] | None,
    user: str,
    federation_id: str,
    job: JobSpecification,
    chosen: PoolSnapshot,
    decision: Decision,
    estimate: float | None,
) -> Decision | None:
    """The wait the proxy would impose on this placement by its published quotas and budgets
    (``estimate``: the job's estimated cost on ``chosen``), or None."""
    if not record or "quotas" not in record:
        return None
    quotas = Quotas.model_validate(record["quotas"])
    held = held_of(record, federation_id)
    everyone = sum(held.values(), Demand())
    reason = quota_verdict(user, federation_id, job_demand(job, chosen.facts), held.get(user, Demand()), everyone, quotas)
    if reason is not None:
        return waiting(decision, chosen.key, reason, "quota")
    budgets = Budgets.model_validate(record.get("budgets") or {})
    groups = {g: tuple(v.get("members") or ()) for g, v in ((record.get("shares") or {}).get("groups") or {}).items()}

    def group_of(who: str) -> str | None:
        return next((g for g, members in groups.items() if who in members), None)

    spent = reserved_of(record, federation_id, group_of)
    reason = budget_verdict(user, group_of(user), estimate or 0.0, spent, budgets)
    return None if reason is None else waiting(decision, chosen.key, reason, "budget")
