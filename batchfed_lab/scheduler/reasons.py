"""One readable line on why a task group is blocked: per failing constraint, what the job
needs and what the pools have (``memory: needs ≥ 10000g, has 16g/112g/32g``).

The verdicts say it pool by pool; the blocked reason is what a user sees first (the error of
``--wait``, the ``reason`` column), so it carries the summary. Bounded whatever the number of
pools: a few values per constraint, a few constraints.
"""

from __future__ import annotations

from collections.abc import Iterable

from .types import Verdict

MAX_VALUES = 5  # distinct actual values shown per constraint
MAX_GROUPS = 4  # constraints shown


class _Group:
    __slots__ = ("actuals", "count", "first")

    def __init__(self, first: Verdict):
        self.first, self.count = first, 0
        self.actuals: dict[str, None] = {}  # distinct values, in pool-key order


def verdict_summary(verdicts: Iterable[Verdict]) -> str:
    """The failing verdicts grouped by constraint (excluded ones before skipped ones), e.g.
    ``memory: needs ≥ 10000g, has 16g/112g/32g``; '' when no pool failed."""
    groups: dict[tuple[str, str | None, str | None], _Group] = {}
    for v in verdicts:
        if v.status not in ("excluded", "skipped"):
            continue
        key = (v.status, v.constraint, v.required)
        g = groups.get(key)
        if g is None:
            g = groups[key] = _Group(v)
        g.count += 1
        g.actuals[str(v.actual)] = None
    ordered = sorted(groups.values(), key=lambda g: g.first.status != "excluded")  # stable: pool-key order within
    counted = len(ordered) > 1
    parts = [_group_text(g, counted) for g in ordered[:MAX_GROUPS]]
    if len(ordered) > MAX_GROUPS:
        parts.append(f"+{len(ordered) - MAX_GROUPS} more constraints")
    return "; ".join(parts)


def _group_text(g: _Group, counted: bool) -> str:
    v = g.first
    if v.status == "excluded" and v.constraint != "job_create":
        values = list(g.actuals)
        shown = "/".join(values[:MAX_VALUES])
        if len(values) > MAX_VALUES:
            shown += f" (+{len(values) - MAX_VALUES} more)"
        text = f"{v.constraint}: needs {v.required}, has {shown}"
    elif v.reason.startswith(f"{v.constraint}:"):
        text = v.reason
    else:
        text = f"{v.constraint}: {v.reason}"
    if counted:
        text += f" ({g.count} pool{'s' if g.count != 1 else ''})"
    return text
