"""Creating, destroying and describing federations."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING

from ..results import DestroyResult, FederationSummary
from ..store import Federation
from .base import ClientBase

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger("batchfed.client")


class FederationsMixin(ClientBase):
    """Federations: their settings, their pools and action counts."""

    def create_federation(self, federation_id: str, *, unique_job_ids: bool = True, force: bool = False) -> Federation:
        """Create a federation; one that exists already is an error unless ``force``."""
        return self.store.create_federation(federation_id, unique_job_ids=unique_job_ids, force=force)

    def destroy_federation(self, federation_id: str, *, delete_jobs: bool = False) -> DestroyResult:
        """Remove the federation and all its metadata. Its Batch jobs are kept (a warning counts
        them) unless ``delete_jobs``: then each job and job schedule it placed is deleted first.
        Warns when actions were still queued or blocked."""
        from ..store import ActionKind

        deleted = 0
        if delete_jobs:
            for loc in self.store.get_locations(federation_id, None):
                acct = self.account(loc.batch_service_url)
                gone = (
                    acct.delete_job_schedule(loc.job_id) if loc.kind is ActionKind.JOB_SCHEDULE else acct.delete_job(loc.batch_id)
                )
                deleted += int(gone)
        report = self.store.destroy_federation(federation_id)
        warnings = []
        if report.active_actions:
            warnings.append(f"{report.active_actions} queued or blocked action(s) of {report.federation_id} were dropped")
        if report.locations and not delete_jobs:
            warnings.append(
                f"{report.locations} Batch job(s) of {report.federation_id} still exist and are no longer tracked; "
                f"`destroy {report.federation_id} --delete-jobs` deletes them with the federation"
            )
        for w in warnings:
            log.info(w)  # returned to the caller too: surfaces show it once
        return DestroyResult(report, tuple(warnings), deleted)

    def federations(self) -> list[Federation]:
        return self.store.list_federations()

    def federation(self, federation_id: str) -> Federation:
        return self.store.get_federation(federation_id)

    def describe_federations(self, federation_ids: Iterable[str] = ()) -> list[FederationSummary]:
        """Federations (all, or the ones named; an unknown one is an error) with their pools
        and action counts."""
        wanted = list(federation_ids)
        feds = [self.store.get_federation(f) for f in wanted] if wanted else self.store.list_federations()
        return [FederationSummary(f, tuple(self.store.list_pools(f.id)), self.store.counts(f.id)) for f in feds]

    def federations_frame(self, federation_ids: Iterable[str] = ()) -> pd.DataFrame:
        from ..frames import federations_frame

        return federations_frame(self.describe_federations(federation_ids))
