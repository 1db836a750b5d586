"""How the proxy reaches the storage accounts of the workspace it serves.

The proxy — not the client — mints the URLs a task group's resource and output files carry,
when it places the group: a SAS is a secret and never sits in the store (the action's payload
names accounts and paths only), and an action may wait in the queue longer than a SAS lives.
A pool with a managed identity (pool.yaml ``identity_reference``) gets bare container URLs
and the identity instead: no secret at all. An account key never reaches a task. Output
containers are created here, as blobxfer did for the original: Batch uploads into existing
containers only.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta
from typing import Any, Protocol

from ..config.workspace import Workspace
from ..data.locality import account_regions
from ..data.mapping import StorageAccess


class StorageResolver(Protocol):
    """What placement needs of storage: regions (data locality) and access (mapping)."""

    def regions(self, names: Iterable[str]) -> dict[str, str | None]: ...

    def access(self, identity: str | None, lifetime: timedelta) -> StorageAccess: ...


class WorkspaceStorage:
    """The storage accounts of settings.yaml (and ``local``, the embedded Azurite)."""

    def __init__(self, workspace: Workspace):
        self.workspace = workspace

    def regions(self, names: Iterable[str]) -> dict[str, str | None]:
        return account_regions(self.workspace.settings, names)

    def access(self, identity: str | None, lifetime: timedelta) -> StorageAccess:
        from ..data.accounts import container_url, resolve_account

        def url_for(name: str, container: str, write: bool) -> str:
            account = resolve_account(self.workspace, name)
            if write:
                _ensure_container(account, container)
            if identity:
                return f"{account.account_url.rstrip('/')}/{container}"
            return container_url(account, container, write=write, expiry=lifetime)

        return StorageAccess(url_for, identity=identity)


def _ensure_container(account: Any, container: str) -> None:
    """Batch uploads into existing containers only (else the task fails with
    ``FileUploadContainerNotFound``): an output container is created at placement."""
    from azure.core.exceptions import AzureError, ResourceExistsError

    from ..errors import DataError

    try:
        account.service_client().get_container_client(container).create_container()
    except ResourceExistsError:
        pass
    except AzureError as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise DataError(f"storage account {account.name}: cannot create output container {container}: {first}") from exc
