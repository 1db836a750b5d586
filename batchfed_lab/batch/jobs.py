"""Jobs and job schedules: our settings → SDK create options, service objects → plain records,
and the merge-compatibility rule of SPEC §5 (same pool, same job-preparation command, same
task-failure policy, dependencies on both or neither, job still active).

A job is always created with ``onAllTasksComplete=noaction``: Batch terminates a job with
``terminatejob`` and *no tasks* at once, so ``auto_complete`` is applied after the tasks are
in (:meth:`~batchfed_lab.batch.adapter.BatchAccount.set_auto_complete`), as the original did.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from azure.batch import models as bm

from ._util import enum_text
from .tasks import command_line

if TYPE_CHECKING:
    from ..config.jobs import JobSpecification

__all__ = [
    "JOB_SELECT",
    "SCHEDULE_TASKS_METADATA",
    "JobCreateResult",
    "JobInfo",
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
# A job schedule's task list: REST task JSON in the job specification's metadata. localbatch
# adds these tasks to every job the schedule creates; on Azure a job manager task must do it.
SCHEDULE_TASKS_METADATA = "batchfed_tasks"
# states in which a job no longer takes new tasks
_CLOSED = frozenset({"completed", "terminating", "deleting"})


@dataclass(frozen=True)
class JobSettings:
    """What a Batch job is created with, besides its id and pool."""

    uses_task_dependencies: bool = False
    job_preparation_command: str | None = None  # shell text, wrapped like task commands
    on_task_failure: str = "noaction"  # noaction | performexitoptionsjobaction
    priority: int = 0
    auto_complete: bool = False  # applied after the tasks are added (see module docstring)

    @classmethod
    def from_spec(cls, spec: "JobSpecification") -> "JobSettings":
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
    def created(cls, job_id: str, pool_id: str, settings: JobSettings, *, windows: bool = False, shell: bool = True) -> "JobInfo":
        """The job :func:`job_create_options` describes, as the service reports it once created."""
        return cls(
            id=job_id,
            state="active",
            pool_id=pool_id,
            job_preparation_command_line=settings.preparation_command_line(windows=windows, shell=shell),
            on_task_failure=settings.on_task_failure,
            uses_task_dependencies=settings.uses_task_dependencies,
        )

    def merge_conflict(
        self, pool_id: str, settings: JobSettings, *, windows: bool = False, shell: bool = True
    ) -> str | None:
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
    pool_id = (job.pool_info.pool_id if job.pool_info else None) or (
        job.execution_info.pool_id if job.execution_info else None
    )
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
    tasks: Sequence[bm.BatchTaskCreateOptions] = (),
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
    """A recurring job. ``tasks`` travel in the job specification's metadata
    (:data:`SCHEDULE_TASKS_METADATA`); ``job_manager_command`` adds a job manager task.

    Each recurrence's job terminates when all its tasks (the job manager included) are done,
    so the next recurrence can start; with ``kill_job_on_completion`` the job ends as soon as
    the manager exits instead.
    """
    manager = None
    if job_manager_command:
        manager = bm.BatchJobManagerTask(
            id=job_manager_id,
            command_line=command_line(job_manager_command, windows=windows, shell=shell),
            environment_settings=[
                bm.EnvironmentSetting(name=k, value=v) for k, v in (job_manager_environment or {}).items()
            ]
            or None,
            kill_job_on_completion=kill_job_on_completion,
        )
    job_metadata = (
        {SCHEDULE_TASKS_METADATA: json.dumps([t.as_dict() for t in tasks], separators=(",", ":"))} if tasks else None
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
            all_tasks_complete_mode=bm.BatchAllTasksCompleteMode.TERMINATE_JOB,
            job_manager_task=manager,
            metadata=_metadata(job_metadata),
            **_job_fields(pool_id, settings, windows, shell),
        ),
        metadata=_metadata(metadata),
    )
