"""Jobs and job schedules: our settings → SDK create options, service objects → plain records,
the merge-compatibility rule of SPEC §5 (same pool, same job-preparation command, same
task-failure policy, dependencies on both or neither, job still active), and the job and job
schedule operations of an account (:class:`JobOperations`).

A job is always created with ``onAllTasksComplete=noaction``: Batch terminates a job with
``terminatejob`` and *no tasks* at once, so ``auto_complete`` is applied after the tasks are
in (:meth:`JobOperations.set_auto_complete`), as the original did.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from azure.batch import models as bm
from azure.batch.models._models import BatchJobTerminateOptions  # not re-exported in 15.1.0
from azure.core.exceptions import AzureError, HttpResponseError

from ..errors import BatchNotFoundError
from ._util import as_timedelta, enum_text
from .connection import BatchConnection
from .errors import batch_call, error_code, translate
from .tasks import TaskCounts, command_line

if TYPE_CHECKING:
    from ..config.jobs import JobSpecification

__all__ = [
    "JOB_SELECT",
    "JobCreateResult",
    "JobInfo",
    "JobOperations",
    "JobScheduleCreateResult",
    "JobScheduleInfo",
    "JobSettings",
    "job_create_options",
    "job_info",
    "job_schedule_create_options",
    "job_schedule_info",
]

JOB_SELECT = [
    "id",
    "state",
    "poolInfo",
    "executionInfo",
    "jobPreparationTask",
    "onTaskFailure",
    "onAllTasksComplete",
    "usesTaskDependencies",
    "creationTime",
]
# states in which a job no longer takes new tasks
_CLOSED = frozenset({"completed", "terminating", "deleting"})
# "Already in the wanted end state" answers: not errors for terminate/delete (SPEC §5).
_TERMINATED_JOB = frozenset({"JobNotFound", "JobCompleted", "JobBeingTerminated", "JobBeingDeleted"})
_DELETED_JOB = frozenset({"JobNotFound", "JobBeingDeleted"})
_TERMINATED_SCHEDULE = frozenset(
    {"JobScheduleNotFound", "JobScheduleCompleted", "JobScheduleBeingTerminated", "JobScheduleBeingDeleted"}
)
_DELETED_SCHEDULE = frozenset({"JobScheduleNotFound", "JobScheduleBeingDeleted"})


@dataclass(frozen=True)
class JobSettings:
    """What a Batch job is created with, besides its id and pool."""

    uses_task_dependencies: bool = False
    job_preparation_command: str | None = None  # shell text, wrapped like task commands
    on_task_failure: str = "noaction"  # noaction | performexitoptionsjobaction
    priority: int = 0
    auto_complete: bool = False  # applied after the tasks are added (see module docstring)

    @classmethod
    def from_spec(cls, spec: JobSpecification) -> JobSettings:
        return cls(
            uses_task_dependencies=spec.uses_dependencies,
            job_preparation_command=spec.job_preparation.command if spec.job_preparation else None,
            on_task_failure=spec.on_task_failure,
            priority=spec.priority,
            auto_complete=spec.auto_complete,
        )

    def preparation_command_line(self, *, windows: bool = False, shell: bool = True) -> str | None:
        if self.job_preparation_command is None:
            return None
        return command_line(self.job_preparation_command, windows=windows, shell=shell)


@dataclass(frozen=True)
class JobInfo:
    id: str
    state: str
    pool_id: str | None
    job_preparation_command_line: str | None = None
    on_task_failure: str = "noaction"
    on_all_tasks_complete: str = "noaction"
    uses_task_dependencies: bool = False
    creation_time: datetime | None = None

    @classmethod
    def created(cls, job_id: str, pool_id: str, settings: JobSettings, *, windows: bool = False, shell: bool = True) -> JobInfo:
        """The job :func:`job_create_options` describes, as the service reports it once created."""
        return cls(
            id=job_id,
            state="active",
            pool_id=pool_id,
            job_preparation_command_line=settings.preparation_command_line(windows=windows, shell=shell),
            on_task_failure=settings.on_task_failure,
            uses_task_dependencies=settings.uses_task_dependencies,
        )

    def merge_conflict(self, pool_id: str, settings: JobSettings, *, windows: bool = False, shell: bool = True) -> str | None:
        """Why a new task group must not be merged into this existing job (None → compatible)."""
        if self.state in _CLOSED:
            return f"job '{self.id}' is {self.state}"
        if (self.pool_id or "").lower() != pool_id.lower():
            return f"job '{self.id}' runs on pool '{self.pool_id}', not '{pool_id}'"
        if (self.job_preparation_command_line or None) != settings.preparation_command_line(windows=windows, shell=shell):
            return f"job '{self.id}' has another job preparation command"
        if self.on_task_failure != settings.on_task_failure:
            return f"job '{self.id}' has onTaskFailure={self.on_task_failure}, not {settings.on_task_failure}"
        if self.uses_task_dependencies != settings.uses_task_dependencies:
            has = "uses" if self.uses_task_dependencies else "does not use"
            return f"job '{self.id}' {has} task dependencies and the new task group {'does not' if self.uses_task_dependencies else 'does'}"
        return None


@dataclass(frozen=True)
class JobCreateResult:
    """``created`` or not; when the job existed, ``existing`` describes it for the merge decision."""

    job_id: str
    created: bool
    existing: JobInfo | None = None

    @property
    def status(self) -> str:
        return "created" if self.created else "exists"


def job_info(job: bm.BatchJob) -> JobInfo:
    prep = job.job_preparation_task
    pool_id = (job.pool_info.pool_id if job.pool_info else None) or (job.execution_info.pool_id if job.execution_info else None)
    return JobInfo(
        id=job.id or "",
        state=enum_text(job.state, "active"),
        pool_id=pool_id,
        job_preparation_command_line=prep.command_line if prep else None,
        on_task_failure=enum_text(job.task_failure_mode, "noaction"),
        on_all_tasks_complete=enum_text(job.all_tasks_complete_mode, "noaction"),
        uses_task_dependencies=bool(job.uses_task_dependencies),
        creation_time=job.creation_time,
    )


def _preparation_task(settings: JobSettings, windows: bool, shell: bool) -> bm.BatchJobPreparationTask | None:
    cmd = settings.preparation_command_line(windows=windows, shell=shell)
    return bm.BatchJobPreparationTask(command_line=cmd) if cmd else None


def _metadata(metadata: Mapping[str, str] | None) -> list[bm.BatchMetadataItem] | None:
    return [bm.BatchMetadataItem(name=k, value=str(v)) for k, v in metadata.items()] if metadata else None


def _job_fields(pool_id: str, settings: JobSettings, windows: bool, shell: bool) -> dict:
    """What a job and a job schedule's job specification share."""
    return {
        "pool_info": bm.BatchPoolInfo(pool_id=pool_id),
        "priority": settings.priority,
        "uses_task_dependencies": settings.uses_task_dependencies,
        "task_failure_mode": settings.on_task_failure,
        "job_preparation_task": _preparation_task(settings, windows, shell),
    }


