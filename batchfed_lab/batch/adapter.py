"""The one adapter over ``azure.batch.BatchClient`` (15.x), for Azure and localbatch alike.

:class:`BatchAccount` wraps one client per Batch account. Every method translates SDK
errors into :mod:`batchfed_lab.errors` (see :mod:`.errors`), returns plain records (never
SDK models) and is safe to call from several threads at once: the client's transport keeps a
thread-safe connection pool, and the adapter's own state (the request counter) is under a
lock. :func:`get_account` caches one ``BatchAccount`` per service URL for the whole process.

The methods live with what they act on, and ``BatchAccount`` joins them:

| module             | holds                                                                                    |
|--------------------|------------------------------------------------------------------------------------------|
| :mod:`.connection` | the client and its pipeline, :class:`RetrySettings`, the request counter, raw REST calls |
| :mod:`.snapshots`  | ``snapshot_pools``, ``snapshot_pool``, ``list_pools`` (the proxy's capacity read)        |
| :mod:`.pools`      | ``create_pool``, ``delete_pool``, ``resize_pool``, ``pool_exists``, ``supported_images`` |
| :mod:`.autoscale`  | ``evaluate_autoscale``, ``enable_autoscale``, ``reevaluate_autoscale``                   |
| :mod:`.jobs`       | jobs and job schedules: create, get, update, terminate, delete, list                     |
| :mod:`.tasks`      | ``add_tasks``, ``task_ids``, ``list_tasks``, ``get_task``, task files                    |
"""

from __future__ import annotations

import os
import threading

from .autoscale import AutoscaleEvaluation, AutoscaleOperations
from .connection import RetrySettings
from .credentials import normalize_service_url
from .jobs import JobOperations
from .pools import PoolOperations
from .snapshots import SnapshotOperations
from .tasks import TaskOperations

__all__ = ["AutoscaleEvaluation", "BatchAccount", "RetrySettings", "close_accounts", "get_account"]


class BatchAccount(SnapshotOperations, PoolOperations, AutoscaleOperations, JobOperations, TaskOperations):
    """One Batch account (Azure or localbatch) behind one SDK client: every operation the
    rest of batchfed_lab makes on a pool, its jobs and tasks. Constructor arguments: see
    :class:`~.connection.BatchConnection`."""


# --- one BatchAccount per service URL, per process ------------------------------------------------

_accounts: dict[str, BatchAccount] = {}
_accounts_lock = threading.Lock()


def get_account(service_url: str, *, workspace: str | os.PathLike[str] | None = None) -> BatchAccount:
    """The process-wide :class:`BatchAccount` for a URL, created on first use (thread-safe).
    Credentials are resolved from the URL (see :mod:`.credentials`)."""
    key = normalize_service_url(service_url)
    with _accounts_lock:
        account = _accounts.get(key)
        if account is None:
            account = _accounts[key] = BatchAccount(key, workspace=workspace)
        return account


def close_accounts() -> None:
    """Close and forget every cached account (tests, shutdown)."""
    with _accounts_lock:
        accounts = list(_accounts.values())
        _accounts.clear()
    for a in accounts:
        a.close()
