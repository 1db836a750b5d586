"""Data in storage accounts by name: upload, download, list and delete blobs, and the
container URLs a Batch task may use (:mod:`batchfed_lab.data`)."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import TYPE_CHECKING

from .base import ClientBase

if TYPE_CHECKING:
    import pandas as pd

    from ..data import BlobItem, StorageAccount


class DataMixin(ClientBase):
    """Blobs in the workspace's storage accounts (``settings.yaml`` ``storage_accounts:`` and
    ``local``, the embedded Azurite ``up`` starts). ``remote`` is ``container[/path]``."""

    def storage_account(self, storage: str) -> StorageAccount:
        """The storage account called ``storage`` (one-line error for an unknown name)."""
        from ..data import resolve_account

        return resolve_account(self.workspace, storage)

    def upload(self, storage: str, remote: str, local: str | os.PathLike[str], *, progress: bool | None = None) -> list[BlobItem]:
        """Upload a file (to ``container/path``; into ``path/`` when it ends with ``/``) or a
        folder's files (keeping their relative paths); the container is created if missing."""
        from ..data import upload

        return upload(self.storage_account(storage), remote, local, progress=progress)

    def download(
        self, storage: str, remote: str, local: str | os.PathLike[str] = ".", *, progress: bool | None = None
    ) -> list[Path]:
        """Download one blob, or every blob under ``path/`` (keeping their paths), into ``local``."""
        from ..data import download

        return download(self.storage_account(storage), remote, local, progress=progress)

    def list_data(self, storage: str, remote: str) -> list[BlobItem]:
        """The blobs of ``container`` whose names start with ``path``."""
        from ..data import list_blobs

        return list_blobs(self.storage_account(storage), remote)

    def list_data_frame(self, storage: str, remote: str) -> pd.DataFrame:
        """:meth:`list_data` as the documented DataFrame (:func:`~batchfed_lab.frames.blobs_frame`)."""
        from ..frames import blobs_frame

        return blobs_frame(storage, self.list_data(storage, remote))

    def delete_data(self, storage: str, remote: str) -> list[str]:
        """Delete the blob ``container/path``, else every blob under ``path/``; the names deleted."""
        from ..data import delete

        return delete(self.storage_account(storage), remote)

    def container_url(
        self, storage: str, container: str, *, write: bool = False, expiry: dt.timedelta | dt.datetime | None = None
    ) -> str:
        """A URL of ``container`` with a SAS minted here, for a Batch task: read + list, or
        (``write``) create + write; valid ``expiry`` long (default 7 days). The account key, if
        any, never leaves this machine."""
        from ..data import container_url

        return container_url(self.storage_account(storage), container, write=write, expiry=expiry)
