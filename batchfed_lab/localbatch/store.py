"""Durable state of localbatch: one SQLite file, ``<workspace>/localbatch/state.sqlite``.

Every pool, job, task and job schedule is one row holding its JSON document (the REST view plus
a few internal fields). The engine writes a row whenever an object changes, under its own lock,
so one connection serves all threads. WAL with ``synchronous=NORMAL`` survives a killed process
(not a power cut) and keeps up with hundreds of task state changes per second.

``procs`` records the process group of every running task process so that a restart, or
``control.stop`` after a SIGKILL, can kill leftovers instead of leaving orphans.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS objects (
    kind    TEXT NOT NULL,      -- pool | job | task | schedule
    account TEXT NOT NULL,
    key     TEXT NOT NULL,      -- lower-cased id; tasks: '<job key>/<task key>'
    seq     INTEGER NOT NULL,   -- creation order (lists return objects in it)
    doc     TEXT NOT NULL,
    PRIMARY KEY (kind, account, key)
);
CREATE TABLE IF NOT EXISTS procs (
    pgid      INTEGER PRIMARY KEY,
    starttime TEXT NOT NULL,    -- /proc start time, guards against a reused pid
    what      TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v TEXT NOT NULL);
"""


class Store:
    def __init__(self, path: Path):
        self.path = path
        self.db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False, timeout=30)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.executescript(SCHEMA)
        self._depth = 0

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Group writes into one transaction (nested uses join the outer one)."""
        if self._depth == 0:
            self.db.execute("BEGIN")
        self._depth += 1
        try:
            yield
        except BaseException:
            self._depth -= 1
            if self._depth == 0:
                self.db.execute("ROLLBACK")
            raise
        self._depth -= 1
        if self._depth == 0:
            self.db.execute("COMMIT")

    def put(self, kind: str, account: str, key: str, seq: int, doc: dict) -> None:
        self.db.execute(
            "INSERT INTO objects(kind, account, key, seq, doc) VALUES (?,?,?,?,?) "
            "ON CONFLICT(kind, account, key) DO UPDATE SET doc=excluded.doc",
            (kind, account, key, seq, json.dumps(doc, separators=(",", ":"))),
        )

    def delete(self, kind: str, account: str, key: str) -> None:
        self.db.execute("DELETE FROM objects WHERE kind=? AND account=? AND key=?", (kind, account, key))

    def delete_tasks_of(self, account: str, job_key: str) -> None:
        # '/' sorts before any id character, so the range covers exactly '<job>/...'
        self.db.execute(
            "DELETE FROM objects WHERE kind='task' AND account=? AND key >= ? AND key < ?",
            (account, job_key + "/", job_key + "0"),
        )

    def load(self, kind: str) -> Iterable[tuple[str, str, int, dict]]:
        rows = self.db.execute("SELECT account, key, seq, doc FROM objects WHERE kind=? ORDER BY seq", (kind,))
        for account, key, seq, doc in rows.fetchall():
            yield account, key, seq, json.loads(doc)

    def max_seq(self) -> int:
        row = self.db.execute("SELECT MAX(seq) FROM objects").fetchone()
        return int(row[0] or 0)

    # -- process groups of running tasks ----------------------------------------------------
    def add_proc(self, pgid: int, starttime: str, what: str) -> None:
        self.db.execute("INSERT OR REPLACE INTO procs(pgid, starttime, what) VALUES (?,?,?)", (pgid, starttime, what))

    def remove_proc(self, pgid: int) -> None:
        self.db.execute("DELETE FROM procs WHERE pgid=?", (pgid,))

    def procs(self) -> list[tuple[int, str, str]]:
        return [(int(a), str(b), str(c)) for a, b, c in self.db.execute("SELECT pgid, starttime, what FROM procs")]

    def close(self) -> None:
        self.db.close()
