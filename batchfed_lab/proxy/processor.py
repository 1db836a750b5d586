"""Carry out one claimed action: add a job or job schedule, or terminate/delete one.

Crash safety comes from the claim's progress journal. Each step is recorded
before the next one depends on it, and each Batch call is idempotent:

1. decide → record the chosen pool (the *intent*); a retry goes back there;
2. create the job if absent (``JobExists`` → merge only when compatible,
   otherwise exclude the pool and decide again);
3. record how generated task ids will be numbered (so a retry renumbers the
   same way) and which explicit ids collide with tasks already in the job;
4. record the location **before** adding tasks, so nothing is orphaned;
5. add the tasks (``TaskExists`` counts as success: a retry re-adds safely);
6. record the unique id on the location, then mark the action placed.

Steps 2–6 live in :mod:`.placement`; this module decides, handles each outcome
(placed, blocked, failed, retried) and carries out terminate and delete.

Killing the proxy between any two steps therefore neither loses the action
(the claim lapses and the next leader re-claims it) nor duplicates a job or
a task (deterministic ids, create-if-absent).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..config.jobs import TaskDefinition
from ..errors import (
    BatchError,
    BatchfedError,
    BatchUnreachableError,
    ClaimLostError,
    ConfigError,
    NotFoundError,
    SchedulingError,
    StoreError,
    StoreUnavailableError,
)
from ..scheduler import decide_placement, job_homes
from ..scheduler.types import Decision, PoolSnapshot
from ..store.base import Store
from ..store.records import Action, ActionKind, ActionMethod, Claim, Federation, Location, LocationUpdate, PoolMember
from .capacity import CapacityCache
from .known_jobs import KnownJobs
from .move_prep import batch_job_id_for, exclusions_for, move_number, move_record, prepare_move, requirements_of
from .payload import AddPayload, parse_add, parse_remove
from .placement import Excluded, JobPlacement, Target, place_schedule
from .storage import StorageResolver

log = logging.getLogger("batchfed.proxy")


@dataclass(frozen=True)
class ProcessingOptions:
    blackout_interval: float = 15.0
    evaluate_autoscale: bool = True
    policy: str = "largest-fit"
    actions_interval: float = 5.0  # the longest backoff of a blocked or erroring action
    max_attempts: int = 5  # unexpected errors tolerated per action before it fails
    claim_ttl: float = 120.0
    task_add_concurrency: int = 1


class Counters:
    """Thread-safe outcome counters shown by ``proxy status``."""

    OUTCOMES = ("placed", "done", "blocked", "failed", "retry", "lost", "gone", "task_add_failures", "moves")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._c: Counter[str] = Counter(dict.fromkeys(self.OUTCOMES, 0))

    def add(self, name: str, n: int = 1) -> None:
        with self._lock:
            self._c[name] += n

    def as_dict(self) -> dict[str, int]:
        with self._lock:
            return dict(self._c)


@dataclass
class FollowOn:
    """A worker's request to claim its next action in the same store write as a placement
    (:meth:`Store.mark_placed_and_claim`). After :meth:`ActionProcessor.process`, ``asked``
    tells whether a placement did ask, and ``claim`` holds what it got (None: nothing ready)."""

    worker: str
    ttl: float
    asked: bool = False
    claim: Claim | None = None


def verdict_dicts(decision: Decision) -> list[dict[str, Any]]:
    return [
        {
            "pool": v.pool,
            "pool_id": v.pool_id,
            "status": v.status,
            "constraint": v.constraint,
            "required": v.required,
            "actual": v.actual,
            "reason": v.reason,
        }
        for v in decision.verdicts
    ]


class ActionProcessor:
    def __init__(
        self,
        store: Store,
        capacity: CapacityCache,
        account_for: Callable[[str], Any],
        options: ProcessingOptions,
        counters: Counters | None = None,
        clock: Callable[[], float] = time.time,
        stop: threading.Event | None = None,
        storage: StorageResolver | None = None,
    ):
        self.store = store
        self.storage = storage  # the storage accounts of input_data / output_data (None: none)
        self.stop = stop or threading.Event()  # set when the proxy stops: no more waiting
        self.capacity = capacity
        self.account_for = account_for
        self.options = options
        self.counters = counters or Counters()
        self.clock = clock
        # federation records and pool members change rarely; the daemon calls
        # forget_federations() when the store says they changed
        self._fed_cache: dict[str, tuple[Federation, tuple[PoolMember, ...]]] = {}
        self._fed_lock = threading.Lock()
        self._decide_lock = threading.Lock()
        self.known_jobs = KnownJobs()
        self.gate: Any = None  # quotas, budgets and usage charges (batchfed_lab.accounting), if installed

    def forget_federations(self) -> None:
        with self._fed_lock:
            self._fed_cache.clear()

    def _federation(self, fid: str) -> tuple[Federation, tuple[PoolMember, ...]]:
        with self._fed_lock:
            hit = self._fed_cache.get(fid)
        if hit is None:
            # a tuple: the capacity cache keeps what it derives from the members per tuple
            hit = (self.store.get_federation(fid), tuple(self.store.list_pools(fid)))
            with self._fed_lock:
                self._fed_cache[fid] = hit
        return hit

    # ------------------------------------------------------------------ entry point
    def process(self, claim: Claim, *, follow: FollowOn | None = None) -> str:
        """Handle one claim to a terminal or retry state; returns the outcome name. With
        ``follow``, a placement also claims the worker's next action (see :class:`FollowOn`)."""
        a = claim.action
        try:
            if a.method is ActionMethod.ADD:
                outcome = self._add(claim, follow)
            else:
                outcome = self._remove(claim)
        except ClaimLostError as exc:
            # zapped, or the claim lapsed and another worker has it: leave it alone
            log.warning("action %s (%s %s %s): claim lost: %s", a.id, a.method, a.kind, a.target_id, exc)
            outcome = "lost"
        except (ConfigError, SchedulingError) as exc:
            # the payload can never work (unknown version, invalid job, id too long): say why, stop
            outcome = self._fail(claim, str(exc))
        except BatchError as exc:
            if exc.status == 400:
                # the service refused the request itself (invalid property): retrying cannot help
                outcome = self._fail(claim, str(exc))
            elif isinstance(exc, BatchUnreachableError):
                # nobody answers at that URL (restarting, network): not this action's fault
                outcome = self._unreachable(claim, exc)
            else:
                outcome = self._error(claim, exc)
        except NotFoundError as exc:
            # the federation was destroyed under us: its actions went with it
            log.info("action %s: %s", a.id, exc)
            outcome = "gone"
        except StoreUnavailableError as exc:
            # the store is away, not the action at fault: no error counted against it
            outcome = self._store_away(claim, exc)
        except Exception as exc:
            outcome = self._error(claim, exc)
        self.counters.add(outcome)
        return outcome

    def _fail(self, claim: Claim, error: str) -> str:
        log.error(
            "action %s (%s %s %s) failed: %s",
            claim.action_id,
            claim.action.method,
            claim.action.kind,
            claim.action.target_id,
            error,
        )
        try:
            self.store.mark_failed(claim, error)
        except ClaimLostError:
            return "lost"
        return "failed"

    def _error(self, claim: Claim, exc: BaseException) -> str:
        a = claim.action
        text = f"{type(exc).__name__}: {exc}" if not isinstance(exc, BatchfedError) else str(exc)
        errors = a.errors + 1
        if errors >= self.options.max_attempts:
            return self._fail(claim, f"gave up after {errors} errors; last: {text}")
        retry = min(self.options.actions_interval, 0.5 * 2 ** (errors - 1))
        log.warning("action %s: error %d of %d, retry in %.1fs: %s", a.id, errors, self.options.max_attempts, retry, text)
        try:
            self.store.release(claim, retry_in=retry, error=text)
        except ClaimLostError:
            return "lost"
        return "retry"

    def _unreachable(self, claim: Claim, exc: BatchError) -> str:
        """The Batch service did not answer. The action is *blocked* with that reason (visible in
        ``jobs list --blocked``) and retried with back-off, without an error counted against it:
        a service restarting or a network blip must not fail actions. Its journal is kept, so
        the retry goes back to the pool it chose (the job may exist there already)."""
        a = claim.action
        log.warning("action %s (%s %s %s) blocked: %s", a.id, a.method, a.kind, a.target_id, exc)
        try:
            self.store.mark_blocked(claim, f"Batch service unreachable: {exc}", retry_in=self._block_retry(a))
        except ClaimLostError:
            return "lost"
        return "blocked"

    def _store_away(self, claim: Claim, exc: BaseException) -> str:
        """Give the claim back once the store answers again (the journal keeps what was done),
        so the action is retried at once instead of after the claim lapses; give up waiting
        when the claim would have lapsed anyway or the proxy stops."""
        log.warning("action %s: store unavailable, holding the action until it answers: %s", claim.action_id, exc)
        deadline = claim.deadline.timestamp() if claim.deadline else self.clock() + self.options.claim_ttl
        pause = 0.5
        while self.clock() < deadline and not self.stop.is_set():
            try:
                self.store.release(claim, retry_in=0.0)
                return "retry"
            except ClaimLostError:
                return "lost"
            except StoreError:
                self.stop.wait(pause)
                pause = min(pause * 2, 5.0)
        return "lost"

    def _block_retry(self, a: Action) -> float:
        return min(self.options.actions_interval, 0.1 * 2 ** min(max(a.attempts - 1, 0), 10))

    # ------------------------------------------------------------------ add
    def _decide(
        self,
        claim: Claim,
        payload: AddPayload,
        excluded: set[str],
        homes: dict[str, str],
        tasks: list[TaskDefinition] | None = None,
    ) -> tuple[Decision, PoolSnapshot | None]:
        """The decision, and the snapshot of the pool it chose (None when blocked). The rules
        are those ``explain`` applies (:func:`~batchfed_lab.scheduler.decide_placement`);
        ``tasks``: a move's, which it needs room for (not the whole group's)."""
        a = claim.action
        req = requirements_of(payload, tasks, self.data_regions(payload.job.input_accounts))
        fed, members = self._federation(a.federation_id)
        snaps = self.capacity.snapshots(members, active_tasks=req.backlog_ratio is not None)
        decision = decide_placement(
            req,
            snaps,
            self.clock(),
            self.options.policy,
            job_id=a.target_id,
            homes=homes,
            unique_job_ids=fed.unique_job_ids,
            failed=excluded,
            extra=exclusions_for(a.payload, snaps, a.target_id),
        )
        chosen = None if decision.pool is None else next(s for s in snaps if s.facts.key == decision.pool)
        return decision, chosen

    def data_regions(self, accounts: frozenset[str]) -> dict[str, str | None] | None:
        """Where a job's inputs live (storage account → region), for data-locality placement."""
        if not accounts:
            return None
        return self.storage.regions(accounts) if self.storage is not None else dict.fromkeys(accounts)

    def dry_decision(self, federation_id: str, payload: Any) -> Decision:
        """Where a move (its payload) would go now, nothing held: whether it can go anywhere."""
        add = parse_add(payload, "a move")
        req = requirements_of(add, None, self.data_regions(add.job.input_accounts))
        _, members = self._federation(federation_id)
        snaps = self.capacity.snapshots(members, active_tasks=req.backlog_ratio is not None)
        extra = exclusions_for(payload, snaps, add.job.id)
        return decide_placement(
            req, snaps, self.clock(), self.options.policy, job_id=add.job.id, homes={}, unique_job_ids=True, extra=extra
        )

    def _job_locations(self, a: Action) -> list[Location]:
        """Where the store locates this job id. Read once per add: the exclusions of a decision
        and the job create both need it, and only this action's worker places its target
        meanwhile (FIFO per target)."""
        if a.kind is not ActionKind.JOB:
            return []
        return self.store.get_locations(a.federation_id, a.target_id, kind=ActionKind.JOB)

    def _job_homes(self, a: Action, locations: list[Location] | None = None) -> dict[str, str]:
        """Account URL (normalised) → the pool id the job lives on there; a live location wins
        over a terminated one (a move within the account left that)."""
        found = self._job_locations(a) if locations is None else locations
        return job_homes((loc.batch_service_url, loc.pool_id) for loc in sorted(found, key=_live_last))

    def _add(self, claim: Claim, follow: FollowOn | None = None) -> str:
        a = claim.action
        payload = parse_add(a.payload, f"action {a.id}")
        _check_target(a, payload)
        fed, _ = self._federation(a.federation_id)
        moving = None
        if move_record(a.payload) is not None:  # a move: leave the old pool first (journaled)
            claim, moving = prepare_move(self, claim, payload)
            if not moving:
                self.store.mark_placed(claim, progress={"note": "every task had finished: nothing left to move"})
                return "placed"
        progress: dict[str, Any] = dict(claim.action.progress)
        excluded = set(progress.get("excluded") or ())
        locations = self._job_locations(a)
        homes = self._job_homes(a, locations)
        intent: dict[str, Any] | None
        target: Target | None
        while True:
            recorded = progress.get("pool")
            if recorded:
                target = Target.from_record(recorded)
                intent = None  # a retry: the journal has the pool already
            else:
                # a move is free of the accounts it left: there it runs under a derived Batch job id
                decided_homes = homes if moving is None else {}
                decision, target = self._decide_and_hold(claim, payload, excluded, decided_homes, moving)
                if target is None:
                    return self._blocked(claim, decision, excluded)
                progress["pool"] = record = target.record()
                intent = {"pool": record}
            if a.kind is ActionKind.JOB_SCHEDULE:
                if intent is not None:
                    claim = self.journal(claim, intent)
                outcome = place_schedule(self, claim, payload, target, follow)
            else:
                batch_id = batch_job_id_for(a.target_id, target, locations, move_number(a.payload))
                placement = JobPlacement(self, claim, payload, target, intent, tasks=moving, batch_job_id=batch_id)
                outcome = placement.run(progress, homes, fed.unique_job_ids, follow)
            if not isinstance(outcome, Excluded):
                return outcome
            claim = self._exclude(claim, target, outcome, excluded, progress)

    def _decide_and_hold(
        self,
        claim: Claim,
        payload: AddPayload,
        excluded: set[str],
        homes: dict[str, str],
        tasks: list[TaskDefinition] | None = None,
    ) -> tuple[Decision, Target | None]:
        """Decide and hold as one step: decisions running concurrently on other workers must
        see this choice's blackout and load before they choose. The target is None when the
        decision is blocked."""
        with self._decide_lock:
            decision, chosen = self._decide(claim, payload, excluded, homes, tasks)
            if chosen is None:
                return decision, None
            if self.gate is not None and (wait := self.gate.admit(claim.action, payload.job, chosen, decision)) is not None:
                return wait, None
            target = Target.chosen(chosen, decision, self.clock())
            self._hold(target, sum(t.num_instances for t in (payload.job.task_definitions if tasks is None else tasks)))
            return decision, target

    def _blocked(self, claim: Claim, decision: Decision, excluded: set[str]) -> str:
        a = claim.action
        if excluded:
            # exclusions hold for one attempt (as the original's blacklist): the
            # conflicting job may be gone by the next retry
            claim = self.store.record_progress(claim, {"excluded": []})
        log.info("action %s (%s %s) blocked: %s", a.id, a.kind, a.target_id, decision.reason)
        self.store.mark_blocked(claim, decision.reason, verdicts=verdict_dicts(decision), retry_in=self._block_retry(a))
        return "blocked"

    def _exclude(self, claim: Claim, target: Target, outcome: Excluded, excluded: set[str], progress: dict[str, Any]) -> Claim:
        """Give up the target for this attempt: its hold lifted, the journal back to deciding."""
        excluded.add(target.key)
        self.capacity.lift_blackout(target.key)
        self.capacity.invalidate(target.service_url)  # our load estimate for it was wrong
        log.info("action %s: pool %s excluded: %s", claim.action_id, target.pool_id, outcome.reason)
        progress.pop("pool", None)
        progress.pop("job_ready", None)
        return self.store.record_progress(
            claim, {"pool": None, "job_ready": None, "excluded": sorted(excluded), "last_exclusion": outcome.reason}
        )

    def mark_placed(self, claim: Claim, follow: FollowOn | None, *, progress: dict[str, Any], location: LocationUpdate) -> None:
        gate = self.gate if self.gate is not None else _NO_GATE
        if follow is None:
            self.store.mark_placed(claim, progress=progress, location=location)
            gate.placed(claim.action, location.batch_job_id)
            return
        _, nxt = self.store.mark_placed_and_claim(
            claim, worker=follow.worker, progress=progress, location=location, ttl=follow.ttl
        )
        gate.placed(claim.action, location.batch_job_id)
        follow.asked, follow.claim = True, nxt

    def journal(self, claim: Claim, record: dict[str, Any], *, location: LocationUpdate | None = None) -> Claim:
        """Journal a step of the add; if the claim is lost meanwhile, a chosen pool in the
        record gives its hold back."""
        try:
            return self.store.record_progress(claim, record, location=location)
        except ClaimLostError:
            if "pool" in record:
                self.capacity.lift_blackout(record["pool"]["key"])
            raise

    def _hold(self, target: Target, slots: int) -> None:
        """Account for a chosen pool in the shared capacity view: its load, and its blackout."""
        self.capacity.record_placement(target.service_url, target.pool_id, slots, target.node_kind)
        if self.options.blackout_interval > 0:
            self.capacity.black_out(target.key, self.clock() + self.options.blackout_interval)

    # ------------------------------------------------------------------ terminate / delete
    def _remove(self, claim: Claim) -> str:
        a = claim.action
        opts = parse_remove(a.payload, f"action {a.id}")
        locations = self.store.get_locations(a.federation_id, a.target_id, kind=a.kind)
        if not locations:
            note = "no location: nothing to do" + (" (forced)" if opts.force else "")
            self.store.mark_done(claim, progress={"locations": 0, "note": note})
            return "done"
        schedule = a.kind is ActionKind.JOB_SCHEDULE
        acted = 0
        for loc in locations:
            account = self.account_for(loc.batch_service_url)
            if not schedule:
                self.known_jobs.forget(loc.batch_service_url, loc.batch_id)
            where: dict[str, Any] = {"kind": a.kind, "batch_service_url": loc.batch_service_url, "pool_id": loc.pool_id}
            if a.method is ActionMethod.TERMINATE:
                if loc.terminated_at is not None:
                    continue
                if schedule:
                    account.terminate_job_schedule(a.target_id)
                else:
                    account.terminate_job(loc.batch_id, reason="terminated through the federation")
                self.store.mark_terminated(a.federation_id, a.target_id, **where)
            else:
                if schedule:
                    account.delete_job_schedule(a.target_id)
                else:
                    account.delete_job(loc.batch_id)
                self.store.delete_location(a.federation_id, a.target_id, **where)
            acted += 1
        self.store.mark_done(claim, progress={"locations": len(locations), "acted_on": acted})
        if self.gate is not None:
            self.gate.removed(a)
        log.info("action %s: %s %s %s on %d pool(s)", a.id, a.method, a.kind, a.target_id, acted)
        return "done"


def _live_last(loc: Location) -> bool:
    return loc.terminated_at is None


class _NoGate:
    """The placement gate of a proxy without accounting installed: admits everything."""

    def placed(self, action: Action, batch_job_id: str | None = None) -> None:
        pass


_NO_GATE = _NoGate()


def _check_target(a: Action, payload: AddPayload) -> None:
    """The payload must describe what the action targets (clients build both from one job;
    a record written around the client may not): same id, and a job schedule exactly when
    the action is one."""
    spec = payload.job
    if spec.id.lower() != a.target_id.lower():
        raise ConfigError(f"action {a.id}: targets '{a.target_id}' but its payload describes '{spec.id}'")
    if (a.kind is ActionKind.JOB_SCHEDULE) != (spec.recurrence is not None):
        carries = "a job schedule (it has a recurrence)" if spec.recurrence is not None else "a job (no recurrence)"
        raise ConfigError(f"action {a.id}: a {a.kind.value} action whose payload is {carries}")
