"""The loopback HTTP server: request parsing, shared-key checks, dispatch along ``api.routes``,
injected latency, connection limits. The process around it (``serve``) is in :mod:`.serving`.

URL form: ``http://127.0.0.1:<port>/accounts/<account>/<Batch REST path>``; the account part is
what an azure-batch ``BatchClient`` gets as its endpoint, and it signs the full path, so the
server checks the signature over exactly what was sent.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, unquote

from . import api, auth
from ._util import ACCOUNT_RE, SUPPORTED_API_VERSIONS, ApiError
from .api.tasks import add_task_collection
from .engine import Engine

if TYPE_CHECKING:
    pass

log = logging.getLogger("batchfed_lab.localbatch")

MAX_BODY_BYTES = 4 * 1024 * 1024
MAX_DISCARD_BYTES = 256 * 1024 * 1024  # a larger body is not even read to be refused
MAX_LINE_BYTES = 65536  # per request or header line, as the standard library's server
MAX_HEADERS = 100
MAX_TASK_COLLECTION_BYTES = 1024 * 1024  # Batch refuses larger addtaskcollection bodies (413)
READ_TIMEOUT = 60.0  # seconds a connection may keep the server waiting on one read (or idle between requests)
MAX_CONNECTIONS = 256  # open connections; past it the longest idle one is closed for a new one
STREAM_BLOCK = 1 << 16


class RequestHeaders:
    """The headers of one request, in the order received, looked up without regard to case:
    what the handlers use of ``email.message.Message``, whose parser cost localbatch more CPU
    than answering a task listing."""

    __slots__ = ("_first", "_items")

    def __init__(self, items: list[tuple[str, str]]):
        self._items = items
        self._first: dict[str, str] = {}
        for name, value in items:
            self._first.setdefault(name.lower(), value)

    def get(self, name: str, default: str | None = None) -> str | None:
        return self._first.get(name.lower(), default)

    def items(self) -> list[tuple[str, str]]:
        return list(self._items)


_date_header: tuple[int, str] = (0, "")


class LocalBatchServer(ThreadingHTTPServer):
    """One thread per connection, at most ``max_connections`` of them: a connection waiting for
    its next request (idle keep-alive, or a head never finished) is closed to make room for a new
    one, and any read that waits longer than ``read_timeout`` ends its connection, so that
    half-open or forgotten connections can neither pile up nor keep others out."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(
        self,
        address: tuple[str, int],
        engine: Engine,
        key: str,
        latency_ms: float,
        read_timeout: float = READ_TIMEOUT,
        max_connections: int = MAX_CONNECTIONS,
    ):
        self.engine = engine
        self.key = key
        self.latency = max(0.0, latency_ms) / 1000.0
        self.read_timeout = read_timeout
        self.max_connections = max(1, max_connections)
        self._open: dict[socket.socket, float | None] = {}  # connection -> idle since (monotonic), None while busy
        self._open_lock = threading.Lock()
        super().__init__(address, Handler)

    def process_request(self, request, client_address) -> None:  # the stdlib's signature
        with self._open_lock:
            if len(self._open) >= self.max_connections:
                self._close_idle(len(self._open) - self.max_connections + 1)
            if len(self._open) >= self.max_connections:
                log.warning("%d connections busy: closing a new one from %s", len(self._open), client_address[0])
                super().shutdown_request(request)
                return
            self._open[request] = time.monotonic()
        super().process_request(request, client_address)

    def _close_idle(self, count: int) -> None:
        """Close the ``count`` longest idle connections (caller holds the lock): their threads'
        reads return at once and the threads end."""
        idle = sorted((since, id(conn), conn) for conn, since in self._open.items() if since is not None)
        for _since, _id, conn in idle[:count]:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self._open.pop(conn, None)

    def mark(self, conn: socket.socket, busy: bool) -> None:
        with self._open_lock:
            if conn in self._open:
                self._open[conn] = None if busy else time.monotonic()

    def shutdown_request(self, request) -> None:  # the stdlib's signature
        with self._open_lock:
            self._open.pop(request, None)
        super().shutdown_request(request)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: the SDK's session reuses its connection
    server_version = "localbatch"
    sys_version = ""
    server: LocalBatchServer
    raw_requestline: bytes  # set by the standard library before parse_request

    def setup(self) -> None:
        self._body_left = 0
        super().setup()
        self.connection.settimeout(self.server.read_timeout)  # every read and write of the connection
        # one write per response plus no Nagle: loopback round trips stay well under a millisecond
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def handle(self) -> None:
        """Requests one after the other, the connection counted idle while it waits for the next."""
        self.close_connection = True
        while True:
            self.server.mark(self.connection, busy=False)
            self.handle_one_request()
            if self.close_connection:
                break

    def log_message(self, format: str, *args: object) -> None:
        log.debug("%s %s", self.address_string(), format % args)

    def parse_request(self) -> bool:
        """Read the request line and headers. A plain HTTP/1.x request line takes the short
        path below; anything else (HTTP/0.9, HTTP/2, malformed) gets the standard library's
        checks and error answers."""
        line = str(self.raw_requestline, "iso-8859-1").rstrip("\r\n")
        words = line.split()
        if len(words) != 3 or words[2] not in ("HTTP/1.1", "HTTP/1.0"):
            return super().parse_request()
        self.requestline = line
        self.command, path, self.request_version = words
        self.path = "/" + path.lstrip("/") if path.startswith("//") else path  # as the stdlib: no '//' open redirect
        self.close_connection = self.request_version == "HTTP/1.0"
        items: list[tuple[str, str]] = []
        while True:
            raw = self.rfile.readline(MAX_LINE_BYTES + 1)
            if len(raw) > MAX_LINE_BYTES:
                self.send_error(431, "Line too long")
                return False
            if raw in (b"\r\n", b"\n", b""):
                break
            if len(items) >= MAX_HEADERS:
                self.send_error(431, "Too many headers")
                return False
            text = str(raw, "iso-8859-1").rstrip("\r\n")
            name, colon, value = text.partition(":")
            # folded lines and names with spaces are refused: they are how headers get smuggled
            if not colon or not name or name != name.strip() or " " in name or "\t" in name:
                self.send_error(400, "Bad header line")
                return False
            items.append((name, value.lstrip(" \t")))  # trailing spaces kept, as the stdlib keeps them
        self.headers = RequestHeaders(items)  # type: ignore[assignment]  # the handlers read it as a Mapping, as they do the stdlib's
        self.server.mark(self.connection, busy=True)
        connection = (self.headers.get("Connection") or "").lower()
        if connection == "close":
            self.close_connection = True
        elif connection == "keep-alive":
            self.close_connection = False
        if (self.headers.get("Expect") or "").lower() == "100-continue" and self.request_version == "HTTP/1.1":
            return self.handle_expect_100()
        return True

    def date_time_string(self, timestamp: float | None = None) -> str:
        # one formatting per second, not per answer
        global _date_header
        if timestamp is not None:
            return super().date_time_string(timestamp)
        second = int(time.time())
        cached = _date_header  # one read: another thread may swap it meanwhile
        if cached[0] != second:
            cached = _date_header = (second, super().date_time_string(second))
        return cached[1]

    def do_GET(self) -> None:
        self._handle()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_GET

    def _handle(self) -> None:
        request_id = str(uuid.uuid4())
        self._body_left = 0
        try:
            response = self._dispatch(request_id)
        except ApiError as exc:
            response = api.Response(exc.status, exc.body(request_id) if exc.status != 304 else None)
        except (TimeoutError, ConnectionError):  # the client went quiet (read timeout) or away: nobody to answer
            self.close_connection = True
            return
        except Exception:  # a bug must not kill the connection without an answer
            log.exception("internal error on %s %s", self.command, self.path.split("?")[0])
            err = ApiError(500, "InternalError", "The server encountered an internal error. Please retry the request.")
            response = api.Response(500, err.body(request_id))
        if self._body_left:
            self.close_connection = True  # answered before its body was read: the rest would read as a request
        try:
            self._send(response, request_id)
        except OSError:
            self.close_connection = True
        finally:
            if isinstance(response.body, api.FileRange):
                response.body.file.close()

    def _content_length(self) -> int:
        """The body's length from the head; 400 for what cannot be a length."""
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            self.close_connection = True
            raise ApiError(400, "InvalidHeaderValue", "Chunked request bodies are not supported; send Content-Length.")
        text = (self.headers.get("Content-Length") or "0").strip()
        if not text.isdigit():  # not a number, or negative
            self.close_connection = True
            raise ApiError(
                400, "InvalidHeaderValue", "Content-Length must be a non-negative integer.", {"HeaderName": "Content-Length"}
            )
        return int(text)

    def _read_body(self, length: int) -> bytes:
        if length > MAX_BODY_BYTES:
            self._discard_body(length)
            raise ApiError(413, "RequestBodyTooLarge", "The request body is too large.")
        raw = self._read_within_timeout(length) if length else b""
        self._body_left = 0
        if len(raw) < length:
            raise ConnectionError("the client sent less than its Content-Length")
        return raw

    def _read_within_timeout(self, length: int) -> bytes:
        """The body, which must arrive whole within the read timeout: a client trickling it in
        a byte at a time would otherwise hold its thread (and a connection slot) for ever."""
        deadline = time.monotonic() + self.server.read_timeout
        parts: list[bytes] = []
        left = length
        try:
            while left > 0:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError("the request body did not arrive within the read timeout")
                self.connection.settimeout(remaining)
                block = self.rfile.read1(min(left, 1 << 16))
                if not block:
                    break
                parts.append(block)
                left -= len(block)
        finally:
            self.connection.settimeout(self.server.read_timeout)
        return b"".join(parts)

    def _discard_body(self, length: int) -> None:
        """Read and drop a body too large to use, so that the client, still sending it, reads
        the 413 (as from Batch) instead of a broken pipe. Past MAX_DISCARD_BYTES the
        connection is closed unread: a client that large gets no answer, as from Batch."""
        if length > MAX_DISCARD_BYTES:
            self.close_connection = True  # the unread body would poison the connection
            return
        left = length
        while left > 0:
            block = self.rfile.read(min(left, 1 << 16))
            if not block:
                self.close_connection = True
                return
            left -= len(block)
        self._body_left = 0

    def _dispatch(self, request_id: str) -> api.Response:
        self._body_left = self._content_length()
        target = self.path
        path, _, query = target.partition("?")
        parts = path.split("/")  # ['', 'accounts', '<account>', ...]
        account = _account_of(parts)
        headers = list(self.headers.items())
        # the signature covers the head only: an unsigned body is refused unread
        auth.verify(self.command, target, headers, account, self.server.key)
        raw = self._read_body(self._body_left)
        if self.server.latency:
            time.sleep(self.server.latency)
        params = {k: v[0] for k, v in parse_qs(query, keep_blank_values=True).items()}
        _check_api_version(params.get("api-version"))
        handler, args = _route(self.command, parts, raw)
        req = api.Request(
            method=self.command,
            account=account,
            route="/" + "/".join(parts[3:]),
            args=args,
            query=params,
            body=_json_body(raw),
            headers={k.lower(): v for k, v in headers},
            base=f"{self.server.engine.public_root}/accounts/{account}",
            request_id=request_id,
        )
        return handler(self.server.engine, req)

    def _send(self, response: api.Response, request_id: str) -> None:
        body = response.body
        if isinstance(body, api.FileRange):
            payload = b""
            ctype = None
        elif isinstance(body, (bytes, bytearray)):
            payload = bytes(body)
            ctype = None
        elif body is None:
            payload = b""
            ctype = None
        else:
            payload = api.dumps(body)
            ctype = "application/json;odata=minimalmetadata"
        lines = [f"HTTP/1.1 {response.status} {self.responses.get(response.status, ('',))[0]}"]
        headers = {"request-id": request_id, "DataServiceVersion": "3.0", "Date": self.date_time_string()}
        client_id = self.headers.get("client-request-id")
        if client_id:
            headers["client-request-id"] = client_id
        if ctype:
            headers["Content-Type"] = ctype
        headers.update(response.headers)
        if self.command == "HEAD" or response.status == 304:
            headers.setdefault("Content-Length", str(len(payload)))
            payload = b""
        elif isinstance(body, api.FileRange):
            headers["Content-Length"] = str(body.length)
        else:
            headers["Content-Length"] = str(len(payload))
        if self.close_connection:
            headers["Connection"] = "close"
        lines += [f"{k}: {v}" for k, v in headers.items()]
        # a single write: headers and body in one segment
        self.wfile.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + payload)
        if isinstance(body, api.FileRange) and self.command != "HEAD":
            _stream(body, self.wfile)
        self.log_request(response.status, len(payload))


