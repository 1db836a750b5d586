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
from .budget import budget_verdict, month_of
from .demand import Demand, job_demand
from .quota import quota_verdict, waiting


def last_published(store: Any) -> dict[str, Any] | None:
    """The accounting record of the proxy that heartbeat last (the latest leader's view)."""
    try:
        records = [r for r in store.list_proxies() if isinstance((r.info or {}).get("accounting"), dict)]
    except StoreError:
        return None
    if not records:
        return None
    newest = max(records, key=lambda r: r.heartbeat_at.timestamp() if r.heartbeat_at else 0.0)
    found: dict[str, Any] = newest.info["accounting"]
    return found


def held_of(record: Mapping[str, Any] | None, federation_id: str) -> dict[str, Demand]:
    """User → held demand in one federation, as published."""
    per = ((record or {}).get("held") or {}).get(federation_id) or {}
    return {u: Demand(float(v[0]), float(v[1]), int(v[2])) for u, v in per.items()}


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
    group = next((g for g, members in groups.items() if user in members), None)
    spent = (record.get("spent") or {}).get(month_of(float(record.get("as_of") or 0.0))) or {}
    reason = budget_verdict(user, group, estimate or 0.0, spent, budgets)
    return None if reason is None else waiting(decision, chosen.key, reason, "budget")
