"""The three SDK clients an Azure store works with, from a connection string or from
DefaultAzureCredential against the account's endpoints, with the store's retry policies."""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping
from typing import Any

from azure.core.credentials import TokenCredential
from azure.core.exceptions import AzureError
from azure.data.tables import TableServiceClient
from azure.storage.blob import BlobServiceClient
from azure.storage.queue import ExponentialRetry as QueueRetry
from azure.storage.queue import QueueServiceClient
from requests.utils import get_environ_proxies

from ...errors import StoreError
from .transactions import read_parts_in_turn

CONNECTION_STRING_ENV = "BATCHFED_STORAGE_CONNECTION_STRING"
Clients = tuple[TableServiceClient, QueueServiceClient, BlobServiceClient]
#: the logger of azure-core's NetworkTraceLoggingPolicy (the SDKs' ``logging_enable`` trace)
NETWORK_TRACE_LOGGER = "azure.core.pipeline.policies._universal"


class RedactAuthorization(logging.Filter):
    """The network trace prints request headers verbatim; the Tables client's (unlike Blob's
    and Queue's own) carries the bearer token or the shared-key signature. Blank it before
    any handler sees the record."""

    _HEADER = re.compile(r"('Authorization':\s*')[^']*'", re.IGNORECASE)

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = self._HEADER.sub(r"\1REDACTED'", message)
        if cleaned != message:
            record.msg, record.args = cleaned, ()
        return True


def _client_options(client_options: Mapping[str, Any] | None) -> dict[str, Any]:
    trace = logging.getLogger(NETWORK_TRACE_LOGGER)
    if not any(isinstance(f, RedactAuthorization) for f in trace.filters):
        trace.addFilter(RedactAuthorization())
    return dict(client_options or {})


def clients_from_connection_string(
    connection_string: str, *, retries: int, client_options: Mapping[str, Any] | None = None
) -> Clients:
    """``client_options`` go to all three SDK clients (e.g. ``transport=``, ``logging_enable=``)."""
    extra = _client_options(client_options)
    try:
        endpoint = TableServiceClient.from_connection_string(connection_string).url  # parsed, nothing sent
        tables = TableServiceClient.from_connection_string(connection_string, **_table_options(retries, extra, endpoint))
        queues = QueueServiceClient.from_connection_string(connection_string, retry_policy=_storage_retry(retries), **extra)
        blobs = BlobServiceClient.from_connection_string(connection_string, retry_policy=_storage_retry(retries), **extra)
    except (ValueError, AzureError) as exc:
        # the SDK's message may quote the string: say only what is wrong with it
        raise StoreError(f"{CONNECTION_STRING_ENV}: not a valid storage connection string ({type(exc).__name__})") from None
    return tables, queues, blobs


def clients_from_credential(
    settings: Any,
    *,
    retries: int,
    credential: TokenCredential | None = None,
    client_options: Mapping[str, Any] | None = None,
) -> Clients:
    """A token credential (DefaultAzureCredential unless one is given) against the endpoints
    of ``workspace.settings.store.azure``. ``client_options`` go to all three SDK clients
    (e.g. ``connection_verify=`` to trust a test emulator's certificate)."""
    endpoints = {}
    for service in ("table", "queue", "blob"):
        url = getattr(settings, f"{service}_endpoint") or (
            f"https://{settings.account_name}.{service}.core.windows.net" if settings.account_name else None
        )
        if url is None:
            raise StoreError(f"store.azure: set account_name (or {service}_endpoint) to use the azure store")
        endpoints[service] = url
    if credential is None:
        from azure.identity import DefaultAzureCredential

        credential = DefaultAzureCredential()
    extra = _client_options(client_options)
    return (
        TableServiceClient(endpoints["table"], credential=credential, **_table_options(retries, extra, endpoints["table"])),
        QueueServiceClient(endpoints["queue"], credential=credential, retry_policy=_storage_retry(retries), **extra),
        BlobServiceClient(endpoints["blob"], credential=credential, retry_policy=_storage_retry(retries), **extra),
    )


def _table_options(retries: int, extra: Mapping[str, Any], endpoint: str) -> dict[str, Any]:
    # retries with exponential backoff on 408/429/5xx (503 Server Busy included); transactions'
    # answers read without threads (see .transactions), before a hook the caller gave
    hook = read_parts_in_turn(extra.get("raw_response_hook"))
    retry = {"retry_total": retries, "retry_backoff_factor": 0.5, "retry_backoff_max": 8, "connection_timeout": 10}
    return {**retry, **_environment_once(endpoint, extra), **extra, "raw_response_hook": hook}


def _environment_once(endpoint: str, extra: Mapping[str, Any]) -> dict[str, Any]:
    """What ``requests`` reads from the environment on every call — the proxy variables (a
    walk over the whole environment), ~/.netrc (two file look-ups), the CA bundle variables —
    read once for the table endpoint. The store makes ~10 table calls per placement from
    many threads, and each file look-up also hands the interpreter lock round."""
    if "transport" in extra:
        return {}
    found: dict[str, Any] = {"use_env_settings": False, "proxies": get_environ_proxies(endpoint)}  # NO_PROXY honoured
    bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
    if bundle:
        found["connection_verify"] = bundle
    return found


def _storage_retry(retries: int) -> QueueRetry:
    # the SDK annotates both as int, but its backoff arithmetic takes seconds as floats
    return QueueRetry(initial_backoff=0.5, increment_base=2, retry_total=retries, random_jitter_range=0.5)  # type: ignore[arg-type]  # see above
