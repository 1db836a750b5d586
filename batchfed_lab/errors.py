"""The one exception tree of batchfed_lab.

Every error a user can meet derives from :class:`BatchfedError` and carries a
one-line message. Surfaces (CLI, magics, widgets) catch ``BatchfedError``,
print ``str(exc)`` and exit non-zero / raise; they never show a traceback.
SDK and Azure errors are translated at the adapter boundary and chained with
``raise ... from exc`` so the original stays available for debugging.

    BatchfedError
    ├── ConfigError              bad YAML, bad keys, bad values (file + path + value)
    ├── WorkspaceError           workspace folder / settings problems
    ├── StoreError               metadata store and action queue
    │   ├── NotFoundError        federation, pool member, action, location absent
    │   ├── ConflictError        exists already, duplicate, FIFO/etag conflicts
    │   ├── InvalidIdError       an id that breaks the id rules
    │   ├── ClaimLostError       a worker's claim lapsed or was taken over
    │   ├── PayloadTooLargeError an action payload over the limit
    │   └── StoreUnavailableError the backend cannot be reached
    ├── BatchError               Batch service (Azure Batch or localbatch), with ``code``
    │   ├── BatchNotFoundError
    │   ├── BatchConflictError   JobExists, PoolExists, TaskExists, ...
    │   ├── BatchAuthError       403 / bad credentials
    │   ├── BatchUnreachableError the service does not answer (code ServiceUnreachable)
    │   ├── LocalBatchNotRunning the workspace's localbatch is not running
    │   └── LocalBatchStartFailed localbatch exited or did not answer while starting
    ├── SchedulingError          the pure scheduler was given impossible input
    ├── ProxyError               daemon lifecycle (start/stop/status)
    ├── DeployError              the proxy's Azure deployment (fed proxy create/destroy)
    ├── DataError                storage accounts and blob transfers (``batchfed data …``)
    ├── SubmissionError          a waited-on submission failed, was zapped or stayed blocked
    └── ConfirmationRequired     a destructive command was not confirmed

A subclass that stands for one Batch condition also sets ``code`` (its ``default_code``),
so code that reads ``exc.code`` and code that tests the class agree.
"""

from __future__ import annotations

__all__ = [
    "UNREACHABLE",
    "BatchAuthError",
    "BatchConflictError",
    "BatchError",
    "BatchNotFoundError",
    "BatchUnreachableError",
    "BatchfedError",
    "ClaimLostError",
    "ConfigError",
    "ConfirmationRequired",
    "ConflictError",
    "DataError",
    "DeployError",
    "InvalidIdError",
    "LocalBatchNotRunning",
    "LocalBatchStartFailed",
    "NotFoundError",
    "PayloadTooLargeError",
    "ProxyError",
    "SchedulingError",
    "StoreError",
    "StoreUnavailableError",
    "SubmissionError",
    "WorkspaceError",
]

#: the ``code`` of a Batch service that did not answer (connection refused or dropped, after retries)
UNREACHABLE = "ServiceUnreachable"


class BatchfedError(Exception):
    """Base of every error batchfed_lab raises on purpose. ``str()`` is one line."""

    def __str__(self) -> str:  # keep messages to one line whatever the caller passed
        text = super().__str__()
        return " ".join(text.split()) if "\n" in text else text


class ConfigError(BatchfedError):
    """Invalid configuration: names the file, the YAML path, the value and why.

    ``problems`` holds every individual one-line problem; ``str()`` is the first
    one (plus a count when there are more) so a surface can print one line, and
    ``batchfed config validate`` can print them all.
    """

    def __init__(self, problems: list[str] | str):
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        first = self.problems[0] if self.problems else "invalid configuration"
        extra = len(self.problems) - 1
        super().__init__(first + (f" (and {extra} more problem{'s' if extra > 1 else ''})" if extra else ""))


class WorkspaceError(BatchfedError):
    """The workspace folder or its settings file cannot be used."""


class StoreError(BatchfedError):
    """Metadata store / action queue failure."""


class NotFoundError(StoreError):
    """A federation, pool member, action or location does not exist."""


class ConflictError(StoreError):
    """The thing exists already, or a concurrent writer won."""


class InvalidIdError(StoreError):
    """An id breaks the id rules (federation ids: ``[a-z0-9-]``, 1-63 chars)."""


class ClaimLostError(StoreError):
    """The worker's claim on an action lapsed or belongs to someone else."""


class PayloadTooLargeError(StoreError):
    """An action payload is over the backend's limit (never truncated)."""


class StoreUnavailableError(StoreError):
    """The store backend cannot be reached (after retries)."""


class BatchError(BatchfedError):
    """A Batch service call failed. ``code`` is the Batch error code when known."""

    default_code: str | None = None

    def __init__(self, message: str, code: str | None = None, status: int | None = None):
        super().__init__(message)
        self.code = code if code is not None else self.default_code
        self.status = status


class BatchNotFoundError(BatchError):
    """PoolNotFound, JobNotFound, TaskNotFound, ..."""


class BatchConflictError(BatchError):
    """JobExists, PoolExists, TaskExists, JobScheduleExists, ..."""


class BatchAuthError(BatchError):
    """The Batch service refused the credentials (403/401)."""


class BatchUnreachableError(BatchError):
    """The Batch service did not answer (connection refused or dropped, after retries)."""

    default_code = UNREACHABLE


class LocalBatchNotRunning(BatchError):
    """The workspace's localbatch is not running (start it first)."""

    default_code = "LocalBatchNotRunning"


class LocalBatchStartFailed(BatchError):
    """localbatch exited, or did not answer, while starting."""

    default_code = "LocalBatchStartFailed"


class SchedulingError(BatchfedError):
    """The scheduler was given input it cannot decide on."""


class ProxyError(BatchfedError):
    """Proxy daemon lifecycle failure."""


class DeployError(BatchfedError):
    """Deploying or removing the proxy on Azure failed (``fed proxy create | destroy``)."""


class DataError(BatchfedError):
    """A storage account cannot be resolved or reached, or a blob transfer failed."""


class SubmissionError(BatchfedError):
    """A submission ended badly (failed, zapped) or is still blocked when waited on."""


class ConfirmationRequired(BatchfedError):
    """A destructive command was not confirmed (no ``--yes`` and nobody to ask)."""