def job_create_options(
    job_id: str,
    pool_id: str,
    settings: JobSettings,
    *,
    windows: bool = False,
    shell: bool = True,
    metadata: Mapping[str, str] | None = None,
) -> bm.BatchJobCreateOptions:
    return bm.BatchJobCreateOptions(
        id=job_id,
        all_tasks_complete_mode=bm.BatchAllTasksCompleteMode.NO_ACTION,
        metadata=_metadata(metadata),
        **_job_fields(pool_id, settings, windows, shell),
    )


@dataclass(frozen=True)
class JobScheduleInfo:
    id: str
    state: str  # active | completed | disabled | terminating | deleting
    pool_id: str | None
    recurrence_interval: timedelta | None = None
    next_run_time: datetime | None = None
    recent_job_id: str | None = None


@dataclass(frozen=True)
class JobScheduleCreateResult:
    schedule_id: str
    created: bool
    existing: JobScheduleInfo | None = None


def job_schedule_info(s: bm.BatchJobSchedule) -> JobScheduleInfo:
    spec = s.job_specification
    ex = s.execution_info
    return JobScheduleInfo(
        id=s.id or "",
        state=enum_text(s.state, "active"),
        pool_id=spec.pool_info.pool_id if spec and spec.pool_info else None,
        recurrence_interval=s.schedule.recurrence_interval if s.schedule else None,
        next_run_time=ex.next_run_time if ex else None,
        recent_job_id=ex.recent_job.id if ex and ex.recent_job else None,
    )


