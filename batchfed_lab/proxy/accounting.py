"""Installing the accountant (batchfed_lab.accounting) into a proxy: the store's claim order,
the processor's placement gate, and the heartbeat that publishes usage."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..accounting.accountant import Accountant
from ..accounting.published import last_published
from ..errors import BatchError

log = logging.getLogger("batchfed.proxy")

if TYPE_CHECKING:
    from ..config.accounting import Accounting
    from .daemon import ProxyDaemon


def finished_in(account_for: Callable[[str], Any]) -> Callable[[str, str], bool]:
    """Whether Batch is done with a placed job: gone, completed (or on its way out), or with
    no task left active or running. A service that does not answer says no."""

    def finished(service_url: str, job_id: str) -> bool:
        account = account_for(service_url)
        try:
            if account.get_job(job_id).state in ("completed", "terminating", "deleting"):
                return True
            counts = account.job_task_counts(job_id)
        except BatchError as exc:
            if exc.status == 404:
                return True
            log.info("quota: cannot tell whether job %s finished: %s", job_id, exc)
            return False
        return counts.active + counts.running == 0 and counts.completed > 0

    return finished


def install(daemon: ProxyDaemon, cfg: Accounting) -> Accountant:
    accountant = Accountant(cfg, info=daemon.info, finished=finished_in(daemon.processor.account_for))
    accountant.restore(last_published(daemon.store))  # and again when it becomes the leader
    accountant.publish()  # its quotas and shares are visible before the first placement
    daemon.store.head_order = accountant.order
    daemon.processor.gate = accountant
    return accountant
