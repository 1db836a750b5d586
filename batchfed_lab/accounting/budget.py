"""Budgets (pure): what a user or group may spend per calendar month (UTC), checked when a
placement is routed against the estimated spend so far plus the job's estimate."""

from __future__ import annotations

from datetime import datetime, timezone

from ..config.accounting import Budgets


def month_of(at: float) -> str:
    return datetime.fromtimestamp(at, tz=timezone.utc).strftime("%Y-%m")


def money(x: float) -> str:
    text = f"{x:,.2f}"
    return text[:-3] if text.endswith(".00") else text


def budget_verdict(user: str, group: str | None, estimate: float, spent: dict[str, float], budgets: Budgets) -> str | None:
    """Why a job estimated at ``estimate`` cannot be placed (the first budget it would
    exceed), or None. ``spent``: this month's estimated spend per user and per ``group:NAME``."""
    checks = [(f"{user}", user, budgets.users.get(user))]
    if group is not None:
        checks.append((f"group {group}", f"group:{group}", budgets.groups.get(group)))
    for who, key, budget in checks:
        if budget is None:
            continue
        left = budget - spent.get(key, 0.0)
        if estimate > left:
            return f"budget: {who} has ${money(max(0.0, left))} of ${money(budget)} left, this job ~ ${money(estimate)}"
    return None
