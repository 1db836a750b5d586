"""The server's reading of a request head: what the SDK sends reads as it always did, and what
no HTTP/1.1 client sends is refused with the status a standard server gives."""

from __future__ import annotations

import socket
from email.utils import formatdate
from pathlib import Path

import pytest

from batchfed_lab.localbatch import auth, control


def exchange(info: control.LocalBatchInfo, raw: bytes, *, reads_until_close: bool = True) -> bytes:
    """Send ``raw`` and return everything the server answers until it closes (or 2 s pass)."""
    with socket.create_connection((info.host, info.port), timeout=2) as sock:
        sock.sendall(raw)
        out = b""
        try:
            while chunk := sock.recv(65536):
                out += chunk
                if not reads_until_close and b"\r\n\r\n" in out:
                    break
        except TimeoutError:
            pass
        return out


def status_of(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1])


def get(account: str, *extra: str, version: str = "HTTP/1.1") -> bytes:
    lines = [f"GET /accounts/{account}/jobs?api-version=2025-06-01 {version}", "Host: 127.0.0.1", *extra]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def test_header_names_are_read_without_regard_to_case(localbatch, account):
    answer = exchange(localbatch, get(account, "CLIENT-Request-ID: abc-123", "Connection: close"))
    assert status_of(answer) == 403  # unsigned, as it should be; the head was read
    assert b"\r\nclient-request-id: abc-123\r\n" in answer


def test_two_requests_share_one_kept_alive_connection(localbatch, account):
    answer = exchange(localbatch, get(account) + get(account, "Connection: close"))
    assert answer.count(b"HTTP/1.1 403 ") == 2
    assert b"Connection: close" in answer.split(b"HTTP/1.1 403 ")[2]


def test_an_http_1_0_request_gets_its_answer_and_the_connection_closes(localbatch, account):
    answer = exchange(localbatch, get(account, version="HTTP/1.0"))
    assert status_of(answer) == 403 and answer.count(b"HTTP/1.1 ") == 1


@pytest.mark.parametrize(
    "extra, status",
    [
        ((" folded: onto the line before",), 400),  # obsolete line folding: a smuggling vector
        (("No Colon Here",), 400),
        (("Bad Name: x",), 400),
        (("Name : x",), 400),
        (tuple(f"X-H{i}: v" for i in range(101)), 431),
        (("X-Long: " + "a" * 70000,), 431),
    ],
    ids=["folded", "no-colon", "space-in-name", "space-before-colon", "101-headers", "line-too-long"],
)
def test_a_malformed_head_is_refused_and_the_connection_closed(localbatch, account, extra, status):
    answer = exchange(localbatch, get(account, "X-First: ok", *extra))
    assert status_of(answer) == status
    assert answer.count(b"HTTP/1.") == 1  # nothing after: the connection was closed


@pytest.mark.parametrize(
    "line, code",
    [(b"GARBAGE\r\n\r\n", 400), (b"GET /x HTTP/2.0\r\n\r\n", 505), (b"GET /x HTTP/1.1 extra\r\n\r\n", 400)],
)
def test_other_request_lines_get_the_standard_library_answers(localbatch, line, code):
    # a line the server cannot read as HTTP/1.x is answered as the standard library does
    # (an error page without a status line: it cannot know the client speaks HTTP/1.x)
    answer = exchange(localbatch, line)
    assert f"Error code: {code}".encode() in answer


def test_an_oversized_body_is_read_and_refused_with_413_on_a_kept_alive_connection(localbatch, account):
    # the client sends all of it before reading: it must get Batch's 413, not a broken pipe
    body = b"x" * (6 * 1024 * 1024)
    target = f"/accounts/{account}/jobs/j/addtaskcollection?api-version=2025-06-01"
    signed = {"Content-Type": "application/json", "Content-Length": str(len(body)), "ocp-date": formatdate(usegmt=True)}
    key = auth.read_key(Path(localbatch.key_file).parent)
    signed["Authorization"] = auth.authorization("POST", target, signed, account, key)
    head = (
        f"POST {target} HTTP/1.1\r\nHost: 127.0.0.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in signed.items()) + "\r\n"
    ).encode("latin-1")
    answer = exchange(localbatch, head + body + get(account, "Connection: close"))
    assert status_of(answer) == 413 and b'"RequestBodyTooLarge"' in answer
    assert answer.count(b"HTTP/1.1 ") == 2  # the next request on the connection is answered too
