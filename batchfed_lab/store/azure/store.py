"""The Azure store: the concerns of the package joined behind the one ``Store`` interface."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from azure.core.credentials import TokenCredential

from ...errors import StoreError
from ..identity import Submitter, os_submitter, submitter_from_token
from .claims import ActionClaims
from .connection import (
    CONNECTION_STRING_ENV,
    clients_from_connection_string,
    clients_from_credential,
)
from .lease import BlobLease
from .meta import MetaRecords
from .tables import RecordTables

STORAGE_SCOPE = "https://storage.azure.com/.default"


class AzureStore(RecordTables, ActionClaims, BlobLease, MetaRecords):
    backend = "azure"
    lease_ttl_range = (15.0, 60.0)  # Blob lease durations
    poll_interval = 0.5

    def _identity(self) -> Submitter:
        """The Entra ID principal of a token credential; a key or SAS names nobody: the OS user."""
        credential: Any = getattr(self._tables, "credential", None)
        if credential is None or not hasattr(credential, "get_token"):
            return os_submitter()
        with self._azure("read the credential's identity"):
            return submitter_from_token(credential.get_token(STORAGE_SCOPE).token)

    def __repr__(self) -> str:  # endpoints are not secrets; keys and connection strings never appear
        return f"AzureStore(prefix={self.prefix!r}, tables={self._tables.url.split('?')[0]!r})"

    @classmethod
    def from_connection_string(
        cls, connection_string: str, *, retries: int = 4, client_options: Mapping[str, Any] | None = None, **kwargs: Any
    ) -> AzureStore:
        """``client_options`` go to all three SDK clients (e.g. ``transport=``, ``logging_enable=``)."""
        return cls(*clients_from_connection_string(connection_string, retries=retries, client_options=client_options), **kwargs)

    @classmethod
    def from_settings(
        cls,
        settings: Any,
        *,
        credential: TokenCredential | None = None,
        client_options: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> AzureStore:
        """Build from ``workspace.settings.store.azure``: a connection string from the
        environment, or a token credential (DefaultAzureCredential unless ``credential`` is
        given) against the account's endpoints. ``client_options`` go to the SDK clients."""
        retries = kwargs.pop("retries", 4)
        if settings.credential == "connection_string":
            conn = os.environ.get(CONNECTION_STRING_ENV)
            if not conn:
                raise StoreError(f"store.azure.credential is connection_string but {CONNECTION_STRING_ENV} is not set")
            return cls.from_connection_string(
                conn, retries=retries, client_options=client_options, prefix=settings.prefix, **kwargs
            )
        clients = clients_from_credential(settings, retries=retries, credential=credential, client_options=client_options)
        return cls(*clients, prefix=settings.prefix, **kwargs)
