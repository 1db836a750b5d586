"""SQLite backend (the embedded default): one WAL file in the workspace.

Every change is one ``BEGIN IMMEDIATE`` transaction, so several processes (kernels,
CLI, proxy) can share the file, and a process killed mid-change leaves nothing
half-done. FIFO heads carry ``ready_at`` (NULL on every other row); a partial index
on it makes claiming O(log n) however many actions wait behind the heads.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable

from ..errors import ClaimLostError, ConflictError, NotFoundError, StoreError, StoreUnavailableError
from . import rules
from .base import (
    Located,
    LocationChange,
    LocationKey,
    Store,
    Transition,
    counts_from,
    in_use_error,
    lease_free_for,
    needs_unique_check,
    proxy_doc,
    proxy_from_doc,
)
from .records import (
    TERMINAL_STATES,
    Action,
    ActionKind,
    ActionState,
    Claim,
    Counts,
    DestroyReport,
    Federation,
    Lease,
    Location,
    Marks,
    PoolMember,
    ProxyRecord,
    epoch,
    utc,
)

SCHEMA_VERSION = 1
_ACTIVE_SQL = "state IN ('queued', 'blocked')"
_SCHEMA = [
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
        ready_at REAL)""",
    "CREATE UNIQUE INDEX actions_fifo ON actions (federation_id, target_key, seq)",
    f"CREATE INDEX actions_active ON actions (federation_id, target_key, seq) WHERE {_ACTIVE_SQL}",
    "CREATE INDEX actions_ready ON actions (federation_id, ready_at) WHERE ready_at IS NOT NULL",
    "CREATE INDEX actions_state ON actions (federation_id, state)",
    """CREATE TABLE locations (federation_id TEXT NOT NULL, job_key TEXT NOT NULL, kind TEXT NOT NULL,
        pool_key TEXT NOT NULL, job_id TEXT NOT NULL, batch_service_url TEXT NOT NULL, pool_id TEXT NOT NULL,
        account TEXT, location TEXT, unique_ids TEXT NOT NULL, addition_timestamps TEXT NOT NULL,
        created_at REAL, terminated_at REAL, PRIMARY KEY (federation_id, job_key, kind, pool_key))""",
    "CREATE TABLE leases (name TEXT PRIMARY KEY, holder TEXT NOT NULL, expires_at REAL NOT NULL)",
    """CREATE TABLE proxies (proxy_id TEXT PRIMARY KEY, pid INTEGER, host TEXT, version TEXT, role TEXT,
        counters TEXT, info TEXT, started_at REAL, heartbeat_at REAL)""",
]
# the two hot queries: the readiest head of a federation, and a target's head
CLAIM_SQL = (
    "SELECT * FROM actions WHERE federation_id = ? AND ready_at IS NOT NULL AND ready_at <= ? "
    "AND NOT EXISTS (SELECT 1 FROM flags WHERE name = 'suspended' AND value) ORDER BY ready_at LIMIT 1"
)
_READY_SQL = "SELECT 1 FROM actions WHERE federation_id = ? AND ready_at IS NOT NULL AND ready_at <= ? LIMIT 1"
HEAD_SQL = f"SELECT * FROM actions WHERE federation_id = ? AND target_key = ? AND {_ACTIVE_SQL} ORDER BY seq LIMIT 1"
_MUTABLE = (
    "state reason verdicts error attempts errors next_attempt_at placed_at finished_at progress "
    "claimed_by claim_deadline claim_token"
).split()
_UPDATE_ACTION = f"UPDATE actions SET {', '.join(f'{c} = :{c}' for c in _MUTABLE)}, ready_at = :ready_at WHERE id = :id"
_STORED = (*_MUTABLE, "ready_at")  # the columns a step may change


