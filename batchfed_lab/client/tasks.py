"""The tasks of a federation job (or of a job schedule's recurrences) and their output, from
whichever pool runs them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ..errors import BatchfedError, ConfigError, NotFoundError
from ..results import FederatedTask, TextOutput
from ..store import ActionKind, Location
from .jobs import JobsMixin

if TYPE_CHECKING:
    import pandas as pd


def on_batch(job_id: str, loc: Location) -> str:
    """The id Batch knows ``job_id`` by where ``loc`` places it: a recurrence's job id as it
    is; a job's own id, or the one a move derived when it went to another pool of an account
    that still holds the job (see :attr:`Location.batch_job_id`)."""
    return loc.batch_id if loc.kind is ActionKind.JOB else job_id


class TasksMixin(JobsMixin):
    """Tasks and their output; a job's pools are found from its locations (and its queue when unplaced)."""

    def _job_locations(self, federation_id: str, job_id: str) -> list[Location]:
        # a recurrence's job: Batch names it <schedule>:job-<n> and runs it on the schedule's pool
        schedule_id, sep, n = job_id.rpartition(":job-")
        if sep and schedule_id and n.isdigit():
            found = self.locations(federation_id, schedule_id, kind="job_schedule")
            if found:
                return found
        found = self.locations(federation_id, job_id, kind="job")
        if found:
            return found
        waiting = self.queued(federation_id, job_id)
        if waiting:
            a = waiting[0]
            why = f": {a.reason}" if a.reason else ""
            raise NotFoundError(f"job '{job_id}' is not placed yet in federation '{federation_id}' ({a.state.value}{why})")
        raise NotFoundError(f"job '{job_id}' has no location in federation '{federation_id}'")

    def _jobs_of(self, federation_id: str, job_id: str | None, schedule_id: str | None) -> list[tuple[str, Location]]:
        """(job id, where it lives) of one job, or of every recurrence job of a schedule (newest first)."""
        if bool(job_id) == bool(schedule_id):
            raise ConfigError("name one of --job-id or --jobschedule-id")
        if job_id:
            return [(job_id, loc) for loc in self._job_locations(federation_id, job_id)]
        return [(job.id, loc) for job, loc in self.recurrences(federation_id, str(schedule_id))]

    def tasks(self, federation_id: str, job_id: str | None = None, *, schedule_id: str | None = None) -> list[FederatedTask]:
        """Tasks of a federation job on every pool it lives on; a recurrence's job id
        (``<schedule>:job-<n>``) works too, and ``schedule_id`` gives those of every recurrence."""
        rows = []
        for jid, loc in self._jobs_of(federation_id, job_id, schedule_id):
            for t in self.account(loc.batch_service_url).list_tasks(on_batch(jid, loc)):
                rows.append(FederatedTask(jid, loc.pool_id, loc.account, loc.location, t))
        return rows

    def current_tasks(self, federation_id: str, job_id: str) -> list[FederatedTask]:
        """A job's tasks as they stand: a task that moved counts on the pool it went to, not
        on the pool it left (where the move ended it); tasks that finished before stay."""
        rows = self.tasks(federation_id, job_id)
        live = {loc.pool_id for loc in self.locations(federation_id, job_id, kind="job") if loc.terminated_at is None}
        if not live:
            return rows
        there = {r.task.id for r in rows if r.pool_id in live}
        return [r for r in rows if r.pool_id in live or r.task.id not in there]

    def tasks_frame(self, federation_id: str, job_id: str | None = None, *, schedule_id: str | None = None) -> pd.DataFrame:
        """Tasks of a job or of a schedule's recurrences (see :func:`batchfed_lab.frames.tasks_frame`)."""
        from ..frames import tasks_frame

        return tasks_frame(self.tasks(federation_id, job_id, schedule_id=schedule_id))

    def task_output(
        self,
        federation_id: str,
        job_id: str | None,
        task_id: str,
        stream: str = "stdout",
        *,
        schedule_id: str | None = None,
        max_bytes: int | None = 1 << 20,
    ) -> TextOutput:
        """A task's ``stdout`` or ``stderr`` (at most ``max_bytes``), from whichever of the
        job's pools has the task; with ``schedule_id``, from the newest recurrence that has it."""
        if stream not in ("stdout", "stderr"):
            raise ConfigError(f"stream {stream!r}: use stdout or stderr")
        last: BatchfedError | None = None
        # a task that moved lives on the pool it left too (ended there): the live pool first
        for jid, loc in sorted(self._jobs_of(federation_id, job_id, schedule_id), key=lambda p: p[1].terminated_at is not None):
            try:
                account = self.account(loc.batch_service_url)
                return TextOutput(account.task_output(on_batch(jid, loc), task_id, stream, max_bytes=max_bytes))
            except BatchfedError as exc:  # the task lives on another of the job's pools
                last = exc
        if last is None:
            raise NotFoundError(f"job schedule '{schedule_id}' has no recurrence job yet")
        raise last

    def task_output_bytes(
        self, federation_id: str, job_id: str, task_id: str, stream: str, offset: int, *, max_bytes: int
    ) -> bytes:
        """Bytes of a task's ``stdout`` or ``stderr`` from ``offset`` on (at most ``max_bytes``):
        a ranged read, so following a log moves only what it gained (``b""``: nothing new)."""
        if stream not in ("stdout", "stderr"):
            raise ConfigError(f"stream {stream!r}: use stdout or stderr")
        last: BatchfedError | None = None
        for jid, loc in sorted(self._jobs_of(federation_id, job_id, None), key=lambda p: p[1].terminated_at is not None):
            try:
                return self.account(loc.batch_service_url).read_task_file(
                    on_batch(jid, loc), task_id, f"{stream}.txt", offset=offset, max_bytes=max_bytes
                )
            except BatchfedError as exc:  # the task lives on another of the job's pools
                last = exc
        assert last is not None  # _jobs_of names at least one location or raises
        raise last

    def task_logs(
        self,
        federation_id: str,
        job_id: str,
        *,
        follow: bool = False,
        poll: float = 1.0,
        streams: Sequence[str] = ("stdout", "stderr"),
    ) -> Any:
        """Every task's stdout and stderr as ``[job/task] line`` text; with ``follow``, an
        iterator of new text as the files grow, ending when every task has completed
        (see :class:`batchfed_lab.outcomes.TaskLogs`)."""
        from ..outcomes import TaskLogs

        self._job_locations(federation_id, job_id)  # not placed: say so now, not on the first read
        logs = TaskLogs(self, federation_id, [job_id], poll=poll, streams=streams)
        return logs if follow else TextOutput(logs.snapshot())
