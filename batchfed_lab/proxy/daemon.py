"""The proxy's loop: leader lease, event-driven dispatch to a bounded worker pool,
heartbeats. Lifecycle (detaching, discovery files) lives in :mod:`.lifecycle`.

Only the lease holder claims actions. The store hands out only the head action
of each target id and never two live claims on one target, so actions of one
job id are strictly FIFO while different job ids run concurrently on the
workers. A standby proxy tries to take the lease every renew period and takes
over once the leader's lease lapses (≤ lease + renew seconds).
"""

from __future__ import annotations

import itertools
import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from .._version import __version__
from ..errors import ClaimLostError, StoreError
from ..store.base import Store
from ..store.records import Claim, ProxyRecord
from .capacity import CapacityCache
from .moves import MoveWatch
from .processor import ActionProcessor, Counters, FollowOn, ProcessingOptions
from .recurrences import RecurrenceTasks
from .storage import StorageResolver

log = logging.getLogger("batchfed.proxy")

LEASE_NAME = "proxy-leader"
WATCH_COOLDOWN = 0.02  # seconds between two wake-ups from store changes while workers are busy


@dataclass(frozen=True)
class LoopOptions:
    workers: int = 8
    lease_ttl: float = 15.0
    lease_renew: float = 5.0
    federations_interval: float = 30.0
    heartbeat_interval: float = 2.0
    capacity_ttl: float = 2.0
    # "event": pick up new actions in milliseconds. "original": the original's cadence
    # (poll every actions interval, at most 32 actions per poll, one at a time) — a baseline.
    mode: str = "event"
    original_poll: float = 5.0
    original_batch: int = 32
    recurrences_interval: float = 5.0  # seconds between looks at the jobs of placed job schedules
    moves_interval: float = 5.0  # seconds between looks at placed jobs for re-placement (0: never)


