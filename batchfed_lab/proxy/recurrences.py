"""Each recurrence's task group: Batch creates a job schedule's jobs, the proxy adds their tasks.

Batch (Azure and localbatch alike) creates a schedule's job ``<schedule>:job-N`` with what the
job specification holds. The schedules the proxy places carry no job manager, so each
recurrence's job starts empty, with ``onAllTasksComplete=noaction`` (Batch would end a job
with no tasks at once). The leader looks at the active jobs of every schedule it placed (the
schedule locations in the store), adds the schedule's task group to each job still on
``noaction``, then sets ``terminatejob``: the job ends when its tasks are done and the next
recurrence can start.

A schedule's ``input_data`` / ``output_data`` are mapped per recurrence job, as a job's are at
placement: URLs minted then (a SAS lives from the job's start, not the schedule's), and
``{job_id}`` in an output path is the recurrence job's id (``<schedule>:job-N``).

Nothing a restart or a failover needs is held in memory: ``terminatejob`` on a job is the
record that it got its tasks, read back from Batch. A proxy that dies between the two calls
leaves the job on ``noaction``; the next leader adds the group again, and every task already
there answers ``TaskExists`` — success, so no task is added twice.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from ..config.jobs import TaskDefinition
from ..data.mapping import map_tasks, sas_lifetime
from ..errors import BatchfedError, ConfigError
from ..store.base import Store
from ..store.records import ActionKind, Location
from .payload import parse_add
from .processor import Counters
from .storage import StorageResolver

log = logging.getLogger("batchfed.proxy")


@dataclass(frozen=True)
class TaskGroup:
    """What one placed schedule adds to each of its jobs (from its add action: immutable)."""

    tasks: tuple[TaskDefinition, ...]
    windows: bool
    identity: str | None = None  # the pool's managed identity for storage, if it has one

    @property
    def has_data(self) -> bool:
        return any(t.inputs or t.outputs for t in self.tasks)


class RecurrenceTasks:
    """Adds the task group of every placed job schedule to each job its recurrences create."""

    def __init__(
        self,
        store: Store,
        account_for: Callable[[str], Any],
        counters: Counters | None = None,
        *,
        storage: StorageResolver | None = None,
    ):
        self.store = store
        self.account_for = account_for
        self.storage = storage  # the storage accounts of input_data / output_data (None: none)
        self.counters = counters or Counters()
        self._groups: dict[tuple[str, str], TaskGroup] = {}  # (federation, action id) → its group
        self._lock = threading.Lock()

    def step(self, federations: Iterable[str]) -> int:
        """One look at every live schedule of ``federations``; how many jobs got their tasks.
        A schedule that cannot be served now (Batch or the store away) is tried next step."""
        filled = 0
        for fid in list(federations):
            try:
                locations = self.store.get_locations(fid, kind=ActionKind.JOB_SCHEDULE)
            except BatchfedError as exc:
                log.warning("listing the job schedules of %s failed: %s", fid, exc)
                continue
            for loc in locations:
                if loc.terminated_at is not None or not loc.unique_ids:
                    continue
                try:
                    filled += self._serve(loc)
                except BatchfedError as exc:
                    log.warning("job schedule %s on pool %s: recurrence tasks not added yet: %s", loc.job_id, loc.pool_id, exc)
        return filled

    def _serve(self, loc: Location) -> int:
        account = self.account_for(loc.batch_service_url)
        waiting = [
            j for j in account.list_jobs_from_schedule(loc.job_id, state="active") if j.on_all_tasks_complete == "noaction"
        ]
        for job in waiting:
            self._fill(account, loc, job.id)
        return len(waiting)

    def _fill(self, account: Any, loc: Location, job_id: str) -> None:
        group = self._group(loc)
        report = account.add_tasks(job_id, self._with_data(group, loc, job_id), windows=group.windows)
        if report.failed:
            self.counters.add("task_add_failures", len(report.failed))
            log.warning(
                "job schedule %s: %d task(s) not added to %s: %s", loc.job_id, len(report.failed), job_id, report.summary()
            )
        # also after per-task failures: a job left on noaction would hold back every later recurrence
        account.set_auto_complete(job_id)
        self.counters.add("recurrences")
        log.info("job schedule %s: recurrence job %s got its tasks (%s)", loc.job_id, job_id, report.summary())

    def _with_data(self, group: TaskGroup, loc: Location, job_id: str) -> list[TaskDefinition]:
        """The group's tasks with resource and output files for ``job_id``, minted now."""
        if not group.has_data:
            return list(group.tasks)
        if self.storage is None:
            raise ConfigError(f"job schedule '{loc.job_id}' has input_data / output_data but this proxy has no storage accounts")
        access = self.storage.access(group.identity, sas_lifetime(group.tasks))
        return map_tasks(job_id, group.tasks, access)

    def _group(self, loc: Location) -> TaskGroup:
        """The task group of the add action last served at ``loc`` (read once per process)."""
        key = (loc.federation_id, loc.unique_ids[-1])
        with self._lock:
            group = self._groups.get(key)
        if group is None:
            action = self.store.get_action(*key)
            spec = parse_add(action.payload, f"action {action.id}").job
            pool = action.progress.get("pool") or {}
            group = TaskGroup(tuple(spec.task_definitions), bool(pool.get("windows")), pool.get("identity"))
            with self._lock:
                self._groups[key] = group
        return group
