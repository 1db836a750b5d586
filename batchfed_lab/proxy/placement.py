"""Put an add action on the pool its decision chose: a job's task group, or a job schedule.

These are steps 2–6 of the journal described in :mod:`.processor`: the job is created or
merged into, the numbering of generated ids and the colliding ids are journaled with the
location before any task is added, the tasks are added, and the action is marked placed.
A step that finds the pool cannot take the job after all returns :class:`Excluded`; the
processor then decides again without that pool.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, NamedTuple

from ..batch.jobs import JobInfo, JobSettings
from ..config.jobs import TaskDefinition
from ..data.mapping import map_tasks, sas_lifetime
from ..errors import BatchConflictError, BatchError, BatchNotFoundError, ConfigError
from ..scheduler import rewrite_for_placement
from ..scheduler.rewrite import highest_generated
from ..scheduler.types import Decision, PoolSnapshot, url_key
from ..store.records import ActionKind, Claim, LocationUpdate
from .payload import AddPayload

if TYPE_CHECKING:
    from ..batch.tasks import TaskAddReport
    from .processor import ActionProcessor, FollowOn

log = logging.getLogger("batchfed.proxy")

MAX_RECORDED_FAILURES = 100  # per-task add failures kept on the action (the count is exact)


class Target(NamedTuple):
    """The pool a decision chose for an add, as the journal records it (``progress["pool"]``,
    a plain mapping): a retry goes back there. A NamedTuple because a placement builds one and
    reads it a few times: no costlier than the mapping it is recorded as."""

    key: str
    service_url: str
    pool_id: str
    account: str | None
    location: str | None
    windows: bool
    autoscale: bool
    rule: str | None
    node_kind: str | None
    decided_at: float | None
    identity: str | None = None  # the pool's managed identity for storage (pool.yaml identity_reference)

    @classmethod
    def chosen(cls, snap: PoolSnapshot, decision: Decision, decided_at: float) -> Target:
        f = snap.facts
        return _new_tuple(
            cls,
            (
                f.key,
                f.service_url,
                f.pool_id,
                f.account,
                f.location,
                f.windows,
                f.autoscale,
                decision.rule,
                decision.node_kind,
                decided_at,
                f.identity,
            ),
        )

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> Target:
        """The target a journal recorded (of a record, only the key, service URL and pool id are required)."""
        get = record.get
        return cls(
            record["key"],
            record["service_url"],
            record["pool_id"],
            get("account"),
            get("location"),
            bool(get("windows")),
            bool(get("autoscale")),
            get("rule"),
            get("node_kind"),
            get("decided_at"),
            get("identity"),
        )

    def record(self) -> dict[str, Any]:
        return dict(zip(_TARGET_FIELDS, self))  # what _asdict does, without its method call

    def location_update(self) -> LocationUpdate:
        return LocationUpdate(self.service_url, self.pool_id, account=self.account, location=self.location)


_TARGET_FIELDS = Target._fields
_new_tuple = tuple.__new__  # a Target from all its fields, without the Python-level __new__ call


@dataclass(frozen=True)
class Excluded:
    """The chosen pool cannot take this job after all; decide again without it."""

    reason: str


class JobPlacement:
    """One task group placed as (part of) a job on its target pool: :meth:`run` journals the
    chosen pool, creates or merges into the job, adds the tasks and finishes the action.

    ``intent`` is the chosen pool's journal record when not written yet: it is written before
    the job is created, or — when this proxy merges into a job it knows, where nothing is
    created — together with the journal, one write fewer (the listing before it changes
    nothing on Batch)."""

    def __init__(
        self,
        proc: ActionProcessor,
        claim: Claim,
        payload: AddPayload,
        target: Target,
        intent: dict[str, Any] | None,
        *,
        tasks: list[TaskDefinition] | None = None,
        batch_job_id: str | None = None,
    ):
        """``tasks``: a move's tasks, added as given (their ids were fixed when first placed);
        ``batch_job_id``: the job's id on Batch when not its own (see ``batch_job_id_for``)."""
        self.proc, self.claim, self.target, self.intent = proc, claim, target, intent
        self.spec = payload.job
        self.batch_id = batch_job_id or payload.job.id
        self.account = proc.account_for(target.service_url)
        self.settings = JobSettings.from_spec(self.spec)
        self.as_given = tasks is not None
        self.tasks: list[TaskDefinition] = list(self.spec.task_definitions if tasks is None else tasks)
        own = self.batch_id.lower() == self.spec.id.lower()
        self.where = replace(target.location_update(), batch_job_id=None if own else self.batch_id)

    def run(
        self, progress: dict[str, Any], homes: dict[str, str], unique_job_ids: bool, follow: FollowOn | None
    ) -> str | Excluded:
        """``progress`` is the action's journal so far (updated in place); ``homes`` where the
        store locates this job id (account URL → pool id)."""
        if not progress.get("job_ready"):
            journal = self._open_job(homes, unique_job_ids)
            if isinstance(journal, Excluded):
                return journal
            progress.update(journal)
        else:  # a retry: the location is there already, unless an older proxy died before writing it
            self.proc.store.record_location(self.claim.federation_id, self.spec.id, kind=ActionKind.JOB, **asdict(self.where))
        collisions = set(progress.get("collisions") or ())
        to_add = self._tasks_to_add(int(progress.get("generated_after", -1)), collisions, unique_job_ids)
        report = self._add_tasks(to_add)
        if isinstance(report, Excluded):
            return report
        return self._finish(to_add, report, collisions, follow)

    # ------------------------------------------------------------------ open the job
    def _open_job(self, homes: dict[str, str], unique_job_ids: bool) -> dict[str, Any] | Excluded:
        """The job on the pool, created if absent or merged into; its journal (how generated
        ids continue, which explicit ids collide) written with the location, before any task
        is added: nothing orphaned."""
        likely, known = self._remembered_task_ids(homes)
        if known is not None:
            created, existing = False, known
        else:
            if self.intent is not None:
                self.claim, self.intent = self.proc.journal(self.claim, self.intent), None
            opened = self._create_or_merge(likely)
            if isinstance(opened, Excluded):
                return opened
            created, existing = opened
        highest, collisions = -1, []
        if not created:
            highest = highest_generated(existing)
            if unique_job_ids or not any(t.depends_on for t in self.tasks):
                # ids the user wrote that another task group already used in this job
                collisions = sorted({t.id for t in self.tasks if not t.generated_id} & existing)
        journal = {"job_ready": True, "job_created": created, "generated_after": highest, "collisions": collisions}
        self.claim = self.proc.journal(self.claim, {**(self.intent or {}), **journal}, location=self.where)
        return journal

    def _remembered_task_ids(self, homes: dict[str, str]) -> tuple[bool, set[str] | None]:
        """Whether the job likely exists on the pool (the store places the job id there already:
        a later task group, a retry), and the ids of its tasks when this proxy remembers it."""
        t = self.target
        likely = (home := homes.get(url_key(t.service_url))) is not None and home.lower() == t.pool_id.lower()
        if not likely:
            return False, None
        try:
            return True, self._known_task_ids()
        except BatchNotFoundError:  # deleted outside the federation: create it again
            return False, None
        except BaseException:
            if self.intent is not None:  # the retry comes back to this pool, its hold taken once
                self.proc.journal(self.claim, self.intent)
            raise

    def _known_task_ids(self) -> set[str] | None:
        """The ids of the tasks of a job this proxy remembers on the pool as compatible
        (:mod:`.known_jobs`): the listing alone confirms the job still exists (it raises
        BatchNotFoundError if not). None when the job is not remembered so: it must be read."""
        url, pool_id, job_id = self.target.service_url, self.target.pool_id, self.batch_id
        known_jobs = self.proc.known_jobs
        known = known_jobs.get(url, job_id)
        if known is None or known.merge_conflict(pool_id, self.settings, windows=self.target.windows) is not None:
            return None
        try:
            return self.account.task_ids(job_id)
        except BatchNotFoundError:
            known_jobs.forget(url, job_id)
            raise

    def _create_or_merge(self, likely: bool) -> tuple[bool, set[str]] | Excluded:
        """The job on the chosen pool, created if absent: ``(created, ids of its tasks)``, or
        why this task group cannot merge into the job there. A job ``likely`` to exist is not
        created blindly (see ``BatchAccount.create_job``)."""
        url, pool_id, job_id, windows = self.target.service_url, self.target.pool_id, self.batch_id, self.target.windows
        known_jobs = self.proc.known_jobs
        known_jobs.forget(url, job_id)
        try:
            result = self.account.create_job(job_id, pool_id, self.settings, windows=windows, likely_exists=likely)
        except BatchConflictError as exc:  # e.g. JobBeingDeleted / JobCompleted on create
            return Excluded(f"job cannot be created on {pool_id}: {exc}")
        if result.created:
            known_jobs.remember(url, JobInfo.created(job_id, pool_id, self.settings, windows=windows))
            return True, set()
        existing = result.existing
        assert existing is not None
        conflict = existing.merge_conflict(pool_id, self.settings, windows=windows)
        if conflict:
            return Excluded(conflict)
        known_jobs.remember(url, existing)
        return False, self.account.task_ids(job_id)

    # ------------------------------------------------------------------ add the tasks
    def _tasks_to_add(self, highest: int, collisions: set[str], unique_job_ids: bool) -> list[TaskDefinition]:
        """The group's tasks as placed (ids numbered after ``highest``), but those whose ids collide."""
        if self.as_given:
            return [t for t in self.tasks if t.id not in collisions]
        rewritten = rewrite_for_placement(
            self.tasks, unique_id=self.claim.action_id, unique_job_ids=unique_job_ids, highest=highest
        )
        return self._with_data([t for t in rewritten if t.id not in collisions])

    def _with_data(self, tasks: list[TaskDefinition]) -> list[TaskDefinition]:
        """The tasks' input_data / output_data as Batch resource and output files, with URLs
        minted now for the chosen pool (see :mod:`.storage`): nothing secret was stored."""
        if not any(t.inputs or t.outputs for t in tasks):
            return tasks
        storage = self.proc.storage
        if storage is None:
            raise ConfigError(f"job '{self.spec.id}' has input_data / output_data but this proxy has no storage accounts")
        access = storage.access(self.target.identity, sas_lifetime(tasks))
        return map_tasks(self.spec.id, tasks, access)

    def _add_tasks(self, to_add: list[TaskDefinition]) -> TaskAddReport | Excluded:
        """The add report, or Excluded when the job closed meanwhile."""
        proc = self.proc
        if len(to_add) > 1000:  # a long bulk add: keep the claim alive through it
            self.claim = proc.store.renew_claim(self.claim, ttl=proc.options.claim_ttl)
        try:
            return self.account.add_tasks(
                self.batch_id, to_add, windows=self.target.windows, concurrency=proc.options.task_add_concurrency
            )
        except BatchConflictError as exc:  # the job closed (completed, terminating, deleted) since
            proc.known_jobs.forget(self.target.service_url, self.batch_id)
            return Excluded(f"tasks cannot be added to job '{self.batch_id}' on {self.target.pool_id}: {exc}")

    # ------------------------------------------------------------------ finish
    def _finish(self, to_add: list[TaskDefinition], report: TaskAddReport, collisions: set[str], follow: FollowOn | None) -> str:
        """Mark the action placed (or failed when no task could be added), with the unique id on
        the location; then the blackout and autoscale evaluation that follow a placement."""
        proc, a, spec = self.proc, self.claim.action, self.spec
        failures = [{"task_id": r.task_id, "code": r.code, "message": r.message} for r in report.failed]
        failures += [
            {"task_id": t, "code": "TaskIdInUse", "message": "an earlier task group of this job already has this task id"}
            for t in sorted(collisions)
        ]
        if spec.auto_complete:
            self.account.set_auto_complete(self.batch_id)
            proc.known_jobs.forget(self.target.service_url, self.batch_id)  # it will close by itself
        now = proc.clock()
        served = replace(self.where, unique_id=a.id, at=datetime.fromtimestamp(now, timezone.utc))
        self._after_success(now, sum(t.num_instances for t in to_add))
        result_progress = {
            "placed_pool": self.target.key,
            "tasks_added": report.succeeded,
            "task_failures": failures[:MAX_RECORDED_FAILURES],
            "task_failure_count": len(failures),
            "placement_latency_s": round(now - a.enqueued_at.timestamp(), 6),
        }
        if failures and report.succeeded == 0:
            claim = proc.store.record_progress(self.claim, result_progress, location=served)
            first = failures[0]
            proc.store.mark_failed(
                claim, f"no task of the group could be added ({len(failures)} failed; first: {first['task_id']}: {first['code']})"
            )
            proc.counters.add("task_add_failures", len(failures))
            return "failed"
        if failures:
            proc.counters.add("task_add_failures", len(failures))
            log.warning("action %s: %d task(s) not added to job %s: first %s", a.id, len(failures), spec.id, failures[0])
        proc.mark_placed(self.claim, follow, progress=result_progress, location=served)
        log.info(
            "action %s: job %s placed on %s (%s, %d tasks)",
            a.id,
            spec.id,
            self.target.pool_id,
            self.target.rule,
            report.succeeded,
        )
        return "placed"

    def _after_success(self, now: float, slots: int) -> None:
        options, capacity, t = self.proc.options, self.proc.capacity, self.target
        if options.blackout_interval > 0:  # the blackout runs from the placement itself
            capacity.black_out(t.key, now + options.blackout_interval)
        if options.evaluate_autoscale and t.autoscale:
            try:
                self.account.reevaluate_autoscale(t.pool_id)
            except BatchError as exc:  # advisory: the placement itself succeeded
                log.warning("autoscale evaluation of %s failed: %s", t.pool_id, exc)


