"""Jobs in: ``submit`` validates jobs.yaml and enqueues its jobs; ``explain`` dry-runs their
placement against live pool capacity."""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

from ..config import JobsConfig
from ..config.jobs import NON_UNIQUE_TASK_ID_MAX, JobSpecification
from ..errors import ConfigError, ConflictError
from ..proxy import add_payload
from ..results import Explanation, Submission
from ..scheduler import constraint_matrix, decide_placement, job_homes, job_requirements, summarize
from ..store import ActionKind, ActionMethod, Federation, NewAction
from .inputs import as_jobs, os_defaults
from .pools import PoolsMixin
from .tasks import TasksMixin

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger("batchfed.client")


class SubmitMixin(TasksMixin, PoolsMixin):
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
            if fed.unique_job_ids and self.store.job_id_in_use(fed.id, job.id):
                raise ConflictError(f"job id '{job.id}' already exists in federation '{fed.id}' (unique job ids)")

    def submit(self, federation_id: str, jobs: Any, *, pool_config: Any = None, name: str | None = None) -> Submission:
        """Validate the jobs (file path, YAML text, dict or model), turn each job / job
        schedule into an action and enqueue them all at once. Invalid input enqueues nothing.
        ``name`` is the source name used in error messages (e.g. ``<cell>``)."""
        fed = self.store.get_federation(federation_id)
        cfg = as_jobs(jobs, name)
        defaults = os_defaults(pool_config)
        self._check_submittable(fed, cfg)
        new = [
            NewAction(kind=job.kind, method=ActionMethod.ADD, target_id=job.id, payload=add_payload(job, **defaults))
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
        out = []
        for job in cfg.job_specifications:
            need, now = summarize(job), time.time()
            # the proxy's own rules (decide_placement), with where the store locates the job id
            req = job_requirements(job, **defaults)
            decision = decide_placement(
                req, snaps, now, policy, job_id=job.id, homes=self._job_homes(fed.id, job), unique_job_ids=fed.unique_job_ids
            )
            matrix = constraint_matrix(job.federation_constraints, need, snaps, now, **defaults)
            rules = tuple(job.federation_constraints.replacement.summary()) if job.kind == ActionKind.JOB.value else ()
            out.append(Explanation(fed.id, job.id, job.kind, decision, tuple(snaps), tuple(matrix), rules))
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
