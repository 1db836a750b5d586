"""One Batch account's SDK client and the plumbing every operation shares.

:class:`BatchConnection` builds the ``BatchClient`` with the pipeline settings of
:class:`RetrySettings`, counts its requests by route, and sends the calls the generated
operations are too costly or too slow for. The operation groups (:mod:`.pools`,
:mod:`.snapshots`, :mod:`.autoscale`, :mod:`.jobs`, :mod:`.tasks`) build on it, and
:class:`~.adapter.BatchAccount` joins them.

The three calls the proxy makes per placement (create job, add a task collection, list a
job's task ids) go through the same client's pipeline without the generated operations
(:meth:`BatchConnection._rest`): the request bodies are still SDK models, written by the SDK's
encoder, but the answers are read as JSON, since building models for them cost more CPU than
the round trip. The pool listings behind the proxy's capacity refresh (:mod:`.snapshots`) are
read the same way. Loopback (localbatch) accounts also get a lean transport
(:mod:`.transport`) and only the policies a local service needs (retries, the signature).

Long-running operations (terminate/delete job, job schedule and pool, resize) are sent
without the SDK's ``LROPoller``: ``begin_*`` would start a daemon thread per call that polls
the service every few seconds. :meth:`BatchConnection._nowait` calls the SDK's request method
underneath (``_<op>_internal``, stable within the pinned ``azure-batch==15.1.0``) and returns
as soon as the service accepted the request; if a future SDK drops that method, ``begin_*`` is
used and its poller is dropped.
"""

from __future__ import annotations

import json
import os
import threading
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlsplit

from azure.batch import BatchClient
from azure.batch._patch import BatchSharedKeyAuthPolicy  # what BatchClient itself signs with
from azure.batch._utils.model_base import SdkJSONEncoder  # how the SDK writes its request bodies
from azure.core.exceptions import AzureError, HttpResponseError, StreamClosedError, StreamConsumedError
from azure.core.pipeline import policies
from azure.core.pipeline.policies import SansIOHTTPPolicy
from azure.core.rest import HttpRequest

from ..errors import BatchError
from .credentials import ResolvedCredential, normalize_service_url, parse_service_url, resolve_credential
from .errors import error_code, translate
from .transport import LoopbackTransport

_C = TypeVar("_C", bound="BatchConnection")

__all__ = ["BatchConnection", "RetrySettings"]


@dataclass(frozen=True)
class RetrySettings:
    """azure-core pipeline retry/timeout settings used for every client.

    Retried: connection errors (``retry_connect``), read errors (``retry_read``) and statuses
    408/429/500/502/503/504 (``retry_status``; azure-core retries POST only on 500/503/504),
    with exponential backoff ``backoff_factor * 2**n`` capped at ``backoff_max`` and
    ``Retry-After`` honoured. Defaults bound a dead service to a few seconds instead of the
    SDK's minutes; 4xx answers (auth, not found, conflict) are never retried.
    """

    total: int = 4
    connect: int = 3
    read: int = 2
    status: int = 3
    backoff_factor: float = 0.5
    backoff_max: float = 8.0
    connection_timeout: float = 10.0
    read_timeout: float = 60.0

    def client_kwargs(self) -> dict[str, Any]:
        return {
            "retry_total": self.total,
            "retry_connect": self.connect,
            "retry_read": self.read,
            "retry_status": self.status,
            "retry_backoff_factor": self.backoff_factor,
            "retry_backoff_max": self.backoff_max,
            "connection_timeout": self.connection_timeout,
            "read_timeout": self.read_timeout,
        }


# Batch REST collections whose next path segment is an id (for the request counter's routes)
_ID_AFTER = frozenset({"pools", "jobs", "jobschedules", "tasks", "nodes", "subtasks", "applications"})