def place_schedule(
    proc: ActionProcessor, claim: Claim, payload: AddPayload, target: Target, follow: FollowOn | None = None
) -> str | Excluded:
    """Create the job schedule on its target pool (an existing one counts when it runs on that
    pool) and mark the action placed. Its recurrences' tasks are added as Batch creates their
    jobs (:mod:`.recurrences`)."""
    a = claim.action
    spec = payload.job
    rec = spec.recurrence
    assert rec is not None
    account = proc.account_for(target.service_url)
    pool_id = target.pool_id
    sched = rec.schedule
    result = account.create_job_schedule(
        spec.id,
        pool_id,
        recurrence_interval=sched.recurrence_interval,
        settings=JobSettings.from_spec(spec),
        windows=target.windows,
        do_not_run_until=_iso(sched.do_not_run_until),
        do_not_run_after=_iso(sched.do_not_run_after),
        start_window=sched.start_window,
    )
    if not result.created:
        existing = result.existing
        if existing is None or (existing.pool_id or "").lower() != pool_id.lower():
            return Excluded(f"a job schedule '{spec.id}' already exists on pool {existing.pool_id if existing else '?'}")
    now = proc.clock()
    served = replace(target.location_update(), unique_id=a.id, at=datetime.fromtimestamp(now, timezone.utc))
    # schedules get no blackout or autoscale evaluation (as in the original): no tasks run yet
    proc.mark_placed(
        claim,
        follow,
        progress={"placed_pool": target.key, "placement_latency_s": round(now - a.enqueued_at.timestamp(), 6)},
        location=served,
    )
    log.info("action %s: job schedule %s placed on %s", a.id, spec.id, pool_id)
    return "placed"


def _iso(text: str | None) -> datetime | None:
    if text is None:
        return None
    dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)
