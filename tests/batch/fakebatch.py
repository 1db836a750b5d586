"""A scripted Batch endpoint in a thread, for answers localbatch never gives on purpose
(RequestBodyTooLarge, per-task server errors, 5xx bursts). Loopback only; no auth check."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

Reply = tuple[int, Any]  # (status, JSON body or None)


def batch_error(code: str, message: str = "error", values: dict[str, str] | None = None) -> dict:
    doc: dict[str, Any] = {"code": code, "message": {"lang": "en-US", "value": f"{message}\nRequestId:r\nTime:t"}}
    if values:
        doc["values"] = [{"key": k, "value": v} for k, v in values.items()]
    return doc


class FakeBatch:
    """``script(method, path, body) -> (status, json)``; every request is recorded."""

    def __init__(self, script: Callable[[str, str, Any], Reply]):
        self.script = script
        self.requests: list[tuple[str, str, Any]] = []
        self.targets: list[str] = []  # each request's path with its query, as sent
        self._lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # keep test output clean
                pass

            def _do(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                raw = self.rfile.read(length) if length else b""
                body = json.loads(raw) if raw else None
                path = urlsplit(self.path).path.split("/accounts/fake", 1)[-1]
                with fake._lock:
                    fake.requests.append((self.command, path, body))
                    fake.targets.append(self.path)
                status, doc = fake.script(self.command, path, body)
                data = b"" if doc is None else json.dumps(doc).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _do

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/accounts/fake"
        self._thread = threading.Thread(target=self.server.serve_forever, name="fakebatch", daemon=True)
        self._thread.start()

    def paths(self, method: str, fragment: str) -> list[Any]:
        with self._lock:
            return [body for m, p, body in self.requests if m == method and fragment in p]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(timeout=5)
