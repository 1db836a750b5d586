"""A lean azure-core transport for Batch services on loopback (localbatch).

azure-core's default ``RequestsTransport`` sends every call through ``requests`` (session
merging, environment look-ups, cookies, hooks, adapters) and urllib3 (pool bookkeeping,
retries, response wrappers) before :mod:`http.client` does the work. On a loopback service
that answers in about a millisecond those layers cost more CPU than the request itself, and
the proxy makes two or three calls per placement. This transport keeps a small pool of
keep-alive connections and builds azure-core's own response type
(:class:`~azure.core.rest._http_response_impl.HttpResponseImpl`, the base azure-core offers
transports), so the SDK pipeline above it — signing, retries, error mapping, models — is the
one Azure uses.

The connections speak the small part of HTTP/1.1 a Batch service's answers need (a status
line, headers, a body by ``Content-Length``, chunks, or up to the close) in one write and a
buffered read: :mod:`http.client` parses every answer's headers with the e-mail package,
which cost a request five times the CPU of this.

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


MAX_LINE = 65536  # bytes in a status or header line
MAX_HEADERS = 100
_NO_BODY = frozenset({204, 304})


class ProtocolError(http.client.HTTPException):
    """The service's answer is not HTTP/1.x as this client reads it (cut off, malformed)."""


class _Answer:
    """A whole answer: status, reason, headers (in order) and body."""

    __slots__ = ("body", "headers", "reason", "status", "will_close")

    def __init__(self, status: int, reason: str, headers: list[tuple[str, str]], body: bytes, will_close: bool):
        self.status, self.reason, self.headers, self.body, self.will_close = status, reason, headers, body, will_close


class _Connection:
    """One keep-alive connection to host:port: a request in one write, its answer read whole.

    It reads through its own buffer, so bytes beyond an answer (a server that sent more than
    it framed) are seen: such a connection is closed, never handed to the next request."""

    def __init__(self, host: str, port: int, timeout: float):
        self.sock: socket.socket | None = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buffered = bytearray()  # read from the socket, not consumed yet
        self._host_header = host if port == 80 else f"{host}:{port}"

    def close(self) -> None:
        sock, self.sock = self.sock, None
        if sock is not None:
            sock.close()

    def exchange(self, method: str, path: str, headers: dict[str, str], body: bytes | None) -> _Answer:
        assert self.sock is not None
        lines = [f"{method} {path} HTTP/1.1"]
        names = {k.lower() for k in headers}
        if "host" not in names:
            lines.append(f"Host: {self._host_header}")
        if (body is not None or method in ("POST", "PUT", "PATCH")) and "content-length" not in names:
            lines.append(f"Content-Length: {len(body or b'')}")
        lines += [f"{k}: {v}" for k, v in headers.items()]
        probe = method + path + "".join(headers) + "".join(headers.values())
        if "\n" in probe or "\r" in probe:  # refused as http.client does: no header injection
            raise ValueError("the request line or a header contains a line break")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        self.sock.sendall(head + body if body else head)
        while True:
            status, reason, version = self._status_line()
            answer_headers = self._headers()
            if not 100 <= status < 200:
                break  # an interim answer (100 Continue) is followed by the real one
        fields = {k.lower(): v for k, v in answer_headers}
        connection = fields.get("connection", "").lower()
        will_close = "close" in connection or (version == "HTTP/1.0" and "keep-alive" not in connection)
        if method == "HEAD" or status in _NO_BODY:
            data = b""
        elif "chunked" in fields.get("transfer-encoding", "").lower():
            data = self._chunked()
        elif "content-length" in fields:
            text_length = fields["content-length"]
            if not (text_length.isascii() and text_length.isdigit()):
                raise ProtocolError(f"bad Content-Length {text_length[:20]!r}")
            data = self._read(int(text_length))
        else:  # the body runs to the end of the connection
            data, will_close = self._read_to_close(), True
        # more than the answer arrived: whatever it is, it is not the next request's answer
        return _Answer(status, reason, answer_headers, data, will_close or bool(self.buffered))

    # -- reading through the buffer ------------------------------------------------------
    def _fill(self) -> bool:
        assert self.sock is not None
        chunk = self.sock.recv(65536)
        self.buffered += chunk
        return bool(chunk)

    def _line(self) -> bytes:
        """The next line with its end (or what is left before the connection closed)."""
        buf = self.buffered
        start = 0
        while (end := buf.find(b"\n", start)) < 0:
            if len(buf) > MAX_LINE:
                raise ProtocolError("header line too long")
            start = len(buf)
            if not self._fill():
                line = bytes(buf)
                buf.clear()
                return line
        if end >= MAX_LINE:
            raise ProtocolError("header line too long")
        line = bytes(buf[: end + 1])
        del buf[: end + 1]
        return line

    def _read(self, size: int) -> bytes:
        buf = self.buffered
        while len(buf) < size:
            if not self._fill():
                got = bytes(buf)
                buf.clear()
                raise http.client.IncompleteRead(got, size - len(got))
        data = bytes(buf[:size])
        del buf[:size]
        return data

    def _read_to_close(self) -> bytes:
        while self._fill():
            pass
        data = bytes(self.buffered)
        self.buffered.clear()
        return data

    def _status_line(self) -> tuple[int, str, str]:
        line = self._line()
        if not line:
            raise http.client.RemoteDisconnected("the service closed the connection without an answer")
        version, _, rest = line.decode("latin-1").rstrip("\r\n").partition(" ")
        code, _, reason = rest.partition(" ")
        if not version.startswith("HTTP/1.") or len(code) != 3 or not (code.isascii() and code.isdigit()):
            raise ProtocolError(f"not an HTTP/1.x status line: {line[:80]!r}")
        return int(code), reason.strip(), version

    def _headers(self) -> list[tuple[str, str]]:
        out: list[tuple[str, str]] = []
        while True:
            line = self._line()
            if line in (b"\r\n", b"\n"):
                return out
            if not line.endswith(b"\n"):
                raise ProtocolError("the answer ended inside its headers")
            name, colon, value = line.decode("latin-1").partition(":")
            if not colon:
                raise ProtocolError(f"malformed header line: {line[:80]!r}")
            out.append((name.strip(), value.strip()))
            if len(out) > MAX_HEADERS:
                raise ProtocolError(f"more than {MAX_HEADERS} headers")

    def _chunked(self) -> bytes:
        parts: list[bytes] = []
        while True:
            size_text = self._line().split(b";", 1)[0].strip()
            try:
                size = int(size_text, 16) if size_text.isascii() and size_text.isalnum() else -1
            except ValueError:
                size = -1
            if size < 0:
                raise ProtocolError(f"bad chunk size {size_text[:20]!r}")
            if size == 0:
                self._headers()  # trailers, then the blank line
                return b"".join(parts)
            parts.append(self._read(size))
            if self._line() not in (b"\r\n", b"\n"):
                raise ProtocolError("a chunk is longer than its size says")


