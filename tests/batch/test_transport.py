"""The lean loopback transport: loopback accounts use it, Azure ones keep azure-core's default;
connection failures map to the SDK's errors (so retries and ServiceUnreachable work as on
Azure); keep-alive connections are reused; streamed downloads are not read whole."""

from __future__ import annotations

import base64
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest
from azure.core.pipeline.transport import RequestsTransport

from batchfed_lab.batch.adapter import BatchAccount, RetrySettings
from batchfed_lab.batch.transport import LoopbackTransport
from batchfed_lab.config import load_pool
from batchfed_lab.config.jobs import TaskDefinition
from batchfed_lab.errors import BatchError

from .conftest import wait_for

KEY = base64.b64encode(b"k" * 32).decode()
FAST = RetrySettings(total=2, connect=1, read=1, status=2, backoff_factor=0.01, backoff_max=0.05, connection_timeout=2)


def transport_of(acct: BatchAccount):
    return acct._client._client._pipeline._transport  # the SDK keeps it there; no public accessor


def test_loopback_accounts_use_the_lean_transport_and_azure_ones_the_default():
    local = BatchAccount("http://127.0.0.1:9/accounts/lab", key=KEY)
    azure = BatchAccount("https://acme.westeurope.batch.azure.com", key=KEY)
    assert isinstance(transport_of(local), LoopbackTransport)
    assert isinstance(transport_of(azure), RequestsTransport)
    local.close()
    azure.close()


def policy_names(acct: BatchAccount) -> set[str]:
    return {type(getattr(p, "_policy", p)).__name__ for p in acct._client._client._pipeline._impl_policies}


def test_loopback_accounts_sign_and_retry_without_the_rest_of_the_default_policies():
    local = BatchAccount("http://127.0.0.1:9/accounts/lab", key=KEY)
    traced = BatchAccount("http://127.0.0.1:9/accounts/lab", key=KEY, client_options={"logging_enable": True})
    tuned = BatchAccount("http://127.0.0.1:9/accounts/lab", key=KEY, client_options={"retry_total": 0})
    azure = BatchAccount("https://acme.westeurope.batch.azure.com", key=KEY)
    # _ReadFailedBody: a failed download's error body is read before the SDK parses it
    needed = {"_RequestCounter", "BatchExceptionPolicy", "RetryPolicy", "BatchSharedKeyAuthPolicy", "_ReadFailedBody"}
    assert policy_names(local) == needed
    default = {
        "RequestIdPolicy",
        "ProxyPolicy",
        "RedirectPolicy",
        "NetworkTraceLoggingPolicy",
        "DistributedTracingPolicy",
        "HttpLoggingPolicy",
    }
    assert needed | default <= policy_names(azure)
    assert needed | default <= policy_names(traced)  # network logging asked for: the default list
    assert needed | default <= policy_names(tuned)  # so do the caller's own retry settings
    retry = next(p for p in tuned._client._client._pipeline._impl_policies if type(p).__name__ == "RetryPolicy")
    assert retry.total_retries == 0
    for acct in (local, traced, tuned, azure):
        acct.close()