class ProxyDaemon:
    def __init__(
        self,
        store: Store,
        account_for: Callable[[str], Any],
        processing: ProcessingOptions | None = None,
        loop: LoopOptions | None = None,
        *,
        proxy_id: str | None = None,
        info: dict[str, Any] | None = None,
        storage: StorageResolver | None = None,
    ):
        self.store = store
        self.processing = processing or ProcessingOptions()
        self.loop = loop or LoopOptions()
        self.proxy_id = proxy_id or f"{socket.gethostname()}-{os.getpid()}"
        self.info = dict(info or {})
        self.counters = Counters()
        self.capacity = CapacityCache(account_for, ttl=self.loop.capacity_ttl)
        self.stop_event = threading.Event()
        self.processor = ActionProcessor(
            store, self.capacity, account_for, self.processing, self.counters, stop=self.stop_event, storage=storage
        )
        self.recurrences = RecurrenceTasks(store, account_for, self.counters, storage=storage)
        self.moves = MoveWatch(store, self.processor, account_for)
        self.is_leader = threading.Event()
        self.started_at = datetime.now(timezone.utc)
        workers = 1 if self.loop.mode == "original" else self.loop.workers
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="batchfed-worker")
        self._slots = threading.Semaphore(workers)
        self._inflight: dict[str, Future[None]] = {}  # action id -> the worker running it
        self._inflight_lock = threading.Lock()
        self._federations: list[str] = []
        self._federations_at = 0.0
        self._threads: list[threading.Thread] = []
        self._wake = threading.Event()
        self._beat = threading.Event()  # heartbeat now: a control flag (suspend, stop) changed
        self._federations_changed = threading.Event()
        self._busy = False  # the last claim round ended because every worker was busy
        self._rotation = itertools.count()

    # ------------------------------------------------------------------ public
    @property
    def role(self) -> str:
        if self.stop_event.is_set():
            return "stopping"
        return "leader" if self.is_leader.is_set() else "standby"

    def run(self) -> None:
        """Run until :meth:`stop` (or SIGTERM via the lifecycle). Blocks."""
        self._start_background()
        try:
            if self.loop.mode == "original":
                self._original_loop()
            else:
                self._event_loop()
        finally:
            self._shutdown()

    def stop(self) -> None:
        self.stop_event.set()
        self._wake.set()
        self._beat.set()

    def run_once(self, federation_id: str | None = None) -> int:
        """Test hook: without lease or threads, process every action ready now, one at a
        time, until none is claimable. Returns how many claims were processed."""
        done = 0
        feds = [federation_id] if federation_id else [f.id for f in self.store.list_federations()]
        progress = True
        while progress:
            progress = False
            for fid in feds:
                claim = self.store.claim(fid, self.proxy_id, ttl=self.processing.claim_ttl)
                if claim is not None:
                    self.processor.process(claim)
                    done += 1
                    progress = True
        return done

    # ------------------------------------------------------------------ threads
    def _start_background(self) -> None:
        # a restarted incarnation (same id) takes back its lease at once and frees the claims
        # its dead predecessor held, instead of waiting for them to lapse
        self._try_lease()
        self._withdraw_stale_stop()
        loops = [(self._lease_loop, "lease"), (self._heartbeat_loop, "heartbeat"), (self._recurrence_loop, "recurrences")]
        if self.loop.moves_interval > 0:
            loops.append((self._moves_loop, "moves"))
        for target, name in loops:
            t = threading.Thread(target=target, name=f"batchfed-{name}", daemon=True)
            t.start()
            self._threads.append(t)

    def _release_predecessors_claims(self) -> None:
        """A new leader frees the claims of the proxies that led before it. Only the leader
        claims, so a claim held by another proxy (or by an earlier run under this id, when
        nothing is in flight here) belongs to one that lost the lease: dead, or cut off and
        refused at its next write (ClaimLostError). Every step is journalled and idempotent,
        so finishing its actions now is safe — otherwise their job ids would wait out the
        claim TTL (minutes) after a failover of seconds."""
        release = getattr(self.store, "release_claims", None)
        if release is None:
            return
        try:
            holders: set[str] = set()
            for fed in self.store.list_federations():
                holders.update(a.claimed_by for a in self.store.list_queued(fed.id) if a.claimed_by)
            if self._inflight:
                holders.discard(self.proxy_id)
            freed = sum(release(h) for h in sorted(holders))
            if freed:
                log.info("freed %d claim(s) held by earlier leaders (%s)", freed, ", ".join(sorted(holders)))
        except StoreError as exc:
            log.warning("could not free earlier leaders' claims: %s", exc)

    def _try_lease(self) -> None:
        was = self.is_leader.is_set()
        try:
            if was:
                self.store.renew_lease(LEASE_NAME, self.proxy_id, ttl=self.loop.lease_ttl)
                return
            lease = self.store.acquire_lease(LEASE_NAME, self.proxy_id, ttl=self.loop.lease_ttl)
        except ClaimLostError:
            lease = None
        except StoreError as exc:
            # cannot tell: stop claiming now; the lease lapses on its own if we cannot renew
            log.warning("lease check failed: %s", exc)
            lease = None
        if lease is not None:
            if not was:
                log.info("%s is the leader", self.proxy_id)
                self.processor.known_jobs.clear()  # another leader may have changed jobs meanwhile
                if self.processor.gate is not None:  # accounting: usage and spend as the last leader left them
                    self.processor.gate.lead(self.store)
                self._release_predecessors_claims()
            self.is_leader.set()
        else:
            if was:
                log.warning("%s lost the leader lease; standing by", self.proxy_id)
            self.is_leader.clear()

    def _lease_loop(self) -> None:
        while not self.stop_event.wait(self.loop.lease_renew):
            self._try_lease()

    def _recurrence_loop(self) -> None:
        """The leader adds each recurrence's task group to the jobs its schedules create, and
        (with accounting) settles a few placed jobs at what they really ran."""
        while not self.stop_event.wait(self.loop.recurrences_interval):
            if self.is_leader.is_set() and not self._suspended():
                try:
                    self.recurrences.step(list(self._federations))
                except Exception:  # keep the loop alive; the next look tries again
                    log.exception("adding recurrence tasks failed")
            if self.is_leader.is_set() and self.processor.gate is not None:
                try:
                    self.processor.gate.reconcile()
                except Exception:  # the next step asks again
                    log.exception("reconciling accounting with Batch failed")

    def _moves_loop(self) -> None:
        """The leader watches what it placed and queues moves (:mod:`.moves`)."""
        while not self.stop_event.wait(self.loop.moves_interval):
            if self.is_leader.is_set() and not self._suspended():
                try:
                    self.moves.step(list(self._federations))
                except Exception:  # keep the loop alive; the next look tries again
                    log.exception("watching placed jobs failed")

    def _heartbeat_loop(self) -> None:
        while not self.stop_event.is_set():
            self._heartbeat()
            self._obey_stop_request()
            self._beat.wait(self.loop.heartbeat_interval)
            self._beat.clear()

    def _withdraw_stale_stop(self) -> None:
        """A stop request left for an earlier process under this id is not for this one."""
        try:
            if self.store.stop_requested(self.proxy_id):
                self.store.clear_stop(self.proxy_id)
        except StoreError as exc:
            log.warning("reading stop requests failed: %s", exc)

    def _obey_stop_request(self) -> None:
        """Stop cleanly when someone asked through the store (``proxy stop`` from a machine
        that cannot signal this process); the record removed at shutdown acknowledges it."""
        try:
            if not self.store.stop_requested(self.proxy_id):
                return
            self.store.clear_stop(self.proxy_id)
        except StoreError as exc:
            log.warning("reading stop requests failed: %s", exc)
            return
        log.info("%s stopping: a stop was requested through the store", self.proxy_id)
        self.stop()

    def _heartbeat(self) -> None:
        if self.processor.gate is not None and self.is_leader.is_set():
            self.processor.gate.publish()  # usage of running jobs grows with time: publish it as of now
        try:
            self.store.heartbeat(
                ProxyRecord(
                    proxy_id=self.proxy_id,
                    pid=os.getpid(),
                    host=socket.gethostname(),
                    version=__version__,
                    role=self.role,
                    counters=self.counters.as_dict(),
                    info={
                        **self.info,
                        "federations": list(self._federations),
                        "suspended": self._suspended(),
                        "inflight": len(self._inflight),
                        "mode": self.loop.mode,
                        "lease_s": self.loop.lease_ttl,  # readers elsewhere judge staleness by it
                        "blackouts": self.capacity.active_blackouts(time.time()),
                    },
                    started_at=self.started_at,
                )
            )
        except StoreError as exc:
            log.warning("heartbeat failed: %s", exc)

    def _suspended(self) -> bool:
        try:
            return self.store.is_suspended()
        except StoreError:
            return False

    # ------------------------------------------------------------------ dispatch
    def _watched(self, force: bool = False) -> list[str]:
        now = time.monotonic()
        if force or now - self._federations_at >= self.loop.federations_interval or not self._federations_at:
            before = set(self._federations)
            try:
                self._federations = [f.id for f in self.store.list_federations()]
            except StoreError as exc:  # the store is away: keep watching what we knew, ask again next round
                log.warning("listing federations failed: %s", exc)
                return self._federations
            self.processor.forget_federations()
            self._federations_at = now
            gone = before - set(self._federations)
            if gone:
                log.info("no longer watching deleted federation(s): %s", ", ".join(sorted(gone)))
        return self._federations

    def _dispatch(self, claim: Claim) -> None:
        """Run ``claim`` on a worker, which then claims and runs the next ready action itself
        until none is left. Handing every freed slot back to the dispatcher thread instead
        made that one thread the bottleneck: under load it waits for the GIL at each of its
        store calls, and workers sat idle with ready actions queued."""
        chain: list[Future[None]] = []

        def work() -> None:
            current: Claim | None = claim
            try:
                while current is not None:
                    turn = next(self._rotation)  # one turn of the federation rotation per action
                    follow = self._follow_on(current, turn)
                    try:
                        self.processor.process(current, follow=follow)
                    finally:
                        with self._inflight_lock:
                            self._inflight.pop(current.action_id, None)
                    current = self._followed(follow, turn) if follow is not None and follow.asked else self._claim_next(turn)
                    if current is not None:
                        with self._inflight_lock:
                            self._inflight[current.action_id] = chain[0]
            finally:
                self._slots.release()
                self._wake.set()  # a free worker: the dispatcher looks again

        with self._inflight_lock:  # held until chain[0] is set: work() reads it under this lock
            future = self._executor.submit(work)
            chain.append(future)
            self._inflight[claim.action_id] = future

    def _may_claim(self) -> bool:
        return self.loop.mode != "original" and not self.stop_event.is_set() and self.is_leader.is_set()

    def _follow_on(self, claim: Claim, turn: int) -> FollowOn | None:
        """Let a placement of ``claim`` claim the worker's next action in the same store
        write, when its federation is the one this ``turn`` of the rotation would claim from
        first (so the order is the one :meth:`_claim_next` gives; with one federation,
        always): it leads the turn's order, or — where that write is one transaction — every
        federation ahead of it has nothing ready now. Without the second case, one idle
        federation beside a busy one took the merged write from half the placements."""
        if not self._may_claim():
            return None
        order = self._turn_order(turn)
        if claim.federation_id not in order:
            return None
        ahead = order[: order.index(claim.federation_id)]
        if ahead and not (self.store.claims_with_placement and not self._any_ready(ahead)):
            return None
        return FollowOn(self.proxy_id, self.processing.claim_ttl)

    def _turn_order(self, turn: int) -> list[str]:
        """The watched federations in the order this turn of the rotation looks at them."""
        feds = list(self._federations)
        start = turn % len(feds) if feds else 0
        return feds[start:] + feds[:start]

    def _any_ready(self, federations: list[str]) -> bool:
        """Whether any of ``federations`` has a head claimable now (a read; errors say yes,
        so the worker claims the usual way and reports them there)."""
        now = self.store.now()
        for fid in federations:
            try:
                at = self.store.next_ready_at(fid)
            except StoreError:
                return True
            if at is not None and at.timestamp() <= now:
                return True
        return False

    def _followed(self, follow: FollowOn, turn: int) -> Claim | None:
        """The claim a placement took for this worker; if the proxy stopped or lost the lease
        meanwhile, it is given back unprocessed (its attempt stays counted). Nothing ready
        there: the other federations, in this turn's order."""
        if follow.claim is None:
            return self._claim_next(turn)
        if self._may_claim():
            return follow.claim
        try:
            self.store.release(follow.claim)
        except StoreError as exc:  # it lapses by itself after the claim ttl
            log.warning("giving back claim of action %s failed: %s", follow.claim.action_id, exc)
        return None

    def _claim_next(self, turn: int) -> Claim | None:
        """A worker's next action: the readiest head of any watched federation (each turn
        starts at another federation, so none is favoured), or None."""
        if not self._may_claim():
            return None
        for fid in self._turn_order(turn):
            try:
                claim = self.store.claim(fid, self.proxy_id, ttl=self.processing.claim_ttl)
            except StoreError as exc:
                log.warning("claim in %s failed: %s", fid, exc)
                return None
            if claim is not None:
                return claim
        return None

    def _claim_round(self, limit: int | None = None) -> int:
        """Claim and dispatch until the workers are busy or nothing is ready; ``self._busy``
        tells which of the two ended the round. The free workers' claims are asked for at
        once (:meth:`Store.claim_many`: one store write where the backend can), so a burst of
        actions does not wait for a round trip per worker before the last one starts."""
        dispatched = 0
        self._busy = False
        for fid in self._watched():
            while not self.stop_event.is_set() and self.is_leader.is_set():
                room = None if limit is None else limit - dispatched
                if room == 0:
                    return dispatched
                slots = self._take_slots(room)
                if not slots:
                    self._busy = True
                    return dispatched
                try:
                    claims = self.store.claim_many(fid, self.proxy_id, slots, ttl=self.processing.claim_ttl)
                except StoreError as exc:
                    claims = []
                    log.warning("claim in %s failed: %s", fid, exc)
                for _ in range(slots - len(claims)):
                    self._slots.release()
                for claim in claims:
                    self._dispatch(claim)
                dispatched += len(claims)
                if len(claims) < slots:
                    break  # nothing more ready here (or the store is away): the next federation
        return dispatched

    def _take_slots(self, room: int | None) -> int:
        """Take as many free worker slots as there are (at most ``room``)."""
        taken = 0
        while (room is None or taken < room) and self._slots.acquire(blocking=False):
            taken += 1
        return taken

    def _next_wake(self) -> float:
        """Seconds until the earliest blocked/backed-off head becomes claimable (≤ 1 s)."""
        soonest = 1.0
        now = time.time()
        for fid in self._federations:
            try:
                at = self.store.next_ready_at(fid)
            except StoreError:
                continue
            if at is not None:
                soonest = min(soonest, max(0.0, at.timestamp() - now))
        return soonest

    def _watch_store(self) -> None:
        """Turn store changes (new actions, membership, flags) into a wake-up of the
        dispatcher; workers finishing wake it too (see :meth:`_dispatch`)."""
        marks = self.store.change_marks()
        while not self.stop_event.is_set():
            try:
                fresh = self.store.wait_for_change(marks, timeout=0.5)
            except StoreError as exc:
                log.warning("watching the store failed: %s", exc)
                self.stop_event.wait(1.0)
                continue
            if fresh != marks:
                if fresh.federations != marks.federations:
                    self._federations_changed.set()
                if fresh.control != marks.control:
                    self._beat.set()  # acknowledge a suspend/resume, obey a stop, without waiting a beat
                marks = fresh
                self._wake.set()
                if self._inflight:
                    # coalesce while workers are busy: this proxy's own writes then move the marks
                    # hundreds of times a second, and busy workers claim new actions themselves
                    # (see _dispatch); an idle proxy reacts at once
                    self.stop_event.wait(WATCH_COOLDOWN)

    def _event_loop(self) -> None:
        watcher = threading.Thread(target=self._watch_store, name="batchfed-watch", daemon=True)
        watcher.start()
        self._threads.append(watcher)
        self._watched(force=True)
        while not self.stop_event.is_set():
            if not self.is_leader.is_set():
                self._wake.wait(0.2)
                self._wake.clear()
                continue
            # clear first: a change or a finished worker after this point wakes the next wait
            self._wake.clear()
            if self._federations_changed.is_set():
                # a federation or pool membership changed through a client: see it at once
                self._federations_changed.clear()
                self.processor.forget_federations()
                self._watched(force=True)
            if self._claim_round() == 0 and not self._busy and self._suspended():
                self._wake.wait(0.2)  # suspended: claims hand out nothing, however ready the heads
            elif self._busy:
                self._wake.wait(1.0)  # every worker is busy: the next to finish wakes us
            else:
                self._wake.wait(self._next_wake())

    def _original_loop(self) -> None:
        """The original's cadence, for benchmarks: poll, take ≤ 32, process one at a time."""
        while not self.stop_event.is_set():
            if self.is_leader.is_set() and not self._suspended():
                for _ in range(self.loop.original_batch):
                    if self._claim_round(limit=1) == 0:
                        break
                    self._drain(timeout=None)
            self.stop_event.wait(self.loop.original_poll)

    def _drain(self, timeout: float | None) -> None:
        with self._inflight_lock:
            futures = list(self._inflight.values())
        for f in futures:
            try:
                f.result(timeout=timeout)
            except Exception:
                pass

    def _shutdown(self) -> None:
        self.stop_event.set()
        # finish what is in flight (bounded): its claims stay valid, so nothing is duplicated
        self._drain(timeout=30)
        self._executor.shutdown(wait=False, cancel_futures=True)
        for t in self._threads:
            t.join(timeout=5)
        try:
            if self.is_leader.is_set():
                self.store.release_lease(LEASE_NAME, self.proxy_id)
            self.store.remove_proxy(self.proxy_id)
        except StoreError as exc:
            log.warning("shutdown clean-up failed: %s", exc)
        self.is_leader.clear()
        log.info("proxy %s stopped", self.proxy_id)
