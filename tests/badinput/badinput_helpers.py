"""Helpers of the bad-input tests (a module of its own: ``conftest`` names clash across folders)."""

from __future__ import annotations

import email.utils
import http.client
import json
from typing import Any

from stack import Stack, job_yaml


def assert_proxy_alive_and_placing(stack: Stack, pid: int, job_id: str) -> None:
    """The proxy that was running before the bad inputs still runs, and still places."""
    from batchfed_lab.proxy import lifecycle

    running = [p.pid for p in lifecycle.running(stack.client.workspace)]
    assert running == [pid], f"the proxy changed or died: {running} (was {pid})"
    stack.client.submit("bad", job_yaml(job_id)).wait(30)
    assert [p.pid for p in lifecycle.running(stack.client.workspace)] == [pid]


class Raw:
    """Raw HTTP to localbatch: signed like the SDK signs (or not, or badly)."""

    def __init__(self, stack: Stack):
        from batchfed_lab.localbatch import control

        self.info = control.info(stack.client.workspace)
        assert self.info is not None
        self.key = (stack.root / "localbatch" / "key").read_text().strip()

    def request(
        self,
        method: str,
        target: str,
        body: bytes | str | None = None,
        *,
        sign: bool | str = True,
        account: str | None = None,
        headers: dict[str, str] | None = None,
        date: str | None = None,
    ) -> tuple[int, Any]:
        """``target`` is the path and query as sent. ``sign``: True (the workspace key), False
        (unsigned), or another base64 key (forged)."""
        from batchfed_lab.localbatch import auth

        data = body.encode() if isinstance(body, str) else body
        h = {"ocp-date": date or email.utils.formatdate(usegmt=True), **(headers or {})}
        if data is not None:
            h.setdefault("Content-Type", "application/json; odata=minimalmetadata")
            h.setdefault("Content-Length", str(len(data)))
        acct = account or target.split("/")[2]
        if sign:
            key = self.key if sign is True else sign
            h["Authorization"] = auth.authorization(method, target, h, acct, key)
        conn = http.client.HTTPConnection("127.0.0.1", self.info.port, timeout=30)
        try:
            conn.putrequest(method, target, skip_accept_encoding=True)
            for k, v in h.items():
                conn.putheader(k, v)
            conn.endheaders()
            if data:
                try:
                    conn.send(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the server answered (413) without reading the rest: read that answer
            resp = conn.getresponse()
            raw = resp.read()
        finally:
            conn.close()
        try:
            return resp.status, json.loads(raw) if raw else None
        except ValueError:
            return resp.status, raw
