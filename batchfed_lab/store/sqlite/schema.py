"""The SQLite store's schema and the statements on its hot paths."""

from __future__ import annotations

import sqlite3
from functools import lru_cache
from pathlib import Path

from ...errors import StoreError
from .. import rules

SCHEMA_VERSION = 3
ACTIVE_SQL = "state IN ('queued', 'blocked')"
SCHEMA = [
    "CREATE TABLE signals (name TEXT PRIMARY KEY, version INTEGER NOT NULL)",
    "INSERT INTO signals VALUES ('federations', 0), ('actions', 0), ('control', 0)",
    "CREATE TABLE flags (name TEXT PRIMARY KEY, value INTEGER NOT NULL)",
    "CREATE TABLE federations (id TEXT PRIMARY KEY, unique_job_ids INTEGER NOT NULL, created_at REAL NOT NULL)",
    """CREATE TABLE pools (pool_key TEXT PRIMARY KEY, federation_id TEXT NOT NULL, batch_service_url TEXT NOT NULL,
        pool_id TEXT NOT NULL, account TEXT, location TEXT, added_at REAL)""",
    "CREATE INDEX pools_by_federation ON pools (federation_id)",
    """CREATE TABLE actions (id TEXT PRIMARY KEY, federation_id TEXT NOT NULL, target_key TEXT NOT NULL,
        target_id TEXT NOT NULL, kind TEXT NOT NULL, method TEXT NOT NULL, seq INTEGER NOT NULL, state TEXT NOT NULL,
        enqueued_at REAL NOT NULL, payload TEXT NOT NULL, reason TEXT, verdicts TEXT, error TEXT,
        attempts INTEGER NOT NULL, errors INTEGER NOT NULL, next_attempt_at REAL, placed_at REAL, finished_at REAL,
        progress TEXT NOT NULL, claimed_by TEXT, claim_deadline REAL, claim_token TEXT,
        ready_at REAL, submitter TEXT, submitter_id TEXT, priority INTEGER NOT NULL DEFAULT 0)""",
    "CREATE UNIQUE INDEX actions_fifo ON actions (federation_id, target_key, seq)",
    f"CREATE INDEX actions_active ON actions (federation_id, target_key, seq) WHERE {ACTIVE_SQL}",
    "CREATE INDEX actions_ready ON actions (federation_id, ready_at) WHERE ready_at IS NOT NULL",
    # a claim order's groups of heads: one index seek per (submitter, priority), not a scan
    "CREATE INDEX actions_groups ON actions (federation_id, submitter, priority, ready_at) WHERE ready_at IS NOT NULL",
    "CREATE INDEX actions_state ON actions (federation_id, state)",
    """CREATE TABLE locations (federation_id TEXT NOT NULL, job_key TEXT NOT NULL, kind TEXT NOT NULL,
        pool_key TEXT NOT NULL, job_id TEXT NOT NULL, batch_service_url TEXT NOT NULL, pool_id TEXT NOT NULL,
        account TEXT, location TEXT, unique_ids TEXT NOT NULL, addition_timestamps TEXT NOT NULL,
        created_at REAL, terminated_at REAL, batch_job_id TEXT, PRIMARY KEY (federation_id, job_key, kind, pool_key))""",
    "CREATE TABLE leases (name TEXT PRIMARY KEY, holder TEXT NOT NULL, expires_at REAL NOT NULL)",
    """CREATE TABLE proxies (proxy_id TEXT PRIMARY KEY, pid INTEGER, host TEXT, version TEXT, role TEXT,
        counters TEXT, info TEXT, started_at REAL, heartbeat_at REAL)""",
]
UPGRADE_1_TO_2 = [
    "ALTER TABLE actions ADD COLUMN submitter TEXT",
    "ALTER TABLE actions ADD COLUMN submitter_id TEXT",
    "ALTER TABLE actions ADD COLUMN priority INTEGER NOT NULL DEFAULT 0",
    "UPDATE actions SET submitter = '' WHERE submitter IS NULL",  # '' sorts and compares; NULL would not
    "CREATE INDEX actions_groups ON actions (federation_id, submitter, priority, ready_at) WHERE ready_at IS NOT NULL",
]
UPGRADE_2_TO_3 = ["ALTER TABLE locations ADD COLUMN batch_job_id TEXT"]  # NULL: the job id itself
# the two hot queries: the readiest head of a federation, and a target's head
CLAIM_SQL = (
    "SELECT * FROM actions WHERE federation_id = ? AND ready_at IS NOT NULL AND ready_at <= ? "
    "AND NOT EXISTS (SELECT 1 FROM flags WHERE name = 'suspended' AND value) ORDER BY ready_at LIMIT 1"
)
# with a claim order: the heads' (submitter, priority) groups with each one's earliest ready time,
# found by skipping from group to group along actions_groups (a seek each), then the oldest
# ready head of the group the order chose
FIRST_GROUP_SQL = (
    "SELECT submitter, priority, ready_at FROM actions WHERE federation_id = ? AND ready_at IS NOT NULL "
    "ORDER BY submitter, priority, ready_at LIMIT 1"
)
NEXT_GROUP_SQL = (
    "SELECT submitter, priority, ready_at FROM actions WHERE federation_id = ? AND ready_at IS NOT NULL "
    "AND (submitter, priority) > (?, ?) ORDER BY submitter, priority, ready_at LIMIT 1"
)
CLAIM_IN_GROUP_SQL = (
    "SELECT * FROM actions WHERE federation_id = ? AND submitter = ? AND priority = ? "
    "AND ready_at IS NOT NULL AND ready_at <= ? "
    "AND NOT EXISTS (SELECT 1 FROM flags WHERE name = 'suspended' AND value) ORDER BY ready_at LIMIT 1"
)
READY_SQL = "SELECT 1 FROM actions WHERE federation_id = ? AND ready_at IS NOT NULL AND ready_at <= ? LIMIT 1"
HEAD_SQL = f"SELECT * FROM actions WHERE federation_id = ? AND target_key = ? AND {ACTIVE_SQL} ORDER BY seq LIMIT 1"
MUTABLE = [
    "state",
    "reason",
    "verdicts",
    "error",
    "attempts",
    "errors",
    "next_attempt_at",
    "placed_at",
    "finished_at",
    "progress",
    "claimed_by",
    "claim_deadline",
    "claim_token",
]
UPDATE_ACTION = f"UPDATE actions SET {', '.join(f'{c} = :{c}' for c in MUTABLE)}, ready_at = :ready_at WHERE id = :id"
STORED = (*MUTABLE, "ready_at")  # the columns a step may change


