"""Jobs in: ``submit`` validates jobs.yaml and enqueues its jobs; ``explain`` dry-runs their
placement against live pool capacity."""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

from ..accounting.cost import candidate_costs
from ..accounting.demand import charged_hours
from ..accounting.prices import default_prices
from ..accounting.published import assumed_hours, explain_wait, last_published
from ..config import JobsConfig
from ..config.jobs import NON_UNIQUE_TASK_ID_MAX, JobSpecification
from ..config.workspace import LOCAL_STORAGE
from ..data.locality import account_regions
from ..errors import ConfigError, ConflictError
from ..proxy import add_payload
from ..results import Explanation, Submission
from ..scheduler import constraint_matrix, decide_placement, job_homes, job_requirements, summarize
from ..store import ActionKind, ActionMethod, Federation, NewAction
from .inputs import as_jobs, os_defaults
from .outputs import OutputsMixin
from .pools import PoolsMixin

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger("batchfed.client")


class SubmitMixin(OutputsMixin, PoolsMixin):
    """Submit and explain: a :class:`Submission` watches its jobs' tasks, and ``explain`` reads
    the pools' live capacity."""

    def _check_submittable(self, fed: Federation, jobs: JobsConfig) -> None:
        for i, job in enumerate(jobs.job_specifications):
            if not fed.unique_job_ids and job.uses_dependencies:
                for t in job.task_definitions:
                    if len(t.id) > NON_UNIQUE_TASK_ID_MAX:
                        raise ConfigError(
                            f"jobs: job_specifications[{i}] task id '{t.id}' has {len(t.id)} characters; "
                            f"federation '{fed.id}' allows non-unique job ids, so task ids with dependencies "
                            f"may have at most {NON_UNIQUE_TASK_ID_MAX}"
                        )
            self._check_storage_accounts(i, job)
            if fed.unique_job_ids and self.store.job_id_in_use(fed.id, job.id):
                raise ConflictError(f"job id '{job.id}' already exists in federation '{fed.id}' (unique job ids)")

    def _check_storage_accounts(self, index: int, job: JobSpecification) -> None:
        """input_data / output_data name storage accounts settings.yaml knows (or ``local``)."""
        known = {LOCAL_STORAGE, *self.workspace.settings.storage_accounts}
        used = {i.storage_account_settings for t in job.task_definitions for i in t.inputs}
        used |= {o.storage_account_settings for t in job.task_definitions for o in t.outputs}
        for name in sorted(used - known):
            raise ConfigError(
                f"jobs: job_specifications[{index}] storage_account_settings '{name}' is not a storage account of "
                f"{self.workspace.path / 'settings.yaml'} (known: {', '.join(sorted(known))})"
            )

    def data_regions(self, job: JobSpecification) -> dict[str, str | None] | None:
        """Where the job's inputs live (storage account → region), as the proxy reads it."""
        return account_regions(self.workspace.settings, job.input_accounts) if job.input_accounts else None

    def submit(self, federation_id: str, jobs: Any, *, pool_config: Any = None, name: str | None = None) -> Submission:
        """Validate the jobs (file path, YAML text, dict or model), turn each job / job
        schedule into an action and enqueue them all at once. Invalid input enqueues nothing.
        ``name`` is the source name used in error messages (e.g. ``<cell>``)."""
        fed = self.store.get_federation(federation_id)
        cfg = as_jobs(jobs, name)
        defaults = os_defaults(pool_config)
        self._check_submittable(fed, cfg)
        new = [
            NewAction(
                kind=job.kind,
                method=ActionMethod.ADD,
                target_id=job.id,
                payload=add_payload(job, **defaults),
                priority=job.priority,
            )
            for job in cfg.job_specifications
        ]
        actions = self.store.enqueue(fed.id, new)
        log.info("submitted %d action(s) to %s", len(actions), fed.id)
        return Submission(self, fed.id, actions)

    def explain(
        self, federation_id: str, jobs: Any, *, pool_config: Any = None, policy: str = "largest-fit", name: str | None = None
    ) -> list[Explanation]:
        """Dry run: for each job, the per-pool verdicts and the pool chosen now. Enqueues
        nothing. Blackouts are those the proxy publishes (none when it publishes none)."""
        fed = self.store.get_federation(federation_id)
        cfg = as_jobs(jobs, name)
        defaults = os_defaults(pool_config)
        snaps = self.pool_snapshots(fed.id)
        published = last_published(self.store)
        prices = default_prices()
        out = []
        for job in cfg.job_specifications:
            need, now = summarize(job), time.time()
            # the proxy's own rules (decide_placement), with where the store locates the job id
            regions = self.data_regions(job)
            req = job_requirements(job, **defaults, data_regions=regions)
            decision = decide_placement(
                req, snaps, now, policy, job_id=job.id, homes=self._job_homes(fed.id, job), unique_job_ids=fed.unique_job_ids
            )
            hours = charged_hours(job, assumed_hours(published))
            costs = candidate_costs(job, snaps, decision, prices, hours=hours)
            if decision.pool is not None and published:  # the proxy's quotas and budgets, as it publishes them
                chosen = next(s for s in snaps if s.key == decision.pool)
                wait = explain_wait(published, self.store.submitter.name, fed.id, job, chosen, decision, costs[chosen.key][1])
                decision = wait or decision
            matrix = constraint_matrix(job.federation_constraints, need, snaps, now, **defaults, data_regions=regions)
            out.append(Explanation(fed.id, job.id, job.kind, decision, tuple(snaps), tuple(matrix), costs))
        return out

    def _job_homes(self, federation_id: str, job: JobSpecification) -> dict[str, str]:
        """Where the store locates a job's id (none for a job schedule), as the proxy reads it."""
        if job.kind != ActionKind.JOB.value:
            return {}
        locations = self.store.get_locations(federation_id, job.id, kind=ActionKind.JOB)
        return job_homes((loc.batch_service_url, loc.pool_id) for loc in locations)

    def explain_frame(self, federation_id: str, jobs: Any, **kwargs: Any) -> pd.DataFrame:
        from ..frames import verdicts_frame

        return verdicts_frame(self.explain(federation_id, jobs, **kwargs))
