"""Pool capacity as the proxy sees it: snapshots per account, cached briefly.

One refresh of an account costs one pool listing and one account-level
node-count call (plus the active-job listing when a job asks for a backlog
ratio) whatever the number of its pools and actions — never one call per pool
per action. A placement marks its account stale so the next decision sees the
new load; concurrent decisions share one refresh per account (single flight).
Blackouts after a placement live here too: they are this proxy's memory.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace

from ..errors import BatchUnreachableError
from ..scheduler.types import PoolFacts, PoolSnapshot, pool_key, url_key
from ..store.records import PoolMember

AccountFactory = Callable[[str], "object"]  # service url -> BatchAccount-like


@dataclass
class _Entry:
    fetched_at: float = 0.0
    with_active: bool = False
    pools: dict[str, PoolSnapshot] | None = None  # lower-cased pool id -> snapshot
    stale: bool = True
    refreshing: threading.Event | None = None
    error: BaseException | None = None


def missing_snapshot(member: PoolMember) -> PoolSnapshot:
    """A member the Batch service does not know (deleted outside the federation)."""
    facts = PoolFacts(
        pool_id=member.pool_id,
        service_url=member.batch_service_url,
        account=member.account or "",
        location=member.location or "",
        vm_size="unknown",
        size=None,
    )
    return PoolSnapshot(facts, state="missing")


class CapacityCache:
    def __init__(self, account_for: AccountFactory, *, ttl: float = 2.0, clock: Callable[[], float] = time.monotonic):
        self._account_for = account_for
        self.ttl = ttl
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: dict[str, _Entry] = {}
        self._blackout: dict[str, float] = {}  # pool key -> epoch seconds
        self._rows_memo: dict[int, tuple[tuple[PoolMember, ...], tuple[tuple[str, ...], list[tuple[str, str, PoolMember]]]]] = {}
        self.refreshes = 0
        self._executor = ThreadPoolExecutor(max_workers=8, thread_name_prefix="batchfed-capacity")

    def close(self) -> None:
        """Stop the account-refresh threads and wait for them: an idle pool thread would
        otherwise outlive the cache until the garbage collector wakes it."""
        self._executor.shutdown(wait=True)

    def __enter__(self) -> CapacityCache:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- blackout --------------------------------------------------------------------
    def black_out(self, key: str, until: float) -> None:
        with self._lock:
            self._blackout[key] = until

    def lift_blackout(self, key: str) -> None:
        with self._lock:
            self._blackout.pop(key, None)

    def blackout_until(self, key: str) -> float | None:
        return self._blackout.get(key)

    def active_blackouts(self, now: float) -> dict[str, float]:
        """Pool key → epoch seconds, for blackouts not over yet (expired ones are dropped)."""
        with self._lock:
            for key in [k for k, until in self._blackout.items() if until <= now]:
                del self._blackout[key]
            return dict(self._blackout)

    # -- invalidation ----------------------------------------------------------------
    def invalidate(self, service_url: str | None = None) -> None:
        with self._lock:
            targets = self._entries.values() if service_url is None else [self._entries.get(url_key(service_url))]
            for e in targets:
                if e is not None:
                    e.stale = True

    def record_placement(self, service_url: str, pool_id: str, slots: int, kind: str | None) -> None:
        """Account for a placement in the cached snapshot at once (nodes it will occupy move
        from idle to running, tasks beyond the free slots count as active), so the next
        decisions see the load without a round trip; the next refresh replaces the guess
        with the service's numbers."""
        with self._lock:
            e = self._entries.get(url_key(service_url))
            if e is None or e.pools is None:
                return
            snap = e.pools.get(pool_id.lower())
            if snap is None:
                return
            per = max(1, snap.facts.task_slots_per_node)
            field_name = "low_priority" if kind == "low_priority" else "dedicated"
            nodes = getattr(snap, field_name)
            free = snap.slots("low_priority" if kind == "low_priority" else "dedicated")
            busy = min(nodes.idle, -(-slots // per))
            updated = replace(nodes, idle=nodes.idle - busy, running=nodes.running + busy)
            active = snap.active_tasks
            if active is not None and slots > free:
                active += slots - free
            e.pools[pool_id.lower()] = replace(snap, **{field_name: updated, "active_tasks": active})

    # -- reads -----------------------------------------------------------------------
    def snapshots(self, members: Sequence[PoolMember], *, active_tasks: bool = False) -> list[PoolSnapshot]:
        """Snapshots of ``members`` in member order; unknown pools come back as 'missing'."""
        accounts, rows = self._rows(members)
        table: dict[str, dict[str, PoolSnapshot] | _Unreachable] = {
            url: pools for url in accounts if (pools := self._fresh(url, active_tasks)) is not None
        }
        stale = [url for url in accounts if url not in table]
        if len(stale) > 1:
            # refresh several accounts at once: with a remote service each costs round trips
            results = list(self._executor.map(lambda url: self._reachable_pools(url, active_tasks), stale))
            table.update(zip(stale, results))
        elif stale:
            table[stale[0]] = self._reachable_pools(stale[0], active_tasks)
        out = []
        blackout = self._blackout
        for url, pid, m in rows:
            listed = table[url]
            if isinstance(listed, _Unreachable):
                out.append(listed.snapshot(m, blackout.get(pool_key(m.batch_service_url, m.pool_id))))
                continue
            snap = listed.get(pid)
            snap = missing_snapshot(m) if snap is None else _as_member(snap, m)
            if blackout and (until := blackout.get(snap.key)) is not None:
                snap = replace(snap, blackout_until=until)
            out.append(snap)
        return out

    def _rows(self, members: Sequence[PoolMember]) -> tuple[tuple[str, ...], list[tuple[str, str, PoolMember]]]:
        """The accounts of ``members`` and, per member, its account key and lower-cased pool
        id. Kept per member tuple (the processor keeps one per federation, and every decision
        asks for it); a list may change after the call, so it is worked out each time."""
        if isinstance(members, tuple):
            hit = self._rows_memo.get(id(members))
            if hit is not None and hit[0] is members:  # the tuple held here keeps its id unique
                return hit[1]
        rows = [(url_key(m.batch_service_url), m.pool_id.lower(), m) for m in members]
        found = (tuple(dict.fromkeys(url for url, _, _ in rows)), rows)
        if isinstance(members, tuple):
            with self._lock:
                if len(self._rows_memo) >= 64:  # federations come and go: keep the recent ones
                    self._rows_memo.clear()
                self._rows_memo[id(members)] = (members, found)
        return found

    def _is_fresh(self, e: _Entry, active_tasks: bool) -> bool:
        return (
            e.pools is not None
            and not e.stale
            and self._clock() - e.fetched_at < self.ttl
            and (e.with_active or not active_tasks)
        )

    def _fresh(self, url: str, active_tasks: bool) -> dict[str, PoolSnapshot] | None:
        with self._lock:
            e = self._entries.get(url)
            return e.pools if e is not None and self._is_fresh(e, active_tasks) else None

    def _reachable_pools(self, url: str, active_tasks: bool) -> dict[str, PoolSnapshot] | _Unreachable:
        """The account's pools; when its service does not answer, its pools as last seen, marked
        unreachable: the other accounts of a federation stay usable meanwhile."""
        try:
            return self._account_pools(url, active_tasks)
        except BatchUnreachableError as exc:
            with self._lock:
                e = self._entries.get(url)
                last = dict(e.pools) if e is not None and e.pools else {}
            return _Unreachable(last, str(exc))

    def _account_pools(self, url: str, active_tasks: bool) -> dict[str, PoolSnapshot]:
        while True:
            with self._lock:
                e = self._entries.setdefault(url, _Entry())
                if self._is_fresh(e, active_tasks):
                    return e.pools  # type: ignore[return-value]  # a fresh entry always has its pools
                if e.refreshing is None:
                    e.refreshing = threading.Event()
                    leader = True
                    done = e.refreshing
                else:
                    leader = False
                    done = e.refreshing
            if not leader:
                done.wait(timeout=60)
                with self._lock:
                    if e.error is not None and e.pools is None:
                        raise e.error
                    if e.pools is not None and (e.with_active or not active_tasks):
                        return e.pools
                continue
            try:
                account = self._account_for(url)
                # every pool of the account: one cache entry serves all federations on it
                snaps = account.snapshot_pools(None, active_tasks=active_tasks)  # type: ignore[attr-defined]  # a BatchAccount; typed loosely so tests can pass fakes
                pools = {pid.lower(): s for pid, s in snaps.items()}
                with self._lock:
                    e.pools, e.fetched_at, e.with_active, e.stale, e.error = pools, self._clock(), active_tasks, False, None
                    self.refreshes += 1
                return pools
            except BaseException as exc:
                with self._lock:
                    e.error = exc
                raise
            finally:
                with self._lock:
                    e.refreshing = None
                done.set()


@dataclass
class _Unreachable:
    """An account whose service did not answer: its pools as last seen (if ever), unusable now."""

    last: dict[str, PoolSnapshot]
    error: str

    def snapshot(self, member: PoolMember, blackout_until: float | None) -> PoolSnapshot:
        snap = self.last.get(member.pool_id.lower())
        snap = missing_snapshot(member) if snap is None else _as_member(snap, member)
        return replace(snap, state="unreachable", blackout_until=blackout_until)


def _as_member(snap: PoolSnapshot, member: PoolMember) -> PoolSnapshot:
    """The location the federation recorded wins over the service's guess."""
    if member.location and snap.facts.location != member.location.lower():
        return replace(snap, facts=replace(snap.facts, location=member.location))
    return snap


def member_key(m: PoolMember) -> str:
    return pool_key(m.batch_service_url, m.pool_id)


def live_snapshots(
    members: Sequence[PoolMember], account_for: AccountFactory, *, active_tasks: bool = True
) -> list[PoolSnapshot]:
    """One uncached read of the members' capacity (a few calls per account, whatever the
    number of pools): what a client shows, as the proxy would see it now."""
    with CapacityCache(account_for, ttl=0) as cache:
        return cache.snapshots(members, active_tasks=active_tasks)