@contextmanager
def raw_server(on_connection: Callable[[socket.socket], None]) -> Iterator[int]:
    """A loopback listener whose every connection goes to ``on_connection``; yields its port
    and is stopped (thread joined, socket closed) on exit."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    listener.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                continue
            with conn:
                on_connection(conn)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        thread.join(timeout=5)
        listener.close()


@pytest.fixture
def cutting_server() -> Iterator[tuple[str, list[int]]]:
    """Accepts, reads the request, closes without an answer; counts connections."""
    seen: list[int] = []

    def cut(conn: socket.socket) -> None:
        seen.append(1)
        conn.recv(65536)

    with raw_server(cut) as port:
        yield f"http://127.0.0.1:{port}/accounts/cut", seen


def test_an_answer_cut_off_is_retried_then_service_unreachable(cutting_server):
    url, seen = cutting_server
    acct = BatchAccount(url, key=KEY, retry=FAST)
    with pytest.raises(BatchError) as info:
        acct.get_job("j")
    assert info.value.code == "ServiceUnreachable"
    assert len(seen) == 1 + FAST.read  # the first try and one read retry, as RequestsTransport does
    assert KEY not in str(info.value)
    acct.close()


def test_keep_alive_connections_are_reused(account):
    account.create_pool(
        load_pool(
            {"pool_specification": {"id": "ka", "vm_size": "standard_d2_v3", "vm_count": {"dedicated": 1}}}
        ).pool_specification
    )
    account.create_job("ka-job", "ka")
    for _ in range(20):
        assert account.get_job("ka-job").pool_id == "ka"
    assert transport_of(account).connections_made == 1  # 22 requests, one after the other: one connection


def test_a_large_task_file_is_streamed_not_read_whole(account):
    account.create_pool(
        load_pool(
            {"pool_specification": {"id": "big", "vm_size": "standard_d2_v3", "vm_count": {"dedicated": 1}}}
        ).pool_specification
    )
    account.create_job("bigjob", "big")
    account.add_tasks("bigjob", [TaskDefinition(id="out", command="head -c 4000000 /dev/zero")])
    wait_for(lambda: account.get_task("bigjob", "out").state == "completed", "the task to complete")
    assert account.read_task_file("bigjob", "out", "stdout.txt", max_bytes=1000) == b"\0" * 1000
    assert transport_of(account)._streaming is not None  # downloads went to the streaming transport
    assert len(account.read_task_file("bigjob", "out", "stdout.txt")) == 4_000_000


def test_an_idle_connection_the_server_closed_is_replaced_not_reused():
    """The server answers as keep-alive, then hangs up (a restart, an idle timeout). The next
    request notices before sending and opens a new connection: a POST, which the pipeline
    does not retry after a failed read, must not be sent into the dead connection."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class HangUpAfterAnswer(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def do_POST(self):
            self.rfile.read(int(self.headers.get("content-length") or 0))
            self.send_response(201)
            self.send_header("content-length", "0")
            self.end_headers()
            self.close_connection = True  # no "Connection: close" said: the client finds out itself

    server = ThreadingHTTPServer(("127.0.0.1", 0), HangUpAfterAnswer)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        acct = BatchAccount(f"http://127.0.0.1:{server.server_address[1]}/accounts/hang", key=KEY, retry=FAST)
        for i in range(3):
            assert acct.create_job(f"j{i}", "p").created
            time.sleep(0.05)  # let the hang-up arrive, as it would between two placements
        assert transport_of(acct).connections_made == 3
        acct.close()
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture
def canned() -> Iterator[tuple[str, list[bytes], list[bytes]]]:
    """A server that answers each request with the next canned answer (raw bytes) on the
    same connection, and hangs up after an answer that is marked ``b"<close>"``; the
    requests it read are kept."""
    answers: list[bytes] = []
    requests: list[bytes] = []

    def answer_each(conn: socket.socket) -> None:
        while answers:
            data = b""
            while b"\r\n\r\n" not in data:
                more = conn.recv(65536)
                if not more:
                    return
                data += more
            requests.append(data)
            answer = answers.pop(0)
            conn.sendall(answer.replace(b"<close>", b""))
            if answer.endswith(b"<close>"):
                return

    with raw_server(answer_each) as port:
        yield f"http://127.0.0.1:{port}/x", answers, requests


def send(url: str, transport: LoopbackTransport, method: str = "GET", body: bytes | None = None):
    from azure.core.rest import HttpRequest

    return transport.send(HttpRequest(method, url, content=body, headers={"x-ms-test": "1"}))


