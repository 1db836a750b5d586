"""Data in and out of Batch tasks: storage accounts by name, blob transfers, and (with the
jobs side) the mapping of ``input_data`` / ``output_data`` onto Batch resource and output files.

- :mod:`.accounts`: :class:`StorageAccount`, :func:`resolve_account` (``settings.yaml``
  ``storage_accounts:`` or ``local``), :func:`container_url` (a SAS URL minted here, for tasks).
- :mod:`.transfer`: :func:`upload`, :func:`download`, :func:`list_blobs`, :func:`delete`.
- :mod:`.local`: the workspace's embedded Azurite (the account ``local``), started by ``up``.
- :mod:`.mapping`: ``input_data`` / ``output_data`` → Batch ``resourceFiles`` / ``outputFiles``
  (pure; the proxy calls it at placement with the URLs it mints).
- :mod:`.locality`: storage account name → region, for data-locality placement.

It imports config, errors, the runtime-files helper and the Azurite launcher
(``store.emulator``) only; see ``docs/data.md``.
"""

from .accounts import StorageAccount, check_container, container_url, resolve_account, split_remote
from .transfer import BlobItem, delete, download, list_blobs, upload

__all__ = [
    "BlobItem",
    "StorageAccount",
    "check_container",
    "container_url",
    "delete",
    "download",
    "list_blobs",
    "resolve_account",
    "split_remote",
    "upload",
]
