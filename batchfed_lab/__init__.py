"""batchfed_lab — federated batch computing, notebook-first.

``connect()`` returns the :class:`Client` of a workspace; ``%load_ext batchfed_lab``
adds the ``%fed`` magics. Importing the package does nothing else: no files, no
handlers, no processes.
"""

from ._version import __version__
from .client import Client, connect
from .errors import (
    BatchAuthError,
    BatchConflictError,
    BatchError,
    BatchfedError,
    BatchNotFoundError,
    BatchUnreachableError,
    ClaimLostError,
    ConfigError,
    ConfirmationRequired,
    ConflictError,
    DataError,
    DeployError,
    InvalidIdError,
    LocalBatchNotRunning,
    LocalBatchStartFailed,
    NotFoundError,
    PayloadTooLargeError,
    ProxyError,
    SchedulingError,
    StoreError,
    StoreUnavailableError,
    SubmissionError,
    WorkspaceError,
)
from .results import (
    DestroyResult,
    Explanation,
    FederatedTask,
    FederationSummary,
    PoolChange,
    RemovalResult,
    Submission,
    TextOutput,
)

__all__ = [
    "BatchAuthError",
    "BatchConflictError",
    "BatchError",
    "BatchNotFoundError",
    "BatchUnreachableError",
    "BatchfedError",
    "ClaimLostError",
    "Client",
    "ConfigError",
    "ConfirmationRequired",
    "ConflictError",
    "DataError",
    "DeployError",
    "DestroyResult",
    "Explanation",
    "FederatedTask",
    "FederationSummary",
    "InvalidIdError",
    "LocalBatchNotRunning",
    "LocalBatchStartFailed",
    "NotFoundError",
    "PayloadTooLargeError",
    "PoolChange",
    "ProxyError",
    "RemovalResult",
    "SchedulingError",
    "StoreError",
    "StoreUnavailableError",
    "Submission",
    "SubmissionError",
    "TextOutput",
    "WorkspaceError",
    "__version__",
    "connect",
    "load_ipython_extension",
]


def load_ipython_extension(ipython: "object") -> None:
    """``%load_ext batchfed_lab``: register the ``%fed`` / ``%%fed`` magics."""
    from .magics import load_ipython_extension as load

    load(ipython)