@lru_cache(maxsize=64)
def update_claimed(columns: tuple[str, ...]) -> str:
    """An update of ``columns`` only while the stored row is exactly what the claim holder last
    wrote and the claim has not lapsed (the fast path of a claimed change; see
    SqliteStore._mutate_claimed_in). Only the columns that change are set: SQLite then leaves
    alone every index on the others, and a journal step, which changes the progress alone,
    writes the row's page and no index page."""
    return (
        f"UPDATE actions SET {', '.join(f'{c} = :{c}' for c in columns)} WHERE id = :id"
        + "".join(f" AND {c} IS :old_{c}" for c in STORED)
        + " AND claim_deadline > :now_"
    )


INSERT_ACTION = (
    f"INSERT INTO actions ({', '.join(rules.ACTION_FIELDS)}, ready_at) "
    f"VALUES ({', '.join(':' + c for c in rules.ACTION_FIELDS)}, :ready_at)"
)
INSERT_LOCATION = (
    f"INSERT OR REPLACE INTO locations ({', '.join(rules.LOCATION_FIELDS)}) "
    f"VALUES ({', '.join(':' + c for c in rules.LOCATION_FIELDS)})"
)


def ensure_schema(c: sqlite3.Connection, path: Path) -> None:
    """Create the tables in a new file; refuse a file written by a newer schema."""
    version = c.execute("PRAGMA user_version").fetchone()[0]
    if version > SCHEMA_VERSION:
        raise StoreError(f"sqlite store {path}: schema {version} is newer than this batchfed_lab ({SCHEMA_VERSION})")
    if version == 0:
        for statement in SCHEMA:
            c.execute(statement)
    if version == 1:  # a store from before submitters and priorities: its actions have none
        for statement in UPGRADE_1_TO_2:
            c.execute(statement)
    if 1 <= version <= 2:  # a store from before moves under derived Batch job ids
        for statement in UPGRADE_2_TO_3:
            c.execute(statement)
    if version < SCHEMA_VERSION:
        c.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
