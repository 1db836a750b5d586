"""The SQLite store's connections: one write connection behind a lock for ``BEGIN IMMEDIATE``
transactions, one read connection per thread (WAL readers never wait for the writer), and
its own checkpoints outside the write lock."""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ...errors import ConflictError, StoreError, StoreUnavailableError

# write transactions between two checkpoints of this process's own (see _checkpoint): a busy
# proxy writes up to ~10 pages a transaction, so it gets there well before SQLite's automatic
# checkpoint (1,000 pages), which stays on as the bound for every other writer and large writes
CHECKPOINT_EVERY = 50


class SqliteDatabase:
    """The connection half of :class:`~.store.SqliteStore` (a mixin: the store's primitives
    call ``_tx`` and ``_read`` directly, with nothing between them and the connection)."""

    path: Path
    _closed: bool

    def _open_database(self, path: str | os.PathLike[str], busy_timeout_ms: int) -> None:
        self.path = Path(path)
        self._busy_ms = int(busy_timeout_ms)
        self._lock = threading.RLock()  # one connection per store, shared by its threads
        self._tls = threading.local()  # per-thread read connection (also watches data_version)
        self._readers: list[tuple[threading.Thread, sqlite3.Connection]] = []
        self._conn = self._connect()
        self._commits = 0  # since the last checkpoint
        self._checkpointing = threading.Lock()

    def _connect(self) -> sqlite3.Connection:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            try:  # owner-only from birth
                os.close(os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o600))
            except FileExistsError:
                # never open and close another descriptor of a live database: closing any
                # descriptor of a file drops every POSIX lock this process holds on it, and
                # the next process to close its last connection would then delete the
                # write-ahead log this process's other connections still use
                pass
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

    def close(self) -> None:
        with self._lock:
            if not self._closed:
                self._closed = True
                for conn in [self._conn, *(c for _, c in self._readers)]:
                    conn.close()

    def _poll_changed(self) -> bool:
        """``PRAGMA data_version`` moves when another connection commits: a microsecond
        check that needs no disk read, so polling every few milliseconds is cheap."""
        version: int = self._reader().execute("PRAGMA data_version").fetchone()[0]
        changed: bool = version != self._tls.seen
        self._tls.seen = version
        return changed