def test_answers_are_read_by_length_by_chunks_and_to_the_close(canned):
    url, answers, requests = canned
    answers += [
        b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n{"a": "bc"}',
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nchun\r\n6;x=y\r\nked ok\r\n0\r\nTrailer: t\r\n\r\n",
        b'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\nETag: "e"\r\n\r\n',
        b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n",
        b"HTTP/1.0 200 OK\r\n\r\nto the end<close>",
    ]
    transport = LoopbackTransport()
    first = send(url, transport, "POST", b"body!")
    assert (first.status_code, first.json(), first.headers["content-type"]) == (200, {"a": "bc"}, "application/json")
    assert send(url, transport).content == b"chunked ok"
    no_content = send(url, transport, "DELETE")
    assert (no_content.status_code, no_content.content, no_content.headers["etag"]) == (204, b"", '"e"')
    assert send(url, transport).status_code == 404
    assert send(url, transport).content == b"to the end"
    assert transport.connections_made == 1  # keep-alive throughout; the last answer closed it
    head, _, body = requests[0].partition(b"\r\n\r\n")
    assert head.startswith(b"POST /x HTTP/1.1\r\n") and b"\r\nContent-Length: 5" in head and b"x-ms-test: 1" in head
    assert body == b"body!"
    assert b"Content-Length" not in requests[2]  # a DELETE without a body: no length to say
    transport.close()


def test_a_connection_with_bytes_beyond_its_answer_is_not_reused(canned):
    url, answers, _ = canned
    answers += [
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 500 Stale\r\nContent-Length: 0\r\n\r\n",
        b"HTTP/1.1 204 No Content\r\n\r\n",  # the second connection's answer
    ]
    transport = LoopbackTransport()
    assert send(url, transport).content == b"ok"
    assert send(url, transport).status_code == 204  # not the stale 500 left in the first connection
    assert transport.connections_made == 2
    transport.close()


def test_a_head_answer_has_no_body_whatever_its_length_says(canned):
    url, answers, _ = canned
    answers += [b"HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n", b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nyes"]
    transport = LoopbackTransport()
    head = send(url, transport, "HEAD")
    assert (head.status_code, head.content, head.headers["content-length"]) == (200, b"", "1234")
    assert send(url, transport).content == b"yes"  # the same connection, framed right
    assert transport.connections_made == 1
    transport.close()


def test_a_service_that_does_not_answer_in_time_is_a_timeout():
    from azure.core.exceptions import ServiceResponseTimeoutError

    with raw_server(lambda conn: time.sleep(1.0)) as port:
        transport = LoopbackTransport(read_timeout=0.2)
        started = time.monotonic()
        with pytest.raises(ServiceResponseTimeoutError):
            send(f"http://127.0.0.1:{port}/x", transport)
        assert time.monotonic() - started < 0.9
        transport.close()


def test_a_header_with_a_line_break_is_refused_before_anything_is_sent(canned):
    from azure.core.rest import HttpRequest

    url, answers, requests = canned
    answers.append(b"HTTP/1.1 204 No Content\r\n\r\n")
    transport = LoopbackTransport()
    with pytest.raises(ValueError, match="line break"):
        transport.send(HttpRequest("GET", url, headers={"x-ms-test": "1\r\nInjected: yes"}))
    assert requests == []
    transport.close()


@pytest.mark.parametrize(
    "answer",
    [
        b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort<close>",  # cut off in the body
        b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n<close>",  # a negative length
        b"HTTP/1.1 2\xc2\xb20 OK\r\n\r\n<close>",  # a status that is digits only to Unicode
        b"HTTP/1.1 200 OK\r\nContent-Le<close>",  # cut off in the headers
        b"SMTP ready\r\n\r\n<close>",  # not HTTP
        b"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n<close>",  # a malformed header
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n<close>",  # a bad chunk size
    ],
)
def test_a_broken_answer_is_a_service_response_error_and_the_connection_is_dropped(canned, answer):
    from azure.core.exceptions import ServiceResponseError

    url, answers, _ = canned
    answers.append(answer)
    transport = LoopbackTransport()
    with pytest.raises(ServiceResponseError):
        send(url, transport)
    assert transport._idle.get(("127.0.0.1", int(url.split(":")[2].split("/")[0])), []) == []
    transport.close()