class LoopbackTransport(HttpTransport):
    """Keep-alive connections per host:port, reused LIFO; thread-safe (the proxy's workers
    share it). An idle connection the server has closed is noticed before reuse and replaced."""

    def __init__(self, *, connection_timeout: float = 10.0, read_timeout: float = 60.0, max_idle: int = 64):
        self.connection_timeout = connection_timeout
        self.read_timeout = read_timeout
        self.max_idle = max_idle
        self._idle: dict[tuple[str, int], list[_Connection]] = {}
        self._lock = threading.Lock()
        self._streaming: RequestsTransport | None = None
        self.connections_made = 0  # for tests and curiosity: how often keep-alive failed us

    def __enter__(self) -> LoopbackTransport:
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

    def _checkout(self, host: str, port: int, connect_timeout: float) -> _Connection:
        with self._lock:
            idle = self._idle.get((host, port))
            while idle:
                conn = idle.pop()
                if not _dropped(conn):
                    return conn
                conn.close()
            self.connections_made += 1
        try:
            return _Connection(host, port, connect_timeout)
        except TimeoutError as exc:
            raise ServiceRequestTimeoutError(exc, error=exc) from exc
        except OSError as exc:
            raise ServiceRequestError(exc, error=exc) from exc

    def _checkin(self, host: str, port: int, conn: _Connection) -> None:
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
            assert conn.sock is not None
            conn.sock.settimeout(kwargs.get("read_timeout", self.read_timeout))
            body = request.content
            if isinstance(body, str):
                body = body.encode("utf-8")
            answer = conn.exchange(request.method, path, dict(request.headers), body)
        except TimeoutError as exc:
            conn.close()
            raise ServiceResponseTimeoutError(exc, error=exc) from exc
        except (OSError, http.client.HTTPException) as exc:
            conn.close()
            raise ServiceResponseError(exc, error=exc) from exc
        except BaseException:  # whatever it was, the connection's state is unknown: not reused
            conn.close()
            raise
        if answer.will_close:
            conn.close()
        else:
            self._checkin(host, port, conn)
        headers = CaseInsensitiveDict(answer.headers)
        response = HttpResponseImpl(
            request=request,
            internal_response=_Closed(),
            status_code=answer.status,
            reason=answer.reason,
            headers=headers,
            content_type=headers.get("content-type"),
            stream_download_generator=None,
        )
        response._content = answer.body  # read whole: nothing left to stream
        return response


def _dropped(conn: _Connection) -> bool:
    """An idle keep-alive connection that is readable has been closed (or sent garbage) by the
    server: reusing it would fail the request it carries."""
    sock = conn.sock
    if sock is None or conn.buffered:
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
