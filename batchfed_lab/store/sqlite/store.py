"""The SQLite store's primitives (see the package docstring)."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable
from typing import Any

from ...errors import ClaimLostError, ConflictError, NotFoundError
from .. import rules
from ..base import Store
from ..ordering import ReadyGroup
from ..primitives import Located, LocationChange, LocationKey, Transition
from ..records import (
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
from ..rules import (
    counts_from,
    in_use_error,
    needs_unique_check,
    pool_taken,
    proxy_doc,
    proxy_from_doc,
)
from .connection import SqliteDatabase
from .rows import (
    action_from_row,
    federation_from_row,
    lease_from_row,
    pool_from_row,
    row_doc,
)
from .schema import (
    ACTIVE_SQL,
    CLAIM_IN_GROUP_SQL,
    CLAIM_SQL,
    FIRST_GROUP_SQL,
    HEAD_SQL,
    INSERT_ACTION,
    INSERT_LOCATION,
    NEXT_GROUP_SQL,
    READY_SQL,
    STORED,
    UPDATE_ACTION,
    ensure_schema,
    update_claimed,
)


class SqliteStore(SqliteDatabase, Store):
    backend = "sqlite"
    claims_with_placement = True  # see _placed_then_claim: one transaction

    def __init__(self, path: str | os.PathLike[str], *, busy_timeout_ms: int = 10_000, **kwargs: Any):
        super().__init__(**kwargs)
        self._open_database(path, busy_timeout_ms)
        with self._tx() as c:
            ensure_schema(c, self.path)

    def __repr__(self) -> str:
        return f"SqliteStore({str(self.path)!r})"

    @staticmethod
    def _bump(c: sqlite3.Connection, *names: str) -> None:
        for n in names:
            c.execute("UPDATE signals SET version = version + 1 WHERE name = ?", (n,))

    @staticmethod
    def _federation_row(c: sqlite3.Connection, fid: str) -> sqlite3.Row:
        row: sqlite3.Row | None = c.execute("SELECT * FROM federations WHERE id = ?", (fid,)).fetchone()
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
                fed = Federation(fed.id, fed.unique_job_ids, utc(row["created_at"]))
            else:
                c.execute("INSERT INTO federations VALUES (?, ?, ?)", (fed.id, int(fed.unique_job_ids), epoch(fed.created_at)))
            self._bump(c, "federations")
        return fed

    def _get_federation(self, fid: str) -> Federation | None:
        rows = self._read("SELECT * FROM federations WHERE id = ?", (fid,))
        return federation_from_row(rows[0]) if rows else None

    def _list_federations(self) -> list[Federation]:
        return [federation_from_row(r) for r in self._read("SELECT * FROM federations")]

    def _destroy_federation(self, fid: str) -> DestroyReport | None:
        with self._tx() as c:
            if c.execute("SELECT 1 FROM federations WHERE id = ?", (fid,)).fetchone() is None:
                return None
            active = c.execute(f"SELECT count(*) FROM actions WHERE federation_id = ? AND {ACTIVE_SQL}", (fid,)).fetchone()[0]
            counts = {}
            for table in ("pools", "actions", "locations"):
                counts[table] = c.execute(f"DELETE FROM {table} WHERE federation_id = ?", (fid,)).rowcount
                self._crashpoint("destroy.step")
            c.execute("DELETE FROM federations WHERE id = ?", (fid,))
            self._bump(c, "federations", "actions")
        return DestroyReport(fid, counts["pools"], active, counts["actions"], counts["locations"])

    # ------------------------------------------------------------------ pools
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
        return [pool_from_row(r) for r in rows]

    def _list_pools(self, fid: str | None) -> list[PoolMember]:
        if fid is None:
            return [pool_from_row(r) for r in self._read("SELECT * FROM pools")]
        return [pool_from_row(r) for r in self._read("SELECT * FROM pools WHERE federation_id = ?", (fid,))]

    def _find_pool(self, key: str) -> PoolMember | None:
        rows = self._read("SELECT * FROM pools WHERE pool_key = ?", (key,))
        return pool_from_row(rows[0]) if rows else None

    # ------------------------------------------------------------------ actions
    def _enqueue(self, fid: str, actions: list[Action], payloads: list[str], now: float) -> list[Action]:
        with self._tx() as c:
            return self._enqueue_in(c, fid, actions, payloads)

    def _enqueue_in(self, c: sqlite3.Connection, fid: str, actions: list[Action], payloads: list[str]) -> list[Action]:
        """:meth:`_enqueue` within the transaction ``c``."""
        out = []
        fed = federation_from_row(self._federation_row(c, fid))
        # target key → [next position, has a head, active before this batch, latest enqueue time]
        fifo: dict[str, list[Any]] = {}
        for a, text in zip(actions, payloads):
            key = rules.target_key(a.target_id)
            if key not in fifo:
                last, latest, active = c.execute(
                    f"SELECT max(seq), max(enqueued_at), (SELECT count(*) FROM actions WHERE federation_id = ?1 "
                    f"AND target_key = ?2 AND {ACTIVE_SQL}) FROM actions WHERE federation_id = ?1 AND target_key = ?2",
                    (fid, key),
                ).fetchone()
                fifo[key] = [(last or 0) + 1, bool(active), bool(active), latest]
            state = fifo[key]
            if needs_unique_check(a, fed) and (state[2] or self._located(c, fid, key)):
                raise in_use_error(a)
            a = a.replace(position=state[0], enqueued_at=rules.not_before(a.enqueued_at, state[3]))
            doc = rules.action_doc(a, None, payload_text=text)
            doc["ready_at"] = None if state[1] else rules.ready_at(a)  # the first active one is the head
            c.execute(INSERT_ACTION, doc)
            state[0] += 1
            state[1] = True
            out.append(a)
            self._crashpoint("enqueue.row")
        self._bump(c, "actions")
        return out

    def _enqueue_ahead(self, fid: str, action: Action, payload: str, now: float) -> Action:
        key = rules.target_key(action.target_id)
        with self._tx() as c:
            self._federation_row(c, fid)
            rows = c.execute(
                f"SELECT seq, ready_at, claim_deadline FROM actions WHERE federation_id = ? AND target_key = ? "
                f"AND {ACTIVE_SQL} ORDER BY seq",
                (fid, key),
            ).fetchall()
            free = [r for r in rows if not (r["claim_deadline"] is not None and r["claim_deadline"] > now)]
            if not free:
                return self._enqueue_in(c, fid, [action], [payload])[0]
            at, was_head = int(free[0]["seq"]), free[0]["ready_at"] is not None
            where = "federation_id = ? AND target_key = ? AND seq"
            # two steps: the unique (federation, target, seq) index holds after each statement
            c.execute(f"UPDATE actions SET seq = -seq - 1 WHERE {where} >= ?", (fid, key, at))
            c.execute(f"UPDATE actions SET seq = -seq WHERE {where} < 0", (fid, key))
            if was_head:  # the move is the head now
                c.execute(f"UPDATE actions SET ready_at = NULL WHERE {where} = ?", (fid, key, at + 1))
            a = action.replace(position=at)
            doc = rules.action_doc(a, None, payload_text=payload)
            doc["ready_at"] = rules.ready_at(a) if was_head else None
            c.execute(INSERT_ACTION, doc)
            self._bump(c, "actions")
        return a

    @staticmethod
    def _located(c: sqlite3.Connection, fid: str, key: str) -> bool:
        return (
            c.execute("SELECT 1 FROM locations WHERE federation_id = ? AND job_key = ? LIMIT 1", (fid, key)).fetchone()
            is not None
        )

    @staticmethod
    def _row(c: sqlite3.Connection, fid: str, aid: str) -> sqlite3.Row | None:
        row: sqlite3.Row | None = c.execute("SELECT * FROM actions WHERE id = ? AND federation_id = ?", (aid, fid)).fetchone()
        return row

    def _get_action(self, fid: str, aid: str) -> Action | None:
        with self._lock:
            row = self._row(self._live(), fid, aid)
        return None if row is None else action_from_row(row)

    def _claim_token(self, fid: str, aid: str) -> str | None:
        rows = self._read("SELECT claim_token FROM actions WHERE federation_id = ? AND id = ?", (fid, aid))
        return rows[0][0] if rows else None

    def _head(self, fid: str, tkey: str) -> Action | None:
        rows = self._read(HEAD_SQL, (fid, tkey))
        return action_from_row(rows[0]) if rows else None

    def _list_actions(self, fid: str, tkey: str | None, states: frozenset[ActionState] | None, limit: int | None) -> list[Action]:
        sql = "SELECT * FROM actions WHERE federation_id = ?"
        args: list[Any] = [fid]
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
        return [action_from_row(r) for r in self._read(sql, args)]

    def _counts(self, fid: str) -> Counts:
        conn = self._reader()
        try:
            conn.execute("BEGIN")  # one snapshot for the three counts
            try:
                rows = conn.execute("SELECT state, count(*) FROM actions WHERE federation_id = ? GROUP BY state", (fid,))
                by_state = dict(rows)
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
            active = f"SELECT 1 FROM actions WHERE federation_id = ? AND target_key = ? AND {ACTIVE_SQL} LIMIT 1"
            return conn.execute(active, (fid, tkey)).fetchone() is not None or self._located(conn, fid, tkey)

    def _save(self, c: sqlite3.Connection, a: Action, token: str | None, *, head: bool) -> tuple[Action, dict[str, Any]]:
        """Write the changeable columns of ``a``; returns the claim hint for it (see _mutate_claimed_in)."""
        doc = row_doc(a, token, head=head)
        c.execute(UPDATE_ACTION, doc)
        return a, {k: doc[k] for k in STORED}

    def _advance(self, c: sqlite3.Connection, fid: str, tkey: str) -> None:
        """The head ended: the next active action of the target becomes the head."""
        row = c.execute(HEAD_SQL, (fid, tkey)).fetchone()
        if row is not None:
            c.execute("UPDATE actions SET ready_at = ? WHERE id = ?", (rules.ready_at(action_from_row(row)), row["id"]))

    def _claim(self, fid: str, worker: str, token: str, deadline: float, now: float) -> Claim | None:
        # nothing ready: say so from a read, without taking the write lock (a proxy asks every
        # federation it watches each time a worker frees up)
        if not self._read(READY_SQL, (fid, now)):
            return None
        with self._tx() as c:
            return self._claim_in(c, fid, worker, token, deadline, now)

    def _claim_in(self, c: sqlite3.Connection, fid: str, worker: str, token: str, deadline: float, now: float) -> Claim | None:
        # the suspend flag is checked by the same statement: nothing slips through after a suspend
        if self.head_order is None:
            row = c.execute(CLAIM_SQL, (fid, now)).fetchone()
        else:
            groups = self._ready_groups(c, fid, now)
            pick = self.head_order.choose(groups, now, fid) if groups else None
            row = (
                None
                if pick is None
                else c.execute(CLAIM_IN_GROUP_SQL, (fid, pick.submitter or "", pick.priority, now)).fetchone()
            )
        if row is None:
            return None
        claimed = rules.t_claim(action_from_row(row), worker, deadline)
        hint = self._save(c, claimed, token, head=True)
        return Claim(claimed, token, worker, rules.claimed_until(claimed), hint)

    @staticmethod
    def _ready_groups(c: sqlite3.Connection, fid: str, now: float) -> list[ReadyGroup]:
        """The (submitter, priority) groups with a head ready now, each with its earliest ready time."""
        groups = []
        row = c.execute(FIRST_GROUP_SQL, (fid,)).fetchone()
        while row is not None:
            who, prio, at = row
            if at <= now:
                groups.append(ReadyGroup(who or None, prio, at, 1))
            row = c.execute(NEXT_GROUP_SQL, (fid, who, prio)).fetchone()
        return groups

    def _placed_then_claim(
        self,
        claim: Claim,
        fn: Transition,
        now: float,
        located: Located | None,
        worker: str,
        token: str,
        deadline: float,
    ) -> tuple[Action, Claim | None]:
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
            was = hint[1] if isinstance(hint, tuple) and hint[0] is mine else row_doc(mine, claim.token, head=True)
            doc = row_doc(new, claim.token if new.claimed_by else None, head=True)
            stored = {k: doc[k] for k in STORED}
            changed = tuple(k for k in STORED if stored[k] != was[k])
            doc.update({f"old_{k}": was[k] for k in STORED}, now_=now)
            # a step that changes nothing still sets one column: the update is the claim's check
            if c.execute(update_claimed(changed or ("progress",)), doc).rowcount == 1:
                return self._after_claimed_change(c, new), (new, stored)
        row = self._row(c, claim.federation_id, claim.action_id)
        if row is None:
            raise ClaimLostError(f"action {claim.action_id}: no longer exists (federation destroyed?)")
        old = action_from_row(row)
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
            new = rules.t_zap(action_from_row(row), now)
            self._save(c, new, None, head=False)
            if row["ready_at"] is not None:
                self._advance(c, fid, row["target_key"])
            self._bump(c, "actions")
        return new

    def _next_ready(self, fid: str) -> float | None:
        at: float | None = self._read(
            "SELECT min(ready_at) FROM actions WHERE federation_id = ? AND ready_at IS NOT NULL", (fid,)
        )[0][0]
        return at

    # ------------------------------------------------------------------ locations
    def _change_location(self, fid: str, job: str, kind: ActionKind, url: str, pid: str, fn: LocationChange) -> Location | None:
        with self._tx() as c:
            return self._change_location_in(c, fid, job, kind, url, pid, fn)

    def _change_location_in(
        self,
        c: sqlite3.Connection,
        fid: str,
        job: str,
        kind: ActionKind,
        url: str,
        pid: str,
        fn: LocationChange,
        *,
        check_federation: bool = True,
    ) -> Location | None:
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
            c.execute(INSERT_LOCATION, rules.location_doc(new))
        return new

    def _get_locations(self, fid: str, job_key: str | None) -> list[Location]:
        if job_key is None:
            rows = self._read("SELECT * FROM locations WHERE federation_id = ?", (fid,))
        else:
            rows = self._read("SELECT * FROM locations WHERE federation_id = ? AND job_key = ?", (fid, job_key))
        return [rules.location_from_doc(dict(r)) for r in rows]

    # ------------------------------------------------------------------ leases
    @staticmethod
    def _lease_row(c: sqlite3.Connection, name: str) -> Lease | None:
        return lease_from_row(name, c.execute("SELECT * FROM leases WHERE name = ?", (name,)).fetchone())

    def _lease_write(
        self, name: str, holder: str, ttl: float, now: float, allowed: Callable[[Lease | None], bool]
    ) -> Lease | None:
        with self._tx() as c:
            if not allowed(self._lease_row(c, name)):
                return None
            c.execute("INSERT OR REPLACE INTO leases VALUES (?, ?, ?)", (name, holder, now + ttl))
        return Lease(name, holder, utc(now + ttl))

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
        return lease if lease is not None and epoch(lease.expires_at) > now else None

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
        return Marks(**{str(name): int(version) for name, version in self._read("SELECT name, version FROM signals")})


def lease_free_for(current: Lease | None, holder: str, now: float) -> bool:
    """May ``holder`` take the lease? Free, expired, or its own."""
    return current is None or current.holder == holder or (epoch(current.expires_at) or 0.0) <= now
