"""A lean azure-core transport for Batch services on loopback (localbatch).

azure-core's default ``RequestsTransport`` sends every call through ``requests`` (session
merging, environment look-ups, cookies, hooks, adapters) before urllib3 does the work. On a
loopback service that answers in about a millisecond that layer is a third of the client's
CPU per call, and the proxy makes two or three calls per placement. This transport hands the
request to a urllib3 connection pool directly and builds azure-core's own response type
(:class:`~azure.core.rest._http_response_impl.HttpResponseImpl`, the base azure-core offers
transports), so the SDK pipeline above it — signing, retries, error mapping, models — is the
one Azure uses.

Loopback only: no proxy settings, no TLS, no redirects to follow. Streamed downloads (task
files) go to a ``RequestsTransport`` kept for them, so large files are not read into memory.
"""

from __future__ import annotations

import threading
from typing import Any
from urllib.parse import urlsplit

import urllib3
from azure.core.exceptions import (
    ServiceRequestError,
    ServiceRequestTimeoutError,
    ServiceResponseError,
    ServiceResponseTimeoutError,
)
from azure.core.pipeline.transport import HttpTransport, RequestsTransport
from azure.core.rest._http_response_impl import HttpResponseImpl
from requests.structures import CaseInsensitiveDict

__all__ = ["LoopbackTransport"]


class LoopbackTransport(HttpTransport):
    """Keep-alive urllib3 pools per host:port; thread-safe (the proxy's workers share it)."""

    def __init__(self, *, connection_timeout: float = 10.0, read_timeout: float = 60.0, maxsize: int = 64):
        self.connection_timeout = connection_timeout
        self.read_timeout = read_timeout
        self.maxsize = maxsize
        self._pools: dict[tuple[str, int], urllib3.HTTPConnectionPool] = {}
        self._lock = threading.Lock()
        self._streaming: RequestsTransport | None = None

    def __enter__(self) -> "LoopbackTransport":
        return self

    def __exit__(self, *args: Any) -> None:
        self.close()

    def open(self) -> None:
        pass  # pools are made on first use

    def close(self) -> None:
        with self._lock:
            pools, self._pools = list(self._pools.values()), {}
            streaming, self._streaming = self._streaming, None
        for pool in pools:
            pool.close()
        if streaming is not None:
            streaming.close()

    def _pool(self, host: str, port: int) -> urllib3.HTTPConnectionPool:
        pool = self._pools.get((host, port))
        if pool is None:
            with self._lock:
                pool = self._pools.get((host, port))
                if pool is None:
                    # block=False: a burst beyond maxsize opens extra connections instead of waiting
                    pool = urllib3.HTTPConnectionPool(host, port, maxsize=self.maxsize, block=False, retries=False)
                    self._pools[(host, port)] = pool
        return pool

    def _streaming_transport(self) -> RequestsTransport:
        with self._lock:
            if self._streaming is None:
                self._streaming = RequestsTransport(
                    use_env_settings=False, connection_timeout=self.connection_timeout, read_timeout=self.read_timeout
                )
            return self._streaming

    def send(self, request: Any, *, stream: bool = False, **kwargs: Any) -> Any:
        if stream or getattr(request, "files", None):
            return self._streaming_transport().send(request, stream=stream, **kwargs)
        parts = urlsplit(request.url)
        if parts.scheme != "http" or parts.hostname is None:
            raise ServiceRequestError(f"LoopbackTransport sends plain http only, not {request.url!r}")
        path = parts.path + ("?" + parts.query if parts.query else "")
        timeout = urllib3.Timeout(
            connect=kwargs.get("connection_timeout", self.connection_timeout),
            read=kwargs.get("read_timeout", self.read_timeout),
        )
        try:
            raw = self._pool(parts.hostname, parts.port or 80).urlopen(
                request.method, path, body=request.content, headers=dict(request.headers),
                redirect=False, retries=False, preload_content=True, timeout=timeout,
            )  # fmt: skip
        except urllib3.exceptions.ConnectTimeoutError as exc:
            raise ServiceRequestTimeoutError(exc, error=exc) from exc
        except urllib3.exceptions.NewConnectionError as exc:
            raise ServiceRequestError(exc, error=exc) from exc
        except urllib3.exceptions.ReadTimeoutError as exc:
            raise ServiceResponseTimeoutError(exc, error=exc) from exc
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise ServiceResponseError(exc, error=exc) from exc
        headers = CaseInsensitiveDict(raw.headers)
        response = HttpResponseImpl(
            request=request, internal_response=raw, status_code=raw.status, reason=raw.reason,
            headers=headers, content_type=headers.get("content-type"), stream_download_generator=None,
        )  # fmt: skip
        response._content = raw.data  # read whole (preload_content): nothing left to stream
        return response
