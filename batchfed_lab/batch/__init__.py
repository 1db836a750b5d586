"""batchfed_lab.batch: the one adapter over ``azure.batch.BatchClient`` for every pool.

The rest of batchfed_lab (the client above all) reaches Batch only through the names below:
``get_account`` gives the process-wide :class:`BatchAccount` of a service URL. Names are
imported on first use (PEP 562), so importing the package does not load the Azure SDK.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # what the lazy names below resolve to, for type checkers
    from .adapter import AutoscaleEvaluation as AutoscaleEvaluation
    from .adapter import BatchAccount as BatchAccount
    from .adapter import RetrySettings as RetrySettings
    from .adapter import close_accounts as close_accounts
    from .adapter import get_account as get_account
    from .credentials import ResolvedCredential as ResolvedCredential
    from .credentials import ServiceUrl as ServiceUrl
    from .credentials import key_env_var as key_env_var
    from .credentials import parse_service_url as parse_service_url
    from .credentials import resolve_credential as resolve_credential
    from .jobs import JobCreateResult as JobCreateResult
    from .jobs import JobInfo as JobInfo
    from .jobs import JobScheduleCreateResult as JobScheduleCreateResult
    from .jobs import JobScheduleInfo as JobScheduleInfo
    from .jobs import JobSettings as JobSettings
    from .tasks import TaskAddReport as TaskAddReport
    from .tasks import TaskAddResult as TaskAddResult
    from .tasks import TaskCounts as TaskCounts
    from .tasks import TaskInfo as TaskInfo

_EXPORTS = {
    "BatchAccount": ".adapter",
    "RetrySettings": ".adapter",
    "AutoscaleEvaluation": ".adapter",
    "get_account": ".adapter",
    "close_accounts": ".adapter",
    "JobSettings": ".jobs",
    "JobInfo": ".jobs",
    "JobCreateResult": ".jobs",
    "JobScheduleInfo": ".jobs",
    "JobScheduleCreateResult": ".jobs",
    "TaskAddReport": ".tasks",
    "TaskAddResult": ".tasks",
    "TaskCounts": ".tasks",
    "TaskInfo": ".tasks",
    "ResolvedCredential": ".credentials",
    "ServiceUrl": ".credentials",
    "key_env_var": ".credentials",
    "parse_service_url": ".credentials",
    "resolve_credential": ".credentials",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
