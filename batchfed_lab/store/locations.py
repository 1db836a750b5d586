"""The locations part of the store interface: where each job id lives (which pools, which
unique ids were served there, when it was terminated)."""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Any

from ..errors import NotFoundError
from . import rules
from .primitives import Located, LocationKey, StorePrimitives
from .records import ActionKind, Location, LocationUpdate, epoch, utc


class JobLocations(StorePrimitives):
    """Validates and sorts; each change is one ``_change_location`` read-modify-write."""

    def record_location(
        self,
        federation_id: str,
        job_id: str,
        *,
        kind: ActionKind | str,
        batch_service_url: str,
        pool_id: str,
        account: str | None = None,
        location: str | None = None,
        unique_id: str | None = None,
        at: datetime | None = None,
        batch_job_id: str | None = None,
    ) -> Location:
        """Create the location of a job id on a pool if needed, and record that
        ``unique_id`` was served there at ``at`` (idempotent for retries); ``batch_job_id``:
        the id of the job on Batch when it is not ``job_id`` (kept once recorded)."""
        update = LocationUpdate(batch_service_url, pool_id, account, location, unique_id, at, batch_job_id)
        where, change = self._location_change(federation_id, job_id, kind, update)
        return self._change_location(*where, change)  # type: ignore[return-value]  # this change never deletes

    def _location_change(self, federation_id: str, job_id: str, kind: ActionKind | str, update: LocationUpdate) -> Located:
        """The key and the read-modify-write of :meth:`record_location` (validated)."""
        fid, job, k, url, pid = self._location_key(federation_id, job_id, kind, update.batch_service_url, update.pool_id)
        uid = None if update.unique_id is None else rules.action_id(update.unique_id)
        when = epoch(update.at)

        def change(old: Location | None, now: float) -> Location:
            base = old or Location(fid, job, k, url, pid, update.account, update.location, created_at=utc(now))
            if base.batch_job_id is None and update.batch_job_id and update.batch_job_id.lower() != job.lower():
                base = dataclasses.replace(base, batch_job_id=rules.target_id(update.batch_job_id))
            return rules.add_unique_id(base, uid, when if when is not None else now)

        return (fid, job, k, url, pid), change

    def get_locations(
        self, federation_id: str, job_id: str | None = None, *, kind: ActionKind | str | None = None
    ) -> list[Location]:
        """Locations of one job id (every pool), or of the whole federation."""
        fid = rules.federation_id(federation_id)
        key = None if job_id is None else rules.target_key(rules.target_id(job_id))
        found = self._get_locations(fid, key)
        if kind is not None:
            found = [loc for loc in found if loc.kind is rules.kind(kind)]
        return sorted(
            found, key=lambda loc: (loc.job_id.lower(), loc.kind.value, loc.batch_service_url.lower(), loc.pool_id.lower())
        )

    def mark_terminated(
        self,
        federation_id: str,
        job_id: str,
        *,
        kind: ActionKind | str,
        batch_service_url: str,
        pool_id: str,
        at: datetime | None = None,
    ) -> Location:
        """Set the terminate time (kept if already set: terminating twice is not an error)."""
        fid, job, k, url, pid = self._location_key(federation_id, job_id, kind, batch_service_url, pool_id)
        when = epoch(at)

        def change(old: Location | None, now: float) -> Location:
            if old is None:
                raise NotFoundError(f"job {job!r} has no location on pool {pid!r} at {url}")
            if old.terminated_at is not None:
                return old
            return dataclasses.replace(old, terminated_at=utc(when if when is not None else now))

        return self._change_location(fid, job, k, url, pid, change)  # type: ignore[return-value]  # this change never deletes

    def delete_location(
        self, federation_id: str, job_id: str, *, kind: ActionKind | str, batch_service_url: str, pool_id: str
    ) -> bool:
        """Remove a location; False when there was none (already gone is not an error)."""
        fid, job, k, url, pid = self._location_key(federation_id, job_id, kind, batch_service_url, pool_id)
        existed: list[bool] = []

        def change(old: Location | None, now: float) -> None:
            existed.append(old is not None)
            return None

        self._change_location(fid, job, k, url, pid, change)
        return bool(existed and existed[-1])

    @staticmethod
    def _location_key(fid: str, job_id: str, kind: Any, url: str, pid: str) -> LocationKey:
        k = rules.kind(kind)
        job = rules.target_id(job_id, "job schedule id" if k is ActionKind.JOB_SCHEDULE else "job id")
        return rules.federation_id(fid), job, k, rules.service_url(url), rules.pool_id(pid)
