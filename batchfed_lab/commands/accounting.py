"""``fed cost`` and ``fed share``: a shared federation's estimated cost and its fair share."""

from __future__ import annotations

from types import SimpleNamespace
from typing import TYPE_CHECKING

from .shape import Result, table

if TYPE_CHECKING:
    from ..client import Client

COST_TASK_TEXT = ["job_id", "submitter", "pool_id", "task_id", "state", "run_s", "price_per_hour", "est_cost"]
SHARE_TEXT = [
    "user",
    "group",
    "shares",
    "norm_usage",
    "fair_share",
    "queued",
    "blocked",
    "placed",
    "held_cores",
    "spent",
    "budget",
]


def cost(c: Client, a: SimpleNamespace) -> Result:
    from ..frames import frame_records

    df = c.cost_frame(a.federation_id, a.by)
    columns = COST_TASK_TEXT if a.by is None else list(df.columns)
    note = f"{df.attrs['note']} (prices as of {df.attrs.get('prices_as_of') or 'unknown'})"
    total = df["est_cost"].sum(min_count=1)
    head = f"estimated total: ${total:,.2f}" if total == total else "estimated total: unknown (no prices)"

    def text() -> str:
        return f"{table(df, columns, 'no placed tasks')}\n{head}; {note}"

    return Result(df, text, lambda: {"estimate": True, "note": note, "rows": frame_records(df)}, rich=True)


def share(c: Client, a: SimpleNamespace) -> Result:
    from ..frames import frame_records

    df = c.share_frame(a.federation_id)
    return Result(df, lambda: table(df, SHARE_TEXT, "no users"), lambda: frame_records(df), rich=True)