@lru_cache(maxsize=64)
def _update_claimed(columns: tuple[str, ...]) -> str:
    """An update of ``columns`` only while the stored row is exactly what the claim holder last
    wrote and the claim has not lapsed (the fast path of a claimed change; see
    SqliteStore._mutate_claimed_in). Only the columns that change are set: SQLite then leaves
    alone every index on the others, and a journal step, which changes the progress alone,
    writes the row's page and no index page."""
    return (
        f"UPDATE actions SET {', '.join(f'{c} = :{c}' for c in columns)} WHERE id = :id"
        + "".join(f" AND {c} IS :old_{c}" for c in _STORED)
        + " AND claim_deadline > :now_"
    )

_INSERT_ACTION = (
    f"INSERT INTO actions ({', '.join(rules.ACTION_FIELDS)}, ready_at) "
    f"VALUES ({', '.join(':' + c for c in rules.ACTION_FIELDS)}, :ready_at)"
)
_INSERT_LOCATION = (
    f"INSERT OR REPLACE INTO locations ({', '.join(rules.LOCATION_FIELDS)}) "
    f"VALUES ({', '.join(':' + c for c in rules.LOCATION_FIELDS)})"
)


def _row_doc(a: Action, token: str | None, *, head: bool) -> dict[str, Any]:
    """The row of ``a`` as written, without its payload (it never changes after enqueue);
    ``ready_at`` only for the head of its target's FIFO."""
    doc = rules.action_doc(a, token, payload_text="")
    doc["ready_at"] = rules.ready_at(a) if head else None
    return doc


# write transactions between two checkpoints of this process's own (see _checkpoint): a busy
# proxy writes up to ~10 pages a transaction, so it gets there well before SQLite's automatic
# checkpoint (1,000 pages), which stays on as the bound for every other writer and large writes
CHECKPOINT_EVERY = 50


