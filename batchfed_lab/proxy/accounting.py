"""Installing the accountant (batchfed_lab.accounting) into a proxy: the store's claim order,
the processor's placement gate, the heartbeat that publishes usage, and the Batch reads that
tell it what placed jobs really ran (the leader reconciles a few jobs every few seconds)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ..accounting.accountant import Accountant
from ..accounting.published import last_published
from ..accounting.usage import Finished, TaskRun
from ..errors import BatchError

log = logging.getLogger("batchfed.proxy")

if TYPE_CHECKING:
    from ..config.accounting import Accounting
    from .daemon import ProxyDaemon


def probe_in(account_for: Callable[[str], Any]) -> Callable[[str, str], Finished | None]:
    """Whether Batch is done with a placed job — gone, completed (or on its way out), or with
    no task left active or running — and then its tasks' run times (one task listing per
    finished job). A service that does not answer says not yet."""

    def probe(service_url: str, job_id: str) -> Finished | None:
        account = account_for(service_url)
        try:
            if account.get_job(job_id).state not in ("completed", "terminating", "deleting"):
                counts = account.job_task_counts(job_id)
                if counts.active + counts.running > 0 or counts.completed == 0:
                    return None
            tasks = account.list_tasks(job_id)
        except BatchError as exc:
            if exc.status == 404:
                return Finished(None)
            log.info("accounting: cannot tell whether job %s finished: %s", job_id, exc)
            return None
        return Finished(tuple(TaskRun(_epoch(t.start_time), _epoch(t.end_time)) for t in tasks))

    return probe


def _epoch(at: datetime | None) -> float | None:
    return None if at is None else at.timestamp()


def install(daemon: ProxyDaemon, cfg: Accounting) -> Accountant:
    accountant = Accountant(cfg, info=daemon.info, probe=probe_in(daemon.processor.account_for))
    accountant.restore(last_published(daemon.store))  # and again when it becomes the leader
    accountant.publish()  # its quotas and shares are visible before the first placement
    daemon.store.head_order = accountant.order
    daemon.processor.gate = accountant
    return accountant