class _RequestCounter(SansIOHTTPPolicy):
    """Counts requests by route (``GET /jobs/{id}/taskcounts``): one per SDK call or page.

    Installed as a per-call policy, so a request the retry policy repeats counts once.
    """

    def __init__(self, base_path: str):
        super().__init__()
        self._base = base_path.rstrip("/")
        self._lock = threading.Lock()
        self.counts: Counter[str] = Counter()

    def route(self, method: str, url: str) -> str:
        path = urlsplit(url).path
        if self._base and path.startswith(self._base):
            path = path[len(self._base) :]
        parts = [p for p in path.split("/") if p]
        out, after_collection = [], False
        for part in parts:
            if after_collection:
                out.append("{id}")
                after_collection = False
            elif part == "files":
                out.append("files/{path}")
                break
            else:
                out.append(part)
                after_collection = part in _ID_AFTER
        return f"{method} /" + "/".join(out)

    def on_request(self, request: Any) -> None:
        key = self.route(request.http_request.method, request.http_request.url)
        with self._lock:
            self.counts[key] += 1

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self.counts)

    def clear(self) -> None:
        with self._lock:
            self.counts.clear()


class _ReadFailedBody(SansIOHTTPPolicy):
    """Reads the body of a failed streamed answer (a task file download) before the SDK's
    error policy parses it: that policy reads the error model from the body, and on an
    unread stream it logged a "deserialization error" with a traceback and lost the Batch
    code (``TaskNotFound``). A per-retry policy, so it runs inside the SDK's error policy."""

    def on_response(self, request: Any, response: Any) -> None:
        answer = response.http_response
        if not 200 <= answer.status_code < 300:
            try:
                answer.read()  # an error answer is a short JSON document
            except (StreamConsumedError, StreamClosedError):
                pass  # read or closed already: nothing more to get


# client_options that leave the lean loopback policy list in place (see _loopback_policies)
_LEAN_COMPATIBLE = frozenset({"transport", "per_call_policies", "per_retry_policies", "use_env_settings"})


def _loopback_policies(credential: Any, retry: RetrySettings) -> list[Any]:
    """The policies a loopback service needs: retries and the shared-key signature. Not the
    request-id, proxy, redirect, tracing and HTTP-logging policies of the default list: none
    matters to a local service (it names each answer with its own request id), and on the
    proxy's hot path each costs CPU on every call. (The request counter and the SDK's error
    policy are per-call policies, which azure-core puts in front of this list.)"""
    kwargs = retry.client_kwargs()
    return [
        policies.RetryPolicy(**{k: v for k, v in kwargs.items() if k.startswith("retry_")}),
        BatchSharedKeyAuthPolicy(credential),
    ]