def job_schedule_create_options(
    schedule_id: str,
    pool_id: str,
    *,
    recurrence_interval: timedelta,
    settings: JobSettings,
    job_manager_command: str | None = None,
    do_not_run_until: datetime | None = None,
    do_not_run_after: datetime | None = None,
    start_window: timedelta | None = None,
    job_manager_id: str = "batchfed-jm",
    job_manager_environment: Mapping[str, str] | None = None,
    kill_job_on_completion: bool = False,
    windows: bool = False,
    shell: bool = True,
    metadata: Mapping[str, str] | None = None,
) -> bm.BatchJobScheduleCreateOptions:
    """A recurring job. Batch creates each recurrence's job with what this specification
    holds: ``job_manager_command`` adds a job manager task; other tasks are added to each job
    by the caller (the proxy does it for the schedules it places, :mod:`batchfed_lab.proxy.recurrences`).

    With a job manager, each recurrence's job terminates when all its tasks (the manager
    included) are done, so the next recurrence can start; with ``kill_job_on_completion`` the
    job ends as soon as the manager exits instead. Without one the job is created with
    ``onAllTasksComplete=noaction`` — Batch would end a job with no tasks at once — and
    whoever adds its tasks then sets ``terminatejob`` (:meth:`JobOperations.set_auto_complete`).
    """
    manager = None
    if job_manager_command:
        manager = bm.BatchJobManagerTask(
            id=job_manager_id,
            command_line=command_line(job_manager_command, windows=windows, shell=shell),
            environment_settings=[bm.EnvironmentSetting(name=k, value=v) for k, v in (job_manager_environment or {}).items()]
            or None,
            kill_job_on_completion=kill_job_on_completion,
        )
    return bm.BatchJobScheduleCreateOptions(
        id=schedule_id,
        schedule=bm.BatchJobScheduleConfiguration(
            recurrence_interval=recurrence_interval,
            do_not_run_until=do_not_run_until,
            do_not_run_after=do_not_run_after,
            start_window=start_window,
        ),
        job_specification=bm.BatchJobSpecification(
            all_tasks_complete_mode=bm.BatchAllTasksCompleteMode.TERMINATE_JOB
            if manager
            else bm.BatchAllTasksCompleteMode.NO_ACTION,
            job_manager_task=manager,
            **_job_fields(pool_id, settings, windows, shell),
        ),
        metadata=_metadata(metadata),
    )


# --- calls --------------------------------------------------------------------------------------


