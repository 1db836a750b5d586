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
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timezone
from typing import Any

from ..batch.errors import UNREACHABLE
from ..batch.jobs import JobInfo, JobSettings
from ..config.jobs import TaskDefinition
from ..errors import (
    BatchConflictError,
    BatchError,
    BatchfedError,
    BatchNotFoundError,
    ClaimLostError,
    ConfigError,
    NotFoundError,
    SchedulingError,
    StoreError,
    StoreUnavailableError,
)
from ..scheduler import decide_requirements, resolve, rewrite_for_placement, summarize
from ..scheduler.rewrite import highest_generated
from ..scheduler.types import Decision, PoolSnapshot, url_key
from ..store.base import Store
from ..store.records import Action, ActionKind, ActionMethod, Claim, LocationUpdate
from .capacity import CapacityCache
from .known_jobs import KnownJobs
from .payload import AddPayload, parse_add, parse_remove

log = logging.getLogger("batchfed.proxy")

MAX_RECORDED_FAILURES = 100  # per-task add failures kept on the action (the count is exact)


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

    OUTCOMES = ("placed", "done", "blocked", "failed", "retry", "lost", "gone", "task_add_failures")

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


@dataclass(frozen=True)
class Excluded:
    """The chosen pool cannot take this job after all; decide again without it."""

    reason: str


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
    ):
        self.store = store
        self.stop = stop or threading.Event()  # set when the proxy stops: no more waiting
        self.capacity = capacity
        self.account_for = account_for
        self.options = options
        self.counters = counters or Counters()
        self.clock = clock
        # federation records and pool members change rarely; the daemon calls
        # forget_federations() when the store says they changed
        self._fed_cache: dict[str, tuple[Any, list[Any]]] = {}
        self._fed_lock = threading.Lock()
        self._decide_lock = threading.Lock()
        self.known_jobs = KnownJobs()

    def forget_federations(self) -> None:
        with self._fed_lock:
            self._fed_cache.clear()

    def _federation(self, fid: str) -> tuple[Any, tuple[Any, ...]]:
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
            elif exc.code == UNREACHABLE:
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
        except Exception as exc:  # noqa: BLE001 - bounded retries, then failed with the error
            outcome = self._error(claim, exc)
        self.counters.add(outcome)
        return outcome

    def _fail(self, claim: Claim, error: str) -> str:
        log.error("action %s (%s %s %s) failed: %s", claim.action_id, claim.action.method, claim.action.kind, claim.action.target_id, error)
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
        self, claim: Claim, payload: AddPayload, excluded: set[str], homes: dict[str, str]
    ) -> tuple[Decision, PoolSnapshot | None]:
        """The decision, and the snapshot of the pool it chose (None when blocked)."""
        a = claim.action
        spec = payload.job
        group = summarize(spec)
        req = resolve(
            spec.federation_constraints, group,
            native_default=payload.native_default, windows_default=payload.windows_default,
        )  # fmt: skip
        fed, members = self._federation(a.federation_id)
        snaps = self.capacity.snapshots(members, active_tasks=req.backlog_ratio is not None)
        reasons = dict.fromkeys(excluded, "job creation failed on this pool in this attempt")
        if not fed.unique_job_ids:  # only there can a job id already live elsewhere
            reasons.update(_same_account_conflicts(a, snaps, homes))
        decision = decide_requirements(req, snaps, self.clock(), self.options.policy, reasons)
        chosen = None if decision.pool is None else next(s for s in snaps if s.facts.key == decision.pool)
        return decision, chosen

    def _job_homes(self, a: Action) -> dict[str, str]:
        """Where the store locates this job id: account URL (normalised) → pool id. Read once
        per add: the exclusions of a decision and the job create both need it, and only this
        action's worker places its target meanwhile (FIFO per target)."""
        if a.kind is not ActionKind.JOB:
            return {}
        return {
            url_key(loc.batch_service_url): loc.pool_id
            for loc in self.store.get_locations(a.federation_id, a.target_id, kind=ActionKind.JOB)
        }

    def _add(self, claim: Claim, follow: FollowOn | None = None) -> str:
        a = claim.action
        payload = parse_add(a.payload, f"action {a.id}")
        _check_target(a, payload)
        fed, _ = self._federation(a.federation_id)
        progress: dict[str, Any] = dict(a.progress)
        excluded = set(progress.get("excluded") or ())
        homes = self._job_homes(a)
        intent: dict[str, Any] | None
        while True:
            target = progress.get("pool")
            if not target:
                # decide and hold as one step: decisions running concurrently on other workers
                # must see this choice's blackout and load (the original ran one action at a
                # time, so holding "after success" was the same moment)
                with self._decide_lock:
                    decision, chosen = self._decide(claim, payload, excluded, homes)
                    if chosen is not None:
                        target = self._target(chosen, decision)
                        self._hold(target, sum(t.num_instances for t in payload.job.task_definitions))
                if target is None:
                    if excluded:
                        # exclusions hold for one attempt (as the original's blacklist): the
                        # conflicting job may be gone by the next retry
                        claim = self.store.record_progress(claim, {"excluded": []})
                    retry = self._block_retry(a)
                    log.info("action %s (%s %s) blocked: %s", a.id, a.kind, a.target_id, decision.reason)
                    self.store.mark_blocked(claim, decision.reason, verdicts=verdict_dicts(decision), retry_in=retry)
                    return "blocked"
                progress["pool"] = target
                intent = {"pool": target}
            else:
                intent = None  # a retry: the journal has the pool already
            if a.kind is ActionKind.JOB_SCHEDULE:
                if intent is not None:
                    claim = self._journal(claim, intent)
                outcome = self._create_schedule(claim, payload, target, follow)
            else:
                outcome = self._create_job(claim, payload, target, fed.unique_job_ids, progress, homes, intent, follow)
            if not isinstance(outcome, Excluded):
                return outcome
            excluded.add(target["key"])
            self.capacity.lift_blackout(target["key"])
            self.capacity.invalidate(target["service_url"])  # our load estimate for it was wrong
            log.info("action %s: pool %s excluded: %s", a.id, target["pool_id"], outcome.reason)
            progress.pop("pool", None)
            progress.pop("job_ready", None)
            claim = self.store.record_progress(
                claim, {"pool": None, "job_ready": None, "excluded": sorted(excluded), "last_exclusion": outcome.reason}
            )

    def _create_job(
        self, claim: Claim, payload: AddPayload, target: dict[str, Any], unique_job_ids: bool, progress: dict[str, Any],
        homes: dict[str, str], intent: dict[str, Any] | None, follow: FollowOn | None = None,
    ) -> str | Excluded:
        """Create or merge into the job on ``target`` and add the task group. ``intent`` is
        the chosen pool when not recorded yet: it is written before the job is created, or —
        when this proxy merges into a job it knows, where nothing is created — together with
        the journal, one write fewer (the listing before it changes nothing on Batch)."""
        a = claim.action
        spec = payload.job
        account = self.account_for(target["service_url"])
        pool_id, windows = target["pool_id"], bool(target.get("windows"))
        settings = JobSettings.from_spec(spec)
        tasks: list[TaskDefinition] = list(spec.task_definitions)
        where = LocationUpdate(target["service_url"], pool_id, account=target.get("account"), location=target.get("location"))
        if not progress.get("job_ready"):
            # the store places the job id on this pool already: a later task group, a retry
            likely = (home := homes.get(url_key(target["service_url"]))) is not None and home.lower() == pool_id.lower()
            known = None
            if likely:
                try:
                    known = self._known_task_ids(account, spec.id, target, settings, windows)
                except BatchNotFoundError:  # deleted outside the federation: create it again
                    likely = False
                except BaseException:
                    if intent is not None:  # the retry comes back to this pool, its hold taken once
                        self._journal(claim, intent)
                    raise
            if known is not None:
                created, existing = False, known
            else:
                if intent is not None:
                    claim, intent = self._journal(claim, intent), None
                opened = self._create_or_merge(account, spec.id, target, settings, windows, likely)
                if isinstance(opened, Excluded):
                    return opened
                created, existing = opened
            highest, collisions = -1, []
            if not created:
                highest = highest_generated(existing)
                if unique_job_ids or not any(t.depends_on for t in tasks):
                    # ids the user wrote that another task group already used in this job
                    collisions = sorted({t.id for t in tasks if not t.generated_id} & existing)
            journal = {"job_ready": True, "job_created": created, "generated_after": highest, "collisions": collisions}
            # the location is recorded with the journal, before any task is added: nothing orphaned
            claim = self._journal(claim, {**(intent or {}), **journal}, location=where)
            progress.update(journal)
        else:  # a retry: the location is there already, unless an older proxy died before writing it
            self.store.record_location(a.federation_id, spec.id, kind=ActionKind.JOB, **asdict(where))
        rewritten = rewrite_for_placement(
            tasks, unique_id=a.id, unique_job_ids=unique_job_ids, highest=int(progress.get("generated_after", -1))
        )
        collisions = set(progress.get("collisions") or ())
        to_add = [t for t in rewritten if t.id not in collisions]
        if len(to_add) > 1000:  # a long bulk add: keep the claim alive through it
            claim = self.store.renew_claim(claim, ttl=self.options.claim_ttl)
        try:
            report = account.add_tasks(spec.id, to_add, windows=windows, concurrency=self.options.task_add_concurrency)
        except BatchConflictError as exc:  # the job closed (completed, terminating, deleted) since
            self.known_jobs.forget(target["service_url"], spec.id)
            return Excluded(f"tasks cannot be added to job '{spec.id}' on {pool_id}: {exc}")
        failures = [{"task_id": r.task_id, "code": r.code, "message": r.message} for r in report.failed]
        failures += [
            {"task_id": t, "code": "TaskIdInUse", "message": "an earlier task group of this job already has this task id"}
            for t in sorted(collisions)
        ]
        if spec.auto_complete:
            account.set_auto_complete(spec.id)
            self.known_jobs.forget(target["service_url"], spec.id)  # it will close by itself
        now = self.clock()
        served = replace(where, unique_id=a.id, at=datetime.fromtimestamp(now, timezone.utc))
        self._after_success(account, target, now, sum(t.num_instances for t in to_add))
        result_progress = {
            "placed_pool": target["key"],
            "tasks_added": report.succeeded,
            "task_failures": failures[:MAX_RECORDED_FAILURES],
            "task_failure_count": len(failures),
            "placement_latency_s": round(now - a.enqueued_at.timestamp(), 6),
        }
        if failures and report.succeeded == 0:
            claim = self.store.record_progress(claim, result_progress, location=served)
            first = failures[0]
            self.store.mark_failed(claim, f"no task of the group could be added ({len(failures)} failed; first: {first['task_id']}: {first['code']})")
            self.counters.add("task_add_failures", len(failures))
            return "failed"
        if failures:
            self.counters.add("task_add_failures", len(failures))
            log.warning("action %s: %d task(s) not added to job %s: first %s", a.id, len(failures), spec.id, failures[0])
        self._mark_placed(claim, follow, progress=result_progress, location=served)
        log.info("action %s: job %s placed on %s (%s, %d tasks)", a.id, spec.id, pool_id, target.get("rule"), report.succeeded)
        return "placed"

    def _mark_placed(self, claim: Claim, follow: FollowOn | None, *, progress: dict[str, Any], location: LocationUpdate) -> None:
        if follow is None:
            self.store.mark_placed(claim, progress=progress, location=location)
            return
        _, nxt = self.store.mark_placed_and_claim(claim, worker=follow.worker, progress=progress, location=location, ttl=follow.ttl)
        follow.asked, follow.claim = True, nxt

    def _journal(self, claim: Claim, record: dict[str, Any], *, location: LocationUpdate | None = None) -> Claim:
        """Journal a step of the add; if the claim is lost meanwhile, a chosen pool in the
        record gives its hold back."""
        try:
            return self.store.record_progress(claim, record, location=location)
        except ClaimLostError:
            if "pool" in record:
                self.capacity.lift_blackout(record["pool"]["key"])
            raise

    def _known_task_ids(
        self, account: Any, job_id: str, target: dict[str, Any], settings: JobSettings, windows: bool
    ) -> set[str] | None:
        """The ids of the tasks of a job this proxy remembers on the pool as compatible
        (:mod:`.known_jobs`): the listing alone confirms the job still exists (it raises
        BatchNotFoundError if not). None when the job is not remembered so: it must be read."""
        url, pool_id = target["service_url"], target["pool_id"]
        known = self.known_jobs.get(url, job_id)
        if known is None or known.merge_conflict(pool_id, settings, windows=windows) is not None:
            return None
        try:
            return account.task_ids(job_id)
        except BatchNotFoundError:
            self.known_jobs.forget(url, job_id)
            raise

    def _create_or_merge(
        self, account: Any, job_id: str, target: dict[str, Any], settings: JobSettings, windows: bool, likely: bool
    ) -> tuple[bool, set[str]] | Excluded:
        """The job on the chosen pool, created if absent: ``(created, ids of its tasks)``, or
        why this task group cannot merge into the job there. A job ``likely`` to exist is not
        created blindly (see ``BatchAccount.create_job``)."""
        url, pool_id = target["service_url"], target["pool_id"]
        self.known_jobs.forget(url, job_id)
        try:
            result = account.create_job(job_id, pool_id, settings, windows=windows, likely_exists=likely)
        except BatchConflictError as exc:  # e.g. JobBeingDeleted / JobCompleted on create
            return Excluded(f"job cannot be created on {pool_id}: {exc}")
        if result.created:
            self.known_jobs.remember(url, JobInfo.created(job_id, pool_id, settings, windows=windows))
            return True, set()
        existing = result.existing
        assert existing is not None
        conflict = existing.merge_conflict(pool_id, settings, windows=windows)
        if conflict:
            return Excluded(conflict)
        self.known_jobs.remember(url, existing)
        return False, account.task_ids(job_id)

    def _create_schedule(self, claim: Claim, payload: AddPayload, target: dict[str, Any], follow: FollowOn | None = None) -> str | Excluded:
        a = claim.action
        spec = payload.job
        rec = spec.recurrence
        assert rec is not None
        account = self.account_for(target["service_url"])
        pool_id, windows = target["pool_id"], bool(target.get("windows"))
        sched = rec.schedule
        result = account.create_job_schedule(
            spec.id, pool_id,
            recurrence_interval=sched.recurrence_interval,
            tasks=list(spec.task_definitions),
            settings=JobSettings.from_spec(spec),
            windows=windows,
            do_not_run_until=_iso(sched.do_not_run_until),
            do_not_run_after=_iso(sched.do_not_run_after),
            start_window=sched.start_window,
        )  # fmt: skip
        if not result.created:
            existing = result.existing
            if existing is None or (existing.pool_id or "").lower() != pool_id.lower():
                return Excluded(f"a job schedule '{spec.id}' already exists on pool {existing.pool_id if existing else '?'}")
        now = self.clock()
        served = LocationUpdate(
            target["service_url"], pool_id, account=target.get("account"), location=target.get("location"),
            unique_id=a.id, at=datetime.fromtimestamp(now, timezone.utc),
        )  # fmt: skip
        # schedules get no blackout or autoscale evaluation (as in the original): no tasks run yet
        self._mark_placed(
            claim, follow, progress={"placed_pool": target["key"], "placement_latency_s": round(now - a.enqueued_at.timestamp(), 6)},
            location=served,
        )  # fmt: skip
        log.info("action %s: job schedule %s placed on %s", a.id, spec.id, pool_id)
        return "placed"

    def _target(self, snap: PoolSnapshot, decision: Decision) -> dict[str, Any]:
        f = snap.facts
        return {
            "key": f.key, "service_url": f.service_url, "pool_id": f.pool_id, "account": f.account,
            "location": f.location, "windows": f.windows, "autoscale": f.autoscale,
            "rule": decision.rule, "node_kind": decision.node_kind, "decided_at": self.clock(),
        }  # fmt: skip

    def _hold(self, target: dict[str, Any], slots: int) -> None:
        """Account for a chosen pool in the shared capacity view: its load, and its blackout."""
        self.capacity.record_placement(target["service_url"], target["pool_id"], slots, target.get("node_kind"))
        if self.options.blackout_interval > 0:
            self.capacity.black_out(target["key"], self.clock() + self.options.blackout_interval)

    def _after_success(self, account: Any, target: dict[str, Any], now: float, slots: int) -> None:
        if self.options.blackout_interval > 0:  # the blackout runs from the placement itself
            self.capacity.black_out(target["key"], now + self.options.blackout_interval)
        if self.options.evaluate_autoscale and target.get("autoscale"):
            try:
                account.reevaluate_autoscale(target["pool_id"])
            except BatchError as exc:  # advisory: the placement itself succeeded
                log.warning("autoscale evaluation of %s failed: %s", target["pool_id"], exc)

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
                self.known_jobs.forget(loc.batch_service_url, a.target_id)
            where = dict(kind=a.kind, batch_service_url=loc.batch_service_url, pool_id=loc.pool_id)
            if a.method is ActionMethod.TERMINATE:
                if loc.terminated_at is not None:
                    continue
                if schedule:
                    account.terminate_job_schedule(a.target_id)
                else:
                    account.terminate_job(a.target_id, reason="terminated through the federation")
                self.store.mark_terminated(a.federation_id, a.target_id, **where)
            else:
                if schedule:
                    account.delete_job_schedule(a.target_id)
                else:
                    account.delete_job(a.target_id)
                self.store.delete_location(a.federation_id, a.target_id, **where)
            acted += 1
        self.store.mark_done(claim, progress={"locations": len(locations), "acted_on": acted})
        log.info("action %s: %s %s %s on %d pool(s)", a.id, a.method, a.kind, a.target_id, acted)
        return "done"


def _same_account_conflicts(a: Action, snaps: list[PoolSnapshot], homes: dict[str, str]) -> dict[str, str]:
    """A Batch job id is unique per account: where the job id already lives on one pool,
    every other pool of that account would refuse it — say so without asking Batch."""
    if not homes:
        return {}
    # one reason per account, written once: this runs per pool per decision
    homes_by_url = {url: (home.lower(), f"job '{a.target_id}' already lives on pool {home} of this account") for url, home in homes.items()}
    out = {}
    for s in snaps:
        hit = homes_by_url.get(url_key(s.facts.service_url))
        if hit is not None and hit[0] != s.pool_id.lower():
            out[s.key] = hit[1]
    return out


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


def _iso(text: str | None) -> datetime | None:
    if text is None:
        return None
    dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)
