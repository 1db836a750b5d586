"""Installing the accountant (batchfed_lab.accounting) into a proxy: the store's claim order,
the processor's placement gate, and the heartbeat that publishes usage."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..accounting.accountant import Accountant
from ..accounting.published import last_published

if TYPE_CHECKING:
    from ..config.accounting import Accounting
    from .daemon import ProxyDaemon


def install(daemon: ProxyDaemon, cfg: Accounting) -> Accountant:
    accountant = Accountant(cfg, info=daemon.info)
    accountant.restore(last_published(daemon.store))  # and again when it becomes the leader
    accountant.publish()  # its quotas and shares are visible before the first placement
    daemon.store.head_order = accountant.order
    daemon.processor.gate = accountant
    return accountant
