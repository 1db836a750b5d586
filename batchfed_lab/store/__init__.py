"""The federation metadata store and action queue.

``open_store(workspace)`` returns the backend the workspace settings choose:
SQLite (default, one file in the workspace) or Azure (Tables + Queues + Blob lease).
Both implement :class:`Store`; see ``docs/store.md``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .base import Store
from .records import (
    ACTIVE_STATES,
    TERMINAL_STATES,
    Action,
    ActionKind,
    ActionMethod,
    ActionState,
    Claim,
    Counts,
    DestroyReport,
    Federation,
    Lease,
    Location,
    LocationUpdate,
    Marks,
    NewAction,
    PoolMember,
    ProxyRecord,
)

if TYPE_CHECKING:
    from ..config.workspace import Workspace

__all__ = [
    "ACTIVE_STATES",
    "TERMINAL_STATES",
    "Action",
    "ActionKind",
    "ActionMethod",
    "ActionState",
    "Claim",
    "Counts",
    "DestroyReport",
    "Federation",
    "Lease",
    "Location",
    "LocationUpdate",
    "Marks",
    "NewAction",
    "PoolMember",
    "ProxyRecord",
    "Store",
    "open_store",
]


def open_store(workspace: Workspace, **options: Any) -> Store:
    """Open the store the workspace settings choose (``store.backend``).

    ``options`` go to the backend constructor (e.g. ``clock=`` in tests).
    """
    settings = workspace.settings.store
    if settings.backend == "azure":
        from .azure import AzureStore

        return AzureStore.from_settings(settings.azure, **options)
    from .sqlite import SqliteStore

    return SqliteStore(workspace.sqlite_path, busy_timeout_ms=settings.sqlite.busy_timeout_ms, **options)
