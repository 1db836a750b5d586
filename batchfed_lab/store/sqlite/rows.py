"""Rows of the SQLite store ↔ records (the flat document form itself is ``rules``')."""

from __future__ import annotations

import sqlite3
from typing import Any

from .. import rules
from ..records import Action, Federation, Lease, PoolMember, utc


def row_doc(a: Action, token: str | None, *, head: bool) -> dict[str, Any]:
    """The row of ``a`` as written, without its payload (it never changes after enqueue);
    ``ready_at`` only for the head of its target's FIFO."""
    doc = rules.action_doc(a, token, payload_text="")
    doc["ready_at"] = rules.ready_at(a) if head else None
    return doc


def action_from_row(row: sqlite3.Row) -> Action:
    return rules.action_from_doc(dict(row))


def federation_from_row(row: sqlite3.Row) -> Federation:
    return Federation(row["id"], bool(row["unique_job_ids"]), utc(row["created_at"]))


def pool_from_row(row: sqlite3.Row) -> PoolMember:
    return PoolMember(
        row["federation_id"], row["batch_service_url"], row["pool_id"], row["account"], row["location"], utc(row["added_at"])
    )


def lease_from_row(name: str, row: sqlite3.Row | None) -> Lease | None:
    return None if row is None else Lease(name, row["holder"], utc(row["expires_at"]))
