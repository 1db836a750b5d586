"""The three SDK clients an Azure store works with, from a connection string or from
DefaultAzureCredential against the account's endpoints, with the store's retry policies."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from azure.core.exceptions import AzureError
from azure.data.tables import TableServiceClient
from azure.storage.blob import BlobServiceClient
from azure.storage.queue import ExponentialRetry as QueueRetry
from azure.storage.queue import QueueServiceClient

from ...errors import StoreError

CONNECTION_STRING_ENV = "BATCHFED_STORAGE_CONNECTION_STRING"
Clients = tuple[TableServiceClient, QueueServiceClient, BlobServiceClient]


def clients_from_connection_string(
    connection_string: str, *, retries: int, client_options: Mapping[str, Any] | None = None
) -> Clients:
    """``client_options`` go to all three SDK clients (e.g. ``transport=``, ``logging_enable=``)."""
    extra = dict(client_options or {})
    try:
        tables = TableServiceClient.from_connection_string(connection_string, **_table_retry(retries), **extra)
        queues = QueueServiceClient.from_connection_string(connection_string, retry_policy=_storage_retry(retries), **extra)
        blobs = BlobServiceClient.from_connection_string(connection_string, retry_policy=_storage_retry(retries), **extra)
    except (ValueError, AzureError) as exc:
        # the SDK's message may quote the string: say only what is wrong with it
        raise StoreError(f"{CONNECTION_STRING_ENV}: not a valid storage connection string ({type(exc).__name__})") from None
    return tables, queues, blobs


def clients_from_credential(settings: Any, *, retries: int) -> Clients:
    """DefaultAzureCredential against the endpoints of ``workspace.settings.store.azure``."""
    endpoints = {}
    for service in ("table", "queue", "blob"):
        url = getattr(settings, f"{service}_endpoint") or (
            f"https://{settings.account_name}.{service}.core.windows.net" if settings.account_name else None
        )
        if url is None:
            raise StoreError(f"store.azure: set account_name (or {service}_endpoint) to use the azure store")
        endpoints[service] = url
    from azure.identity import DefaultAzureCredential

    cred = DefaultAzureCredential()
    return (
        TableServiceClient(endpoints["table"], credential=cred, **_table_retry(retries)),
        QueueServiceClient(endpoints["queue"], credential=cred, retry_policy=_storage_retry(retries)),
        BlobServiceClient(endpoints["blob"], credential=cred, retry_policy=_storage_retry(retries)),
    )


def _table_retry(retries: int) -> dict[str, Any]:
    # retries with exponential backoff on 408/429/5xx (503 Server Busy included)
    return {"retry_total": retries, "retry_backoff_factor": 0.5, "retry_backoff_max": 8, "connection_timeout": 10}


def _storage_retry(retries: int) -> QueueRetry:
    # the SDK annotates both as int, but its backoff arithmetic takes seconds as floats
    return QueueRetry(initial_backoff=0.5, increment_base=2, retry_total=retries, random_jitter_range=0.5)  # type: ignore[arg-type]