class BatchConnection:
    """One Batch account (Azure or localbatch) behind one SDK client, with no operations of
    its own: the base of the operation groups that :class:`~.adapter.BatchAccount` joins.

    ``credential`` may be a :class:`~.credentials.ResolvedCredential`, an azure credential
    object, or ``None`` (resolved from the URL; see :mod:`.credentials`). ``key`` is a
    shared key given directly. ``client_options`` go to ``BatchClient`` as they are
    (e.g. ``per_call_policies``, ``transport``, ``logging_enable``); on a loopback account,
    any beyond ``transport``, ``per_call_policies``, ``per_retry_policies`` and
    ``use_env_settings`` also bring back azure-core's default policy list, which reads them.
    """

    def __init__(
        self,
        service_url: str,
        credential: Any = None,
        *,
        key: str | None = None,
        workspace: str | os.PathLike[str] | None = None,
        retry: RetrySettings | None = None,
        client_options: Mapping[str, Any] | None = None,
    ):
        self.service_url = normalize_service_url(service_url)
        self.account, self.region, self.is_local = parse_service_url(self.service_url)
        self._credential: ResolvedCredential = resolve_credential(
            self.service_url, key=key, credential=credential, workspace=workspace
        )
        self.retry = retry or RetrySettings()
        self._counter = _RequestCounter(urlsplit(self.service_url).path)
        options = {**self.retry.client_kwargs(), **(client_options or {})}
        # a fresh list: BatchClient appends its own exception policy to the one it is given
        options["per_call_policies"] = [self._counter, *options.get("per_call_policies", ())]
        options["per_retry_policies"] = [*options.get("per_retry_policies", ()), _ReadFailedBody()]
        if self.is_local:
            # loopback needs no proxy, .netrc or TLS: a lean transport (see .transport)
            options.setdefault("use_env_settings", False)
            options.setdefault(
                "transport",
                LoopbackTransport(connection_timeout=self.retry.connection_timeout, read_timeout=self.retry.read_timeout),
            )
            if self._credential.kind == "shared_key" and set(client_options or ()) <= _LEAN_COMPATIBLE:
                # options that shape the policies (retries, headers, hooks, network logging)
                # keep azure-core's default list, which honours them
                options["policies"] = _loopback_policies(self._credential.credential, self.retry)
        self._client = BatchClient(endpoint=self.service_url, credential=self._credential.credential, **options)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.service_url!r}, credential={self._credential})"

    @property
    def credential_source(self) -> str:
        return str(self._credential)

    @property
    def requests(self) -> dict[str, int]:
        """HTTP requests sent so far, by route (a copy)."""
        return self._counter.snapshot()

    def reset_requests(self) -> None:
        self._counter.clear()

    def close(self) -> None:
        self._client.close()

    def __enter__(self: _C) -> _C:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _what(self, text: str) -> str:
        return f"{self.account}: {text}"

    def _rest(self, method: str, target: str, what: str, *, params: Mapping[str, str] | None = None, body: Any = None) -> Any:
        """One REST call through the client's own pipeline (retries, signing, the SDK's error
        policy), without a generated operation: for the proxy's per-placement calls and its
        capacity listings, where building and reading SDK models costs more CPU than the call.

        ``target`` is a quoted path under the account or a service link (``odata.nextLink``);
        ``body`` (SDK models or plain JSON) is written as the SDK writes it. Returns the JSON
        answer (``None`` when empty); error answers raise as they do from the SDK."""
        if target.startswith("/"):
            url = self.service_url + target
        else:
            # a link's query goes on as the service wrote it (still encoded: azure-core adds
            # query values as they are), only its api-version replaced by ours
            link = urlsplit(target)
            kept = [p for p in link.query.split("&") if p and p.partition("=")[0].lower() != "api-version"]
            url = link._replace(query="&".join(kept), fragment="").geturl()
        query = {**(params or {}), "api-version": self._client._config.api_version}  # the version our models are for
        headers = {"accept": "application/json"}
        content = None
        if body is not None:
            headers["content-type"] = "application/json; odata=minimalmetadata"
            content = json.dumps(body, cls=SdkJSONEncoder, exclude_readonly=True)
        # the generated client's send_request deep-copies the request and formats its URL again
        # for every call; this one is built once and absolute, so it goes to the pipeline as is
        response = self._client._client.send_request(HttpRequest(method, url, params=query, headers=headers, content=content))
        if not response.content:
            return None
        try:
            # Batch answers JSON in UTF-8: loads reads the bytes, without the response's
            # charset sniffing and text copy
            return json.loads(response.content)
        except ValueError:
            raise BatchError(f"{what}: the service answered HTTP {response.status_code} with a body that is not JSON") from None

    def _pages(self, path: str, what: str, params: Mapping[str, str] | None = None) -> Iterator[dict[str, Any]]:
        """The items of a listing (:meth:`_rest`), page after page by ``odata.nextLink``."""
        page = self._rest("GET", path, what, params=params)
        while True:
            if not isinstance(page, dict) or not isinstance(page.get("value"), list):
                raise BatchError(f"{what}: the service's answer has no list of items")
            yield from (item for item in page["value"] if isinstance(item, dict))
            link = page.get("odata.nextLink")
            if not link:
                return
            page = self._rest("GET", link, what)

    def _nowait(self, op: str, *args: Any, **kwargs: Any) -> None:
        """Send a long-running operation's request without starting a poller thread."""
        internal = getattr(self._client, f"_{op}_internal", None)
        if internal is not None:
            internal(*args, **kwargs)
        else:  # pragma: no cover - only with an SDK other than the pinned one
            getattr(self._client, f"begin_{op}")(*args, polling_interval=3600, **kwargs)

    def _idempotent(self, what: str, done_codes: frozenset[str], op: str, *args: Any, **kwargs: Any) -> bool:
        """Run ``op``; True if it was sent, False if the target was already in the end state."""
        try:
            self._nowait(op, *args, **kwargs)
            return True
        except HttpResponseError as exc:
            if error_code(exc) in done_codes:
                return False
            raise translate(exc, self._what(what)) from exc
        except AzureError as exc:
            raise translate(exc, self._what(what)) from exc