# -- the steps of Handler._dispatch, in the order it takes them -------------------------------
def _account_of(parts: list[str]) -> str:
    """The account of a path split on '/', which must start ``/accounts/<account>``."""
    if len(parts) < 3 or parts[1] != "accounts" or not ACCOUNT_RE.fullmatch(parts[2]):
        raise ApiError(
            400,
            "InvalidUri",
            "The URI must look like /accounts/<account>/<Batch REST path>; account names are 3-24 lower-case letters or digits.",
        )
    return parts[2]


def _check_api_version(version: str | None) -> None:
    if not version:
        raise ApiError(
            400,
            "MissingRequiredQueryParameter",
            "A query parameter that's mandatory for this request is not specified.",
            {"QueryParameterName": "api-version"},
        )
    if version not in SUPPORTED_API_VERSIONS:
        raise ApiError(
            400,
            "InvalidQueryParameterValue",
            f"localbatch speaks api-version {', '.join(sorted(SUPPORTED_API_VERSIONS))}.",
            {"QueryParameterName": "api-version", "QueryParameterValue": version},
        )


def _route(method: str, parts: list[str], raw: bytes) -> tuple[api.Handler, tuple[str, ...]]:
    """The handler of the path after the account, and its arguments; a body too large for
    that handler is refused here, before it is parsed."""
    segments = [unquote(s) for s in parts[3:] if s != ""]
    found = api.match_route(method, segments)
    if found is None:
        raise ApiError(400, "InvalidUri", "The requested URI does not represent any resource on the server.", {"Method": method})
    handler, args = found
    if handler is add_task_collection and len(raw) > MAX_TASK_COLLECTION_BYTES:
        raise ApiError(413, "RequestBodyTooLarge", "The request body is larger than 1 MB; send fewer tasks per call.")
    return handler, args


def _stream(part: api.FileRange, out: object) -> None:
    """Copy a file's byte range to the connection a block at a time (a range of a large file
    never sits in memory whole)."""
    part.file.seek(part.start)
    left = part.length
    while left > 0:
        block = part.file.read(min(left, STREAM_BLOCK))
        if not block:
            raise ConnectionError("the file shrank while it was sent")  # the promised length cannot be kept
        out.write(block)  # type: ignore[attr-defined]  # the handler's wfile
        left -= len(block)


def _no_constant(name: str) -> object:
    raise ValueError(f"{name} is not JSON")


def _json_body(raw: bytes) -> object:
    if not raw:
        return None
    try:
        return json.loads(raw, parse_constant=_no_constant)  # NaN and Infinity are not JSON
    except (ValueError, RecursionError):  # not JSON, not UTF-8, or nested beyond reason
        raise ApiError(400, "InvalidRequestBody", "The request body is not valid JSON.") from None


__all__ = ["MAX_CONNECTIONS", "READ_TIMEOUT", "LocalBatchServer"]
