"""What every part of the :class:`~batchfed_lab.client.Client` stands on: its workspace, the
store it opens on first use, and the Batch account behind a service URL."""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeVar

from ..config.workspace import Workspace
from ..store import Store, open_store

if TYPE_CHECKING:
    from ..batch import BatchAccount

_Self = TypeVar("_Self", bound="ClientBase")


class ClientBase:
    """The workspace, its store and its Batch accounts; the method groups build on this."""

    def __init__(self, workspace: Workspace, store: Store | None = None):
        self.workspace = workspace
        self._store = store

    @property
    def store(self) -> Store:
        if self._store is None:
            self._store = open_store(self.workspace)
        return self._store

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None

    def __enter__(self: _Self) -> _Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Client(workspace={str(self.workspace.path)!r}, store={self.workspace.settings.store.backend!r})"

    def account(self, service_url: str) -> BatchAccount:
        from ..batch import get_account

        return get_account(service_url, workspace=self.workspace.path)