class SqliteStore(Store):
    backend = "sqlite"
    claim_checks_suspension = True  # see _claim: atomically with the claim
    claims_with_placement = True  # see _placed_then_claim: one transaction

    def __init__(self, path: str | os.PathLike[str], *, busy_timeout_ms: int = 10_000, **kwargs: Any):
        super().__init__(**kwargs)
        self.path = Path(path)
        self._busy_ms = int(busy_timeout_ms)
        self._lock = threading.RLock()  # one connection per store, shared by its threads
        self._tls = threading.local()  # per-thread read connection (also watches data_version)
        self._readers: list[tuple[threading.Thread, sqlite3.Connection]] = []
        self._conn = self._connect()
        self._commits = 0  # since the last checkpoint
        self._checkpointing = threading.Lock()
        self._ensure_schema()

    def __repr__(self) -> str:
        return f"SqliteStore({str(self.path)!r})"

    # ------------------------------------------------------------------ connection
    def _connect(self) -> sqlite3.Connection:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            os.close(os.open(self.path, os.O_CREAT | os.O_RDWR, 0o600))  # owner-only from birth
            conn = sqlite3.connect(self.path, timeout=self._busy_ms / 1000, isolation_level=None, check_same_thread=False)
            conn.row_factory = sqlite3.Row
            conn.execute(f"PRAGMA busy_timeout = {self._busy_ms}")
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")  # WAL + NORMAL survives process crashes
            return conn
        except (OSError, sqlite3.Error) as exc:
            raise self._translate(exc) from exc

    def _translate(self, exc: BaseException) -> StoreError:
        text = str(exc) or type(exc).__name__
        if isinstance(exc, sqlite3.OperationalError) and ("locked" in text or "busy" in text):
            return StoreUnavailableError(f"sqlite store {self.path}: {text} (waited {self._busy_ms} ms)")
        if isinstance(exc, sqlite3.IntegrityError):
            return ConflictError(f"sqlite store {self.path}: {text}")
        return StoreError(f"sqlite store {self.path}: {text}")

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        """One write transaction; the write lock is taken up front so read-then-write is safe."""
        with self._lock:
            conn = self._live()
            try:
                conn.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise self._translate(exc) from exc
            try:
                yield conn
                conn.execute("COMMIT")
            except BaseException as exc:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                if isinstance(exc, sqlite3.Error):
                    raise self._translate(exc) from exc
                raise
            self._commits += 1
            due = self._commits >= CHECKPOINT_EVERY
        if due:
            self._checkpoint()

    def _checkpoint(self) -> None:
        """Copy the write-ahead log back into the database, outside the write lock.

        SQLite's automatic checkpoint runs inside the commit that fills the log, so every other
        writer of this process waits for its page copies and syncs; this one runs on the
        committing thread's read connection after the lock is released, while the others go on
        writing (PASSIVE: it never waits for readers or writers, and copies what it can). Once
        it copied the whole log, the next commit starts the log over, so under a proxy's load
        the automatic one rarely comes due; it still bounds the log wherever this one does not
        run (a process that writes a few times, a write of many pages)."""
        if not self._checkpointing.acquire(blocking=False):
            return  # another thread is at it
        try:
            self._commits = 0
            self._reader().execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        except (sqlite3.Error, StoreError):
            # busy, or the store closed meanwhile: the write committed all the same, and the
            # next checkpoint (or the last connection's close) copies these pages
            pass
        finally:
            self._checkpointing.release()

    def _read(self, sql: str, args: Any = ()) -> list[sqlite3.Row]:
        """A read on this thread's own connection, outside the store lock: WAL readers never
        wait for the writer, and a proxy's workers would otherwise queue behind each other's
        transactions for reads as well."""
        try:
            return self._reader().execute(sql, args).fetchall()
        except sqlite3.Error as exc:
            raise self._translate(exc) from exc

    def _reader(self) -> sqlite3.Connection:
        """This thread's read connection (also the one watching ``data_version``)."""
        conn = getattr(self._tls, "conn", None)
        if conn is None:
            if self._closed:
                raise StoreError(f"sqlite store {self.path}: used after close()")
            try:
                conn = sqlite3.connect(self.path, timeout=self._busy_ms / 1000, isolation_level=None, check_same_thread=False)
            except sqlite3.Error as exc:
                raise self._translate(exc) from exc
            conn.row_factory = sqlite3.Row
            with self._lock:
                # a thread that ended leaves its connection behind: close those now
                for owner, old in [r for r in self._readers if not r[0].is_alive()]:
                    old.close()
                    self._readers.remove((owner, old))
                self._readers.append((threading.current_thread(), conn))
            self._tls.conn, self._tls.seen = conn, None
        elif self._closed:
            raise StoreError(f"sqlite store {self.path}: used after close()")
        return conn

    def _live(self) -> sqlite3.Connection:
        if self._closed:
            raise StoreError(f"sqlite store {self.path}: used after close()")
        return self._conn

    def _ensure_schema(self) -> None:
        with self._tx() as c:
            version = c.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise StoreError(f"sqlite store {self.path}: schema {version} is newer than this batchfed_lab ({SCHEMA_VERSION})")
            if version == 0:
                for statement in _SCHEMA:
                    c.execute(statement)
                c.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def close(self) -> None:
        with self._lock:
            if not self._closed:
                self._closed = True
                for conn in [self._conn, *(c for _, c in self._readers)]:
                    conn.close()

    @staticmethod
    def _bump(c: sqlite3.Connection, *names: str) -> None:
        for n in names:
            c.execute("UPDATE signals SET version = version + 1 WHERE name = ?", (n,))

    @staticmethod
    def _federation_row(c: sqlite3.Connection, fid: str) -> sqlite3.Row:
        row = c.execute("SELECT * FROM federations WHERE id = ?", (fid,)).fetchone()
        if row is None:
            raise NotFoundError(f"federation {fid!r} does not exist")
        return row

    # ------------------------------------------------------------------ federations
    def _create_federation(self, fed: Federation, force: bool) -> Federation:
        with self._tx() as c:
            row = c.execute("SELECT * FROM federations WHERE id = ?", (fed.id,)).fetchone()
            if row is not None and not force:
                raise ConflictError(f"federation {fed.id!r} exists already (force replaces its settings)")
            if row is not None:
                c.execute("UPDATE federations SET unique_job_ids = ? WHERE id = ?", (int(fed.unique_job_ids), fed.id))
                fed = Federation(fed.id, fed.unique_job_ids, utc(row["created_at"]))  # type: ignore[arg-type]
            else:
                c.execute("INSERT INTO federations VALUES (?, ?, ?)", (fed.id, int(fed.unique_job_ids), epoch(fed.created_at)))
            self._bump(c, "federations")
        return fed

    @staticmethod
    def _fed(row: sqlite3.Row) -> Federation:
        return Federation(row["id"], bool(row["unique_job_ids"]), utc(row["created_at"]))  # type: ignore[arg-type]

    def _get_federation(self, fid: str) -> Federation | None:
        rows = self._read("SELECT * FROM federations WHERE id = ?", (fid,))
        return self._fed(rows[0]) if rows else None

    def _list_federations(self) -> list[Federation]:
        return [self._fed(r) for r in self._read("SELECT * FROM federations")]

    def _destroy_federation(self, fid: str) -> DestroyReport | None:
        with self._tx() as c:
            if c.execute("SELECT 1 FROM federations WHERE id = ?", (fid,)).fetchone() is None:
                return None
            active = c.execute(f"SELECT count(*) FROM actions WHERE federation_id = ? AND {_ACTIVE_SQL}", (fid,)).fetchone()[0]
            counts = {}
            for table in ("pools", "actions", "locations"):
                counts[table] = c.execute(f"DELETE FROM {table} WHERE federation_id = ?", (fid,)).rowcount
                self._crashpoint("destroy.step")
            c.execute("DELETE FROM federations WHERE id = ?", (fid,))
            self._bump(c, "federations", "actions")
        return DestroyReport(fid, counts["pools"], active, counts["actions"], counts["locations"])

    # ------------------------------------------------------------------ pools
    @staticmethod
    def _pool(row: sqlite3.Row) -> PoolMember:
        return PoolMember(
            row["federation_id"], row["batch_service_url"], row["pool_id"], row["account"], row["location"], utc(row["added_at"])
        )

    def _add_pools(self, fid: str, members: list[PoolMember]) -> list[PoolMember]:
        with self._tx() as c:
            self._federation_row(c, fid)
            for m in members:
                key = rules.pool_key(m.batch_service_url, m.pool_id)
                row = c.execute("SELECT federation_id FROM pools WHERE pool_key = ?", (key,)).fetchone()
                if row is not None:
                    raise pool_taken(m, row["federation_id"])
                c.execute(
                    "INSERT INTO pools VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (key, fid, m.batch_service_url, m.pool_id, m.account, m.location, epoch(m.added_at)),
                )
                self._crashpoint("pools.row")
            self._bump(c, "federations")
        return members

    def _remove_pools(self, fid: str, keys: list[str] | None) -> list[PoolMember]:
        with self._tx() as c:
            self._federation_row(c, fid)
            if keys is None:
                rows = c.execute("SELECT * FROM pools WHERE federation_id = ?", (fid,)).fetchall()
            else:
                rows = []
                for key in keys:
                    row = c.execute("SELECT * FROM pools WHERE pool_key = ? AND federation_id = ?", (key, fid)).fetchone()
                    if row is None:
                        url, _, pid = key.rpartition("|")
                        raise NotFoundError(f"pool {pid!r} at {url} is not in federation {fid!r}")
                    rows.append(row)
            c.executemany("DELETE FROM pools WHERE pool_key = ?", [(r["pool_key"],) for r in rows])
            self._bump(c, "federations")
        return [self._pool(r) for r in rows]

    def _list_pools(self, fid: str | None) -> list[PoolMember]:
        if fid is None:
            return [self._pool(r) for r in self._read("SELECT * FROM pools")]
        return [self._pool(r) for r in self._read("SELECT * FROM pools WHERE federation_id = ?", (fid,))]

    def _find_pool(self, key: str) -> PoolMember | None:
        rows = self._read("SELECT * FROM pools WHERE pool_key = ?", (key,))
        return self._pool(rows[0]) if rows else None

    # ------------------------------------------------------------------ actions
    @staticmethod
    def _action(row: sqlite3.Row) -> Action:
        return rules.action_from_doc(dict(row))

    def _enqueue(self, fid: str, actions: list[Action], payloads: list[str], now: float) -> list[Action]:
        out = []
        with self._tx() as c:
            fed = self._fed(self._federation_row(c, fid))
            fifo: dict[str, list[Any]] = {}  # target key → [next position, has a head, active before this batch]
            for a, text in zip(actions, payloads):
                key = rules.target_key(a.target_id)
                if key not in fifo:
                    last, active = c.execute(
                        f"SELECT max(seq), (SELECT count(*) FROM actions WHERE federation_id = ?1 AND target_key = ?2 "
                        f"AND {_ACTIVE_SQL}) FROM actions WHERE federation_id = ?1 AND target_key = ?2",
                        (fid, key),
                    ).fetchone()
                    fifo[key] = [(last or 0) + 1, bool(active), bool(active)]
                state = fifo[key]
                if needs_unique_check(a, fed) and (state[2] or self._located(c, fid, key)):
                    raise in_use_error(a)
                a = a.replace(position=state[0])
                doc = rules.action_doc(a, None, payload_text=text)
                doc["ready_at"] = None if state[1] else rules.ready_at(a)  # the first active one is the head
                c.execute(_INSERT_ACTION, doc)
                state[0] += 1
                state[1] = True
                out.append(a)
                self._crashpoint("enqueue.row")
            self._bump(c, "actions")
        return out

    @staticmethod
    def _located(c: sqlite3.Connection, fid: str, key: str) -> bool:
        return c.execute("SELECT 1 FROM locations WHERE federation_id = ? AND job_key = ? LIMIT 1", (fid, key)).fetchone() is not None

    @staticmethod
    def _row(c: sqlite3.Connection, fid: str, aid: str) -> sqlite3.Row | None:
        return c.execute("SELECT * FROM actions WHERE id = ? AND federation_id = ?", (aid, fid)).fetchone()

    def _get_action(self, fid: str, aid: str) -> Action | None:
        with self._lock:
            row = self._row(self._live(), fid, aid)
        return None if row is None else self._action(row)

    def _claim_token(self, fid: str, aid: str) -> str | None:
        rows = self._read("SELECT claim_token FROM actions WHERE federation_id = ? AND id = ?", (fid, aid))
        return rows[0][0] if rows else None

    def _head(self, fid: str, tkey: str) -> Action | None:
        rows = self._read(HEAD_SQL, (fid, tkey))
        return self._action(rows[0]) if rows else None

    def _list_actions(self, fid: str, tkey: str | None, states: frozenset[ActionState] | None, limit: int | None) -> list[Action]:
        sql, args = "SELECT * FROM actions WHERE federation_id = ?", [fid]
        if tkey is not None:
            sql += " AND target_key = ?"
            args.append(tkey)
        if states is not None:
            sql += f" AND state IN ({', '.join('?' * len(states))})"
            args.extend(sorted(s.value for s in states))
        sql += " ORDER BY target_key, seq"
        if limit is not None:
            sql += " LIMIT ?"
            args.append(int(limit))
        return [self._action(r) for r in self._read(sql, args)]

    def _counts(self, fid: str) -> Counts:
        conn = self._reader()
        try:
            conn.execute("BEGIN")  # one snapshot for the three counts
            try:
                rows = conn.execute("SELECT state, count(*) FROM actions WHERE federation_id = ? GROUP BY state", (fid,))
                by_state = {state: n for state, n in rows}
                claimed = conn.execute(
                    "SELECT count(*) FROM actions WHERE federation_id = ? AND ready_at IS NOT NULL AND claim_deadline > ?",
                    (fid, self.now()),
                ).fetchone()[0]
                jobs = conn.execute("SELECT count(DISTINCT job_key) FROM locations WHERE federation_id = ?", (fid,)).fetchone()[0]
            finally:
                conn.execute("COMMIT")
        except sqlite3.Error as exc:
            raise self._translate(exc) from exc
        return counts_from(by_state, claimed, jobs)

    def _in_use(self, fid: str, tkey: str) -> bool:
        with self._lock:
            conn = self._live()
            active = f"SELECT 1 FROM actions WHERE federation_id = ? AND target_key = ? AND {_ACTIVE_SQL} LIMIT 1"
            return conn.execute(active, (fid, tkey)).fetchone() is not None or self._located(conn, fid, tkey)

    def _save(self, c: sqlite3.Connection, a: Action, token: str | None, *, head: bool) -> tuple[Action, dict[str, Any]]:
        """Write the changeable columns of ``a``; returns the claim hint for it (see _mutate_claimed_in)."""
        doc = _row_doc(a, token, head=head)
        c.execute(_UPDATE_ACTION, doc)
        return a, {k: doc[k] for k in _STORED}

    def _advance(self, c: sqlite3.Connection, fid: str, tkey: str) -> None:
        """The head ended: the next active action of the target becomes the head."""
        row = c.execute(HEAD_SQL, (fid, tkey)).fetchone()
        if row is not None:
            c.execute("UPDATE actions SET ready_at = ? WHERE id = ?", (rules.ready_at(self._action(row)), row["id"]))

    def _claim(self, fid: str, worker: str, token: str, deadline: float, now: float) -> Claim | None:
        # nothing ready: say so from a read, without taking the write lock (a proxy asks every
        # federation it watches each time a worker frees up)
        if not self._read(_READY_SQL, (fid, now)):
            return None
        with self._tx() as c:
            return self._claim_in(c, fid, worker, token, deadline, now)

    def _claim_in(self, c: sqlite3.Connection, fid: str, worker: str, token: str, deadline: float, now: float) -> Claim | None:
        # the suspend flag is checked by the same statement: nothing slips through after a suspend
        row = c.execute(CLAIM_SQL, (fid, now)).fetchone()
        if row is None:
            return None
        claimed = rules.t_claim(self._action(row), worker, deadline)
        hint = self._save(c, claimed, token, head=True)
        return Claim(claimed, token, worker, claimed.claim_deadline, hint)  # type: ignore[arg-type]

    def _placed_then_claim(
        self, claim: Claim, fn: Transition, now: float, located: Located | None,
        worker: str, token: str, deadline: float,
    ) -> tuple[Action, Claim | None]:  # fmt: skip
        with self._tx() as c:  # one transaction: a lost claim writes neither, and claims nothing
            placed = self._mutate_claimed_in(c, claim, fn, now)[0]
            if located is not None:
                self._locate_claimed_in(c, *located)
            return placed, self._claim_in(c, claim.federation_id, worker, token, deadline, now)

    def _mutate_claimed(self, claim: Claim, fn: Transition, now: float) -> tuple[Action, Any]:
        with self._tx() as c:
            return self._mutate_claimed_in(c, claim, fn, now)

    def _mutate_claimed_and_locate(
        self, claim: Claim, fn: Transition, now: float, where: LocationKey, change: LocationChange
    ) -> tuple[Action, Any]:
        with self._tx() as c:  # one transaction: a lost claim writes neither
            result = self._mutate_claimed_in(c, claim, fn, now)
            self._locate_claimed_in(c, where, change)
        return result

    def _locate_claimed_in(self, c: sqlite3.Connection, where: LocationKey, change: LocationChange) -> None:
        # the claimed action exists, so its federation does: no need to look it up
        self._change_location_in(c, *where, change, check_federation=False)

    def _mutate_claimed_in(self, c: sqlite3.Connection, claim: Claim, fn: Transition, now: float) -> tuple[Action, Any]:
        # Fast path: the claim carries the action as its holder last wrote it. The update
        # applies only if the stored row still is exactly that (same token, same fields, not
        # lapsed), so a zap, a takeover or a stale Claim object falls to the read below. The
        # claim's hint is the (action, columns) this store last wrote for it: the columns as
        # stored, without working them out from the action again.
        mine, expiry = claim.action, epoch(claim.action.claim_deadline)
        if expiry is not None and expiry > now:
            new = fn(mine, now)
            hint = claim.hint
            was = hint[1] if isinstance(hint, tuple) and hint[0] is mine else _row_doc(mine, claim.token, head=True)
            doc = _row_doc(new, claim.token if new.claimed_by else None, head=True)
            stored = {k: doc[k] for k in _STORED}
            changed = tuple(k for k in _STORED if stored[k] != was[k])
            doc.update({f"old_{k}": was[k] for k in _STORED}, now_=now)
            # a step that changes nothing still sets one column: the update is the claim's check
            if c.execute(_update_claimed(changed or ("progress",)), doc).rowcount == 1:
                return self._after_claimed_change(c, new), (new, stored)
        row = self._row(c, claim.federation_id, claim.action_id)
        if row is None:
            raise ClaimLostError(f"action {claim.action_id}: no longer exists (federation destroyed?)")
        old = self._action(row)
        rules.check_claim(old, row["claim_token"], claim.token, now)
        new = fn(old, now)
        hint = self._save(c, new, claim.token if new.claimed_by else None, head=True)
        return self._after_claimed_change(c, new), hint

    def _after_claimed_change(self, c: sqlite3.Connection, new: Action) -> Action:
        """An ended action hands the head on; an unclaimed one signals waiting proxies."""
        if new.state in TERMINAL_STATES:
            self._advance(c, new.federation_id, rules.target_key(new.target_id))
        if new.claimed_by is None:
            self._bump(c, "actions")
        return new

    def _zap(self, fid: str, aid: str, now: float) -> Action:
        with self._tx() as c:
            row = self._row(c, fid, aid)
            if row is None:
                raise NotFoundError(f"action {aid} does not exist in federation {fid!r}")
            new = rules.t_zap(self._action(row), now)
            self._save(c, new, None, head=False)
            if row["ready_at"] is not None:
                self._advance(c, fid, row["target_key"])
            self._bump(c, "actions")
        return new

    def _next_ready(self, fid: str) -> float | None:
        return self._read("SELECT min(ready_at) FROM actions WHERE federation_id = ? AND ready_at IS NOT NULL", (fid,))[0][0]

    # ------------------------------------------------------------------ locations
    def _change_location(self, fid: str, job: str, kind: ActionKind, url: str, pid: str, fn: LocationChange) -> Location | None:
        with self._tx() as c:
            return self._change_location_in(c, fid, job, kind, url, pid, fn)

    def _change_location_in(
        self, c: sqlite3.Connection, fid: str, job: str, kind: ActionKind, url: str, pid: str, fn: LocationChange,
        *, check_federation: bool = True,
    ) -> Location | None:  # fmt: skip
        key = (fid, rules.target_key(job), kind.value, rules.pool_key(url, pid))
        where = "federation_id = ? AND job_key = ? AND kind = ? AND pool_key = ?"
        if check_federation:
            self._federation_row(c, fid)
        row = c.execute(f"SELECT * FROM locations WHERE {where}", key).fetchone()
        old = None if row is None else rules.location_from_doc(dict(row))
        new = fn(old, self.now())
        if new is None:
            if row is not None:
                c.execute(f"DELETE FROM locations WHERE {where}", key)
        elif new is not old:  # a change that changed nothing (the location recorded again) writes nothing
            c.execute(_INSERT_LOCATION, rules.location_doc(new))
        return new

    def _get_locations(self, fid: str, job_key: str | None) -> list[Location]:
        if job_key is None:
            rows = self._read("SELECT * FROM locations WHERE federation_id = ?", (fid,))
        else:
            rows = self._read("SELECT * FROM locations WHERE federation_id = ? AND job_key = ?", (fid, job_key))
        return [rules.location_from_doc(dict(r)) for r in rows]

    # ------------------------------------------------------------------ leases
    def _lease_row(self, c: sqlite3.Connection, name: str) -> Lease | None:
        row = c.execute("SELECT * FROM leases WHERE name = ?", (name,)).fetchone()
        return None if row is None else Lease(name, row["holder"], utc(row["expires_at"]))  # type: ignore[arg-type]

    def _lease_write(self, name: str, holder: str, ttl: float, now: float, allowed: Callable[[Lease | None], bool]) -> Lease | None:
        with self._tx() as c:
            if not allowed(self._lease_row(c, name)):
                return None
            c.execute("INSERT OR REPLACE INTO leases VALUES (?, ?, ?)", (name, holder, now + ttl))
        return Lease(name, holder, utc(now + ttl))  # type: ignore[arg-type]

    def _lease_acquire(self, name: str, holder: str, ttl: float, now: float) -> Lease | None:
        return self._lease_write(name, holder, ttl, now, lambda cur: lease_free_for(cur, holder, now))

    def _lease_renew(self, name: str, holder: str, ttl: float, now: float) -> Lease | None:
        return self._lease_write(name, holder, ttl, now, lambda cur: cur is not None and cur.holder == holder)

    def _lease_release(self, name: str, holder: str, now: float) -> bool:
        with self._tx() as c:
            return c.execute("DELETE FROM leases WHERE name = ? AND holder = ?", (name, holder)).rowcount > 0

    def _lease_get(self, name: str, now: float) -> Lease | None:
        with self._lock:
            lease = self._lease_row(self._live(), name)
        return lease if lease is not None and epoch(lease.expires_at) > now else None  # type: ignore[operator]

    # ------------------------------------------------------------------ proxies, flags
    def _put_proxy(self, rec: ProxyRecord) -> None:
        doc = proxy_doc(rec)
        with self._tx() as c:
            c.execute(f"INSERT OR REPLACE INTO proxies ({', '.join(doc)}) VALUES ({', '.join(':' + k for k in doc)})", doc)

    def _get_proxy(self, proxy_id: str) -> ProxyRecord | None:
        rows = self._read("SELECT * FROM proxies WHERE proxy_id = ?", (proxy_id,))
        return proxy_from_doc(dict(rows[0])) if rows else None

    def _list_proxies(self) -> list[ProxyRecord]:
        return [proxy_from_doc(dict(r)) for r in self._read("SELECT * FROM proxies")]

    def _remove_proxy(self, proxy_id: str) -> bool:
        with self._tx() as c:
            return c.execute("DELETE FROM proxies WHERE proxy_id = ?", (proxy_id,)).rowcount > 0

    def _set_flag(self, name: str, value: bool) -> None:
        with self._tx() as c:
            c.execute("INSERT OR REPLACE INTO flags VALUES (?, ?)", (name, int(value)))
            self._bump(c, "control")

    def _get_flag(self, name: str) -> bool:
        rows = self._read("SELECT value FROM flags WHERE name = ?", (name,))
        return bool(rows and rows[0][0])

    # ------------------------------------------------------------------ change signals
    def _marks(self) -> Marks:
        return Marks(**{name: version for name, version in self._read("SELECT name, version FROM signals")})

    def _poll_changed(self) -> bool:
        """``PRAGMA data_version`` moves when another connection commits: a microsecond
        check that needs no disk read, so polling every few milliseconds is cheap."""
        version = self._reader().execute("PRAGMA data_version").fetchone()[0]
        changed = version != self._tls.seen
        self._tls.seen = version
        return changed


def pool_taken(m: PoolMember, owner: str) -> ConflictError:
    where = "this federation" if owner == m.federation_id else f"federation {owner!r}"
    return ConflictError(f"pool {m.pool_id!r} at {m.batch_service_url} is already in {where}")
