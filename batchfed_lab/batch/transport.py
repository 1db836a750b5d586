"""A lean azure-core transport for Batch services on loopback (localbatch).

azure-core's default ``RequestsTransport`` sends every call through ``requests`` (session
merging, environment look-ups, cookies, hooks, adapters) and urllib3 (pool bookkeeping,
retries, response wrappers) before :mod:`http.client` does the work. On a loopback service
that answers in about a millisecond those layers cost more CPU than the request itself, and
the proxy makes two or three calls per placement. This transport keeps a small pool of
keep-alive :class:`http.client.HTTPConnection` objects and builds azure-core's own response
type (:class:`~azure.core.rest._http_response_impl.HttpResponseImpl`, the base azure-core
offers transports), so the SDK pipeline above it — signing, retries, error mapping, models —
is the one Azure uses.

Loopback only: no proxy settings, no TLS, no redirects to follow. Streamed downloads (task
files) go to a ``RequestsTransport`` kept for them, so large files are not read into memory.
"""

from __future__ import annotations

import http.client
import select
import socket
import threading
from typing import Any
from urllib.parse import urlsplit

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


class _Closed:
    """The internal response handed to azure-core: the body is read already, nothing to close."""

    def close(self) -> None:
        pass


class LoopbackTransport(HttpTransport):
    """Keep-alive connections per host:port, reused LIFO; thread-safe (the proxy's workers
    share it). An idle connection the server has closed is noticed before reuse and replaced."""

    def __init__(self, *, connection_timeout: float = 10.0, read_timeout: float = 60.0, max_idle: int = 64):
        self.connection_timeout = connection_timeout
        self.read_timeout = read_timeout
        self.max_idle = max_idle
        self._idle: dict[tuple[str, int], list[http.client.HTTPConnection]] = {}
        self._lock = threading.Lock()
        self._streaming: RequestsTransport | None = None
        self.connections_made = 0  # for tests and curiosity: how often keep-alive failed us

    def __enter__(self) -> "LoopbackTransport":
        return self

    def __exit__(self, *args: Any) -> None:
        self.close()

    def open(self) -> None:
        pass  # connections are made on first use

    def close(self) -> None:
        with self._lock:
            idle, self._idle = [c for conns in self._idle.values() for c in conns], {}
            streaming, self._streaming = self._streaming, None
        for conn in idle:
            conn.close()
        if streaming is not None:
            streaming.close()

    def _checkout(self, host: str, port: int, connect_timeout: float) -> http.client.HTTPConnection:
        with self._lock:
            idle = self._idle.get((host, port))
            while idle:
                conn = idle.pop()
                if not _dropped(conn):
                    return conn
                conn.close()
            self.connections_made += 1
        conn = http.client.HTTPConnection(host, port, timeout=connect_timeout)
        try:
            conn.connect()
        except TimeoutError as exc:
            raise ServiceRequestTimeoutError(exc, error=exc) from exc
        except OSError as exc:
            raise ServiceRequestError(exc, error=exc) from exc
        conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return conn

    def _checkin(self, host: str, port: int, conn: http.client.HTTPConnection) -> None:
        with self._lock:
            idle = self._idle.setdefault((host, port), [])
            if len(idle) < self.max_idle:
                idle.append(conn)
                return
        conn.close()

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
        host, port = parts.hostname, parts.port or 80
        path = (parts.path or "/") + ("?" + parts.query if parts.query else "")
        conn = self._checkout(host, port, kwargs.get("connection_timeout", self.connection_timeout))
        try:
            conn.sock.settimeout(kwargs.get("read_timeout", self.read_timeout))
            body = request.content
            if isinstance(body, str):
                body = body.encode("utf-8")
            conn.request(request.method, path, body=body, headers=dict(request.headers))
            raw = conn.getresponse()
            body = raw.read()
        except TimeoutError as exc:
            conn.close()
            raise ServiceResponseTimeoutError(exc, error=exc) from exc
        except (OSError, http.client.HTTPException) as exc:
            conn.close()
            raise ServiceResponseError(exc, error=exc) from exc
        if raw.will_close:
            conn.close()
        else:
            self._checkin(host, port, conn)
        headers = CaseInsensitiveDict(raw.getheaders())
        response = HttpResponseImpl(
            request=request, internal_response=_Closed(), status_code=raw.status, reason=raw.reason,
            headers=headers, content_type=headers.get("content-type"), stream_download_generator=None,
        )  # fmt: skip
        response._content = body  # read whole: nothing left to stream
        return response


def _dropped(conn: http.client.HTTPConnection) -> bool:
    """An idle keep-alive connection that is readable has been closed (or sent garbage) by the
    server: reusing it would fail the request it carries."""
    sock = conn.sock
    if sock is None:
        return True
    try:
        if hasattr(select, "poll"):
            poller = select.poll()
            poller.register(sock, select.POLLIN)
            return bool(poller.poll(0))
        readable, _, _ = select.select([sock], [], [], 0)
        return bool(readable)
    except (OSError, ValueError):
        return True
