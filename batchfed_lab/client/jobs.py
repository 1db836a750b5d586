"""Federation jobs and job schedules once submitted: where they live, their queued and blocked
actions, a schedule's recurrence jobs, and terminating, deleting or zapping them."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING

from ..errors import ConfigError, NotFoundError
from ..proxy import remove_payload
from ..results import RemovalResult, tasks_not_added
from ..store import Action, ActionKind, ActionMethod, ActionState, Location, NewAction
from .base import ClientBase

if TYPE_CHECKING:
    import pandas as pd

    from ..batch import JobInfo

log = logging.getLogger("batchfed.client")


class JobsMixin(ClientBase):
    """Locations, actions and recurrences of federation jobs; enqueueing their removal."""

    def locations(self, federation_id: str, job_id: str | None = None, *, kind: str | None = None) -> list[Location]:
        """Placed jobs and job schedules with where they live."""
        self.store.get_federation(federation_id)
        return self.store.get_locations(federation_id, job_id, kind=kind)

    def queued(self, federation_id: str, job_id: str | None = None) -> list[Action]:
        """Actions not processed yet (queued, and blocked ones holding their place), FIFO per job id."""
        self.store.get_federation(federation_id)
        return self.store.list_queued(federation_id, job_id)

    def blocked(self, federation_id: str, job_id: str | None = None) -> list[Action]:
        """Blocked actions (with reason and per-pool verdicts), failed ones (with the error) and
        placed ones that left tasks out (see :func:`~batchfed_lab.results.tasks_not_added`)."""
        self.store.get_federation(federation_id)
        states = [ActionState.BLOCKED, ActionState.FAILED, ActionState.PLACED]
        return [
            a
            for a in self.store.list_actions(federation_id, target_id=job_id, states=states)
            if a.state is not ActionState.PLACED or tasks_not_added(a)
        ]

    def actions(self, federation_id: str, job_id: str | None = None) -> list[Action]:
        """Every action of the federation (or of one job id), in FIFO order per job id."""
        self.store.get_federation(federation_id)
        return self.store.list_actions(federation_id, target_id=job_id)

    def recurrences(self, federation_id: str, schedule_id: str) -> list[tuple[JobInfo, Location]]:
        """The jobs a placed job schedule's recurrences created, newest first, with where they run."""
        found = self.locations(federation_id, schedule_id, kind="job_schedule")
        if not found:
            raise NotFoundError(f"job schedule '{schedule_id}' has no location in federation '{federation_id}'")
        jobs = [(j, loc) for loc in found for j in self.account(loc.batch_service_url).list_jobs_from_schedule(loc.job_id)]
        return sorted(jobs, key=lambda j: j[0].creation_time.timestamp() if j[0].creation_time else 0.0, reverse=True)

    def jobs_frame(
        self,
        federation_id: str,
        job_id: str | None = None,
        *,
        schedule_id: str | None = None,
        queued: bool = False,
        blocked: bool = False,
        recurrences: bool = False,
        user: str | None = None,
    ) -> pd.DataFrame:
        """``jobs list`` as a DataFrame: locations (default), queued actions, blocked
        actions with their per-pool verdicts, or a job schedule's recurrence jobs
        (see :mod:`batchfed_lab.frames`). ``user``: only what that submitter enqueued."""
        from .. import frames

        if queued and blocked:
            raise ConfigError("--queued and --blocked cannot be combined")
        if recurrences:
            if not schedule_id or queued or blocked:
                raise ConfigError("--recurrences needs --jobschedule-id and goes without --queued / --blocked")
            return frames.recurrences_frame(schedule_id, self.recurrences(federation_id, schedule_id))
        if job_id and schedule_id:
            raise ConfigError("--job-id and --jobschedule-id cannot be combined")
        target = job_id or schedule_id
        kind = ActionKind.JOB_SCHEDULE if schedule_id else (ActionKind.JOB if job_id else None)

        def of_kind(actions: list[Action]) -> list[Action]:
            return [a for a in actions if (kind is None or a.kind is kind) and (user is None or a.submitter == user)]

        if queued:
            return frames.placements_frame(of_kind(self.queued(federation_id, target)))
        if blocked:
            return frames.blocked_frame(of_kind(self.blocked(federation_id, target)), self.store.list_pools(federation_id))
        placed = self.store.list_actions(federation_id, target_id=target, states=[ActionState.PLACED])
        owners = {a.id: a.submitter for a in placed}
        df = frames.locations_frame(self.locations(federation_id, target, kind=kind.value if kind else None), owners)
        return df if user is None else df[df["submitter"] == user].reset_index(drop=True)

    def _remove(
        self,
        method: ActionMethod,
        federation_id: str,
        job_ids: Iterable[str],
        schedule_ids: Iterable[str],
        all_jobs: bool,
        all_schedules: bool,
        force: bool,
    ) -> RemovalResult:
        self.store.get_federation(federation_id)
        targets: list[tuple[ActionKind, str]] = [(ActionKind.JOB, j) for j in job_ids]
        targets += [(ActionKind.JOB_SCHEDULE, s) for s in schedule_ids]
        if all_jobs or all_schedules:
            if targets:
                raise ConfigError("--all-jobs / --all-jobschedules cannot be combined with ids")
            for loc in self.store.get_locations(federation_id):
                wanted = (loc.kind is ActionKind.JOB and all_jobs) or (loc.kind is ActionKind.JOB_SCHEDULE and all_schedules)
                if wanted and (loc.kind, loc.job_id) not in targets:
                    targets.append((loc.kind, loc.job_id))  # the ids the user knows, never hashes of them
        elif not targets:
            raise ConfigError("name at least one --job-id or --jobschedule-id, or use --all-jobs / --all-jobschedules")
        result = RemovalResult()
        new = []
        for kind, target in targets:
            if not force and not self.store.get_locations(federation_id, target, kind=kind):
                result.skipped.append(target)
                result.warnings.append(
                    f"{kind.value} {target} has no location in {federation_id}: skipped (use --force to enqueue anyway)"
                )
                log.info(result.warnings[-1])
                continue
            new.append(NewAction(kind=kind, method=method, target_id=target, payload=remove_payload(force=force)))
        if new:
            result.actions = self.store.enqueue(federation_id, new)
        return result

    def terminate(
        self,
        federation_id: str,
        job_ids: Iterable[str] = (),
        *,
        schedule_ids: Iterable[str] = (),
        all_jobs: bool = False,
        all_schedules: bool = False,
        force: bool = False,
    ) -> RemovalResult:
        """Enqueue terminate actions (every location of each job id)."""
        return self._remove(ActionMethod.TERMINATE, federation_id, job_ids, schedule_ids, all_jobs, all_schedules, force)

    def delete(
        self,
        federation_id: str,
        job_ids: Iterable[str] = (),
        *,
        schedule_ids: Iterable[str] = (),
        all_jobs: bool = False,
        all_schedules: bool = False,
        force: bool = False,
    ) -> RemovalResult:
        """Enqueue delete actions (every location of each job id; locations are then forgotten)."""
        return self._remove(ActionMethod.DELETE, federation_id, job_ids, schedule_ids, all_jobs, all_schedules, force)

    def zap(self, federation_id: str, unique_id: str) -> Action:
        """Drop one queued or blocked action for good; the job's next action can flow."""
        self.store.get_federation(federation_id)
        return self.store.zap(federation_id, unique_id)
