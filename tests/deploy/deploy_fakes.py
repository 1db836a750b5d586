"""A fake managed-identity token endpoint with a blob endpoint that accepts its token, on
loopback (the deploy tests' ``fake_identity`` fixture)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

TOKEN = "fake-identity-token-7f3a"
IDENTITY_HEADER = "fake-identity-header-91c2"


@dataclass
class FakeIdentity:
    """``/msi/token`` (IDENTITY_ENDPOINT style), ``/metadata/identity/oauth2/token`` (IMDS
    style) and ``/<account>/<container>/<blob>`` serving ``blobs`` to a bearer of TOKEN."""

    blobs: dict[str, bytes] = field(default_factory=dict)
    token_requests: list[dict[str, object]] = field(default_factory=list)
    blob_requests: list[dict[str, str]] = field(default_factory=list)
    busy_tokens: int = 0  # token requests answered 503 first (an endpoint not ready yet)
    port: int = 0

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@contextmanager
def serving() -> Iterator[FakeIdentity]:
    fake = FakeIdentity()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:  # keep the test output clean
            pass

        def _send(self, code: int, body: bytes, headers: dict[str, str] | None = None) -> None:
            self.send_response(code)
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            if parts.path in ("/msi/token", "/metadata/identity/oauth2/token"):
                query = {k: v[0] for k, v in parse_qs(parts.query).items()}
                fake.token_requests.append({"path": parts.path, "query": query, "headers": dict(self.headers)})
                if len(fake.token_requests) <= fake.busy_tokens:
                    return self._send(503, b"")
                ok = (
                    self.headers.get("X-IDENTITY-HEADER") == IDENTITY_HEADER
                    if parts.path == "/msi/token"
                    else self.headers.get("Metadata") == "true"
                )
                if not ok:
                    return self._send(400, b'{"error": "invalid_request"}')
                return self._send(200, json.dumps({"access_token": TOKEN, "expires_in": "3600"}).encode())
            fake.blob_requests.append({"path": parts.path, "auth": self.headers.get("Authorization", "")})
            if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                return self._send(403, b"", {"x-ms-error-code": "AuthenticationFailed"})
            if parts.path not in fake.blobs:
                return self._send(404, b"", {"x-ms-error-code": "BlobNotFound"})
            return self._send(200, fake.blobs[parts.path])

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    fake.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, name="fake-identity", daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