class JobOperations(BatchConnection):
    """Create, read, update, terminate and delete an account's jobs and job schedules."""

    def get_job(self, job_id: str) -> JobInfo:
        with batch_call(self._what(f"get job '{job_id}'")):
            return job_info(self._client.get_job(job_id, select=JOB_SELECT))

    def create_job(
        self,
        job_id: str,
        pool_id: str,
        settings: JobSettings | None = None,
        *,
        windows: bool = False,
        shell: bool = True,
        metadata: Mapping[str, str] | None = None,
        likely_exists: bool = False,
    ) -> JobCreateResult:
        """Create the job if absent. If it exists (``JobExists``), report it with what the
        merge decision needs (:meth:`JobInfo.merge_conflict`) instead of raising.

        ``likely_exists`` (the caller's records say the job is there): read it first and
        create only if it is gone — one call instead of a refused create and a read."""
        if likely_exists:
            try:
                return JobCreateResult(job_id, False, self.get_job(job_id))
            except BatchNotFoundError:
                pass  # deleted since: create it
        settings = settings or JobSettings()
        options = job_create_options(job_id, pool_id, settings, windows=windows, shell=shell, metadata=metadata)
        what = self._what(f"create job '{job_id}' on pool '{pool_id}'")
        try:
            self._rest("POST", "/jobs", what, body=options)  # a placement's call: no SDK operation
            return JobCreateResult(job_id, True)
        except HttpResponseError as exc:
            if error_code(exc) != "JobExists":
                raise translate(exc, what) from exc
        except AzureError as exc:
            raise translate(exc, what) from exc
        return JobCreateResult(job_id, False, self.get_job(job_id))

    def update_job(
        self,
        job_id: str,
        *,
        auto_complete: bool | None = None,
        priority: int | None = None,
        max_parallel_tasks: int | None = None,
    ) -> None:
        """Patch a job; only the given fields change."""
        mode = None
        if auto_complete is not None:
            mode = bm.BatchAllTasksCompleteMode.TERMINATE_JOB if auto_complete else bm.BatchAllTasksCompleteMode.NO_ACTION
        options = bm.BatchJobUpdateOptions(all_tasks_complete_mode=mode, priority=priority, max_parallel_tasks=max_parallel_tasks)
        with batch_call(self._what(f"update job '{job_id}'")):
            self._client.update_job(job_id, options)

    def set_auto_complete(self, job_id: str) -> None:
        """``onAllTasksComplete=terminatejob``: call after the tasks are added (see :mod:`.jobs`)."""
        self.update_job(job_id, auto_complete=True)

    def terminate_job(self, job_id: str, reason: str | None = None, *, force: bool = False) -> bool:
        """Start terminating a job; False if it is already terminated, terminating or gone."""
        # always a non-empty body: 15.1.0 fails to build the request without one ("No value for
        # given attribute" on content-type); "UserTerminate" is the service's own default reason
        options = BatchJobTerminateOptions(termination_reason=reason or "UserTerminate")
        return self._idempotent(
            f"terminate job '{job_id}'", _TERMINATED_JOB, "terminate_job", job_id, options, force=force or None
        )

    def delete_job(self, job_id: str, *, force: bool = False) -> bool:
        """Start deleting a job; False if it is already gone or being deleted."""
        return self._idempotent(f"delete job '{job_id}'", _DELETED_JOB, "delete_job", job_id, force=force or None)

    def list_jobs(self, *, state: str | None = None) -> list[JobInfo]:
        flt = f"state eq '{state}'" if state else None
        with batch_call(self._what("list jobs")):
            jobs = [job_info(j) for j in self._client.list_jobs(filter=flt, select=JOB_SELECT)]
        return [j for j in jobs if state is None or j.state == state]

    def job_task_counts(self, job_id: str) -> TaskCounts:
        with batch_call(self._what(f"task counts of job '{job_id}'")):
            c = self._client.get_job_task_counts(job_id).task_counts
        return TaskCounts(c.active or 0, c.running or 0, c.completed or 0, c.succeeded or 0, c.failed or 0)

    # -- job schedules -----------------------------------------------------------------------
    def get_job_schedule(self, schedule_id: str) -> JobScheduleInfo:
        with batch_call(self._what(f"get job schedule '{schedule_id}'")):
            return job_schedule_info(self._client.get_job_schedule(schedule_id))

    def create_job_schedule(
        self,
        schedule_id: str,
        pool_id: str,
        *,
        recurrence_interval: timedelta | float,
        settings: JobSettings | None = None,
        windows: bool = False,
        shell: bool = True,
        **options: Any,
    ) -> JobScheduleCreateResult:
        """Create a job schedule if absent (``JobScheduleExists`` → reported, not raised).
        Its jobs get no tasks but a job manager's (see :func:`job_schedule_create_options`); ``options``:
        ``job_manager_command``, ``do_not_run_until``, ``do_not_run_after``, ``start_window``,
        ... of :func:`.jobs.job_schedule_create_options`."""
        request = job_schedule_create_options(
            schedule_id,
            pool_id,
            recurrence_interval=as_timedelta(recurrence_interval),  # type: ignore[arg-type]  # None only for None, which the caller never passes
            settings=settings or JobSettings(),
            windows=windows,
            shell=shell,
            **options,
        )
        what = self._what(f"create job schedule '{schedule_id}' on pool '{pool_id}'")
        try:
            self._client.create_job_schedule(request)
            return JobScheduleCreateResult(schedule_id, True)
        except HttpResponseError as exc:
            if error_code(exc) != "JobScheduleExists":
                raise translate(exc, what) from exc
        except AzureError as exc:
            raise translate(exc, what) from exc
        return JobScheduleCreateResult(schedule_id, False, self.get_job_schedule(schedule_id))

    def terminate_job_schedule(self, schedule_id: str, *, force: bool = False) -> bool:
        """Start terminating a job schedule; False if already terminated or gone."""
        return self._idempotent(
            f"terminate job schedule '{schedule_id}'",
            _TERMINATED_SCHEDULE,
            "terminate_job_schedule",
            schedule_id,
            force=force or None,
        )

    def delete_job_schedule(self, schedule_id: str) -> bool:
        """Start deleting a job schedule (and its jobs); False if already gone."""
        return self._idempotent(f"delete job schedule '{schedule_id}'", _DELETED_SCHEDULE, "delete_job_schedule", schedule_id)

    def list_jobs_from_schedule(self, schedule_id: str, *, state: str | None = None) -> list[JobInfo]:
        """The jobs a schedule's recurrences created (``<schedule>:job-N``)."""
        flt = f"state eq '{state}'" if state else None
        with batch_call(self._what(f"list jobs of schedule '{schedule_id}'")):
            jobs = [job_info(j) for j in self._client.list_jobs_from_schedule(schedule_id, filter=flt, select=JOB_SELECT)]
        return [j for j in jobs if state is None or j.state == state]
