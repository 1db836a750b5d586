"""A server that holds up against a hostile or broken client: bad bodies and headers are 400s
(never a 500 or a failed launch), unsigned bodies are not read, ranges are streamed, and idle or
half-open connections neither pile up nor block anyone."""

from __future__ import annotations

import email.utils
import json
import socket
import time
from pathlib import Path

import pytest
from azure.core.exceptions import HttpResponseError
from azure.core.rest import HttpRequest

from batchfed_lab.localbatch import auth, control

from .lb_helpers import make_job, make_pool, start_server, wait_for, wait_tasks_done

API = "?api-version=2025-06-01"
IMAGE = {"publisher": "canonical", "offer": "ubuntu", "sku": "22_04-lts"}
POOL = {
    "id": "p1",
    "vmSize": "standard_d2s_v3",
    "virtualMachineConfiguration": {"imageReference": IMAGE, "nodeAgentSKUId": "batch.node.ubuntu 22.04"},
}


def send(client, method: str, path: str, body: object = None, *, content: bytes | None = None, query: str = ""):
    """A signed request; its response whatever the status."""
    kwargs: dict = {"content": content, "headers": {"Content-Type": "application/json"}} if content else {"json": body}
    try:
        return client.send_request(HttpRequest(method, path + API + query, **kwargs))
    except HttpResponseError as exc:
        return exc.response


def code_of(response) -> tuple[int, str]:
    return response.status_code, response.json().get("code", "") if response.content else ""


def raw_exchange(info: control.LocalBatchInfo, raw: bytes, wait: float = 3.0) -> bytes:
    with socket.create_connection((info.host, info.port), timeout=wait) as sock:
        sock.sendall(raw)
        out = b""
        try:
            while b"\r\n\r\n" not in out and (chunk := sock.recv(65536)):
                out += chunk
        except TimeoutError:
            pass
        return out


# -- bodies ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "path, body",
    [
        ("/jobs", {"id": "job\n", "poolInfo": {"poolId": "p"}}),
        ("/pools", {**POOL, "id": "p1\n"}),
        ("/jobs", {"id": "j", "poolInfo": {"poolId": "p\n"}}),
    ],
    ids=["job-id", "pool-id", "pool-info"],
)
def test_ids_with_a_trailing_newline_are_refused(client, path, body):
    assert code_of(send(client, "POST", path, body)) == (400, "InvalidPropertyValue")


@pytest.mark.parametrize("literal", [b"NaN", b"Infinity", b"-Infinity"])
def test_nan_and_infinity_are_refused_in_bodies(client, literal):
    content = b'{"id": "p1", "vmSize": "x", "targetDedicatedNodes": ' + literal + b"}"
    assert code_of(send(client, "POST", "/pools", content=content)) == (400, "InvalidRequestBody")


@pytest.mark.parametrize(
    "task",
    [
        {"id": "t", "commandLine": "true", "environmentSettings": [{"name": "A=B", "value": "1"}]},
        {"id": "t", "commandLine": "true", "environmentSettings": [{"name": "A\0B", "value": "1"}]},
        {"id": "t", "commandLine": "true", "environmentSettings": [{"name": "A", "value": "1\0"}]},
        {"id": "t", "commandLine": "echo a\0b"},
    ],
    ids=["equals-in-name", "nul-in-name", "nul-in-value", "nul-in-command"],
)
def test_what_no_process_can_be_started_with_is_400_at_create(client, task):
    make_pool(client, "pool", wait=False)
    make_job(client, "job", "pool")
    assert code_of(send(client, "POST", "/jobs/job/tasks", task)) == (400, "InvalidPropertyValue")
    assert send(client, "GET", "/jobs/job/tasks/t").status_code == 404


def test_a_deeply_nested_filter_is_400_not_500(client):
    deep = "(" * 3000 + "state eq 'active'" + ")" * 3000
    assert code_of(send(client, "GET", "/jobs", query=f"&$filter={deep}")) == (400, "InvalidQueryParameterValue")
    nots = "not " * 3000 + "(state eq 'active')"
    assert code_of(send(client, "GET", "/jobs", query=f"&$filter={nots}")) == (400, "InvalidQueryParameterValue")


@pytest.mark.parametrize(
    "expression", ["(" * 2000 + "1" + ")" * 2000, "-" * 4000 + "1", "!" * 4000 + "1", "+".join(["1"] * 3000)]
)
def test_a_deeply_nested_autoscale_formula_is_400_not_500(client, expression):
    body = {**POOL, "enableAutoScale": True, "autoScaleFormula": f"$TargetDedicatedNodes={expression};"}
    assert code_of(send(client, "POST", "/pools", body)) == (400, "AutoScalingFormulaSyntaxError")


# -- heads ----------------------------------------------------------------------------------------
def test_a_negative_content_length_is_400(localbatch, account):
    head = f"POST /accounts/{account}/jobs{API} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: -5\r\n\r\n"
    answer = raw_exchange(localbatch, head.encode("latin-1"))
    assert answer.startswith(b"HTTP/1.1 400 ")


def test_an_unsigned_request_is_refused_before_its_body_is_read(localbatch, account):
    # only the head is sent: a server that reads the 3.9 MB body first would never answer
    length = 3_900_000
    head = f"POST /accounts/{account}/jobs{API} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {length}\r\n\r\n"
    started = time.monotonic()
    answer = raw_exchange(localbatch, head.encode("latin-1"), wait=3.0)
    assert answer.startswith(b"HTTP/1.1 403 ") and b"Connection: close" in answer
    assert time.monotonic() - started < 2.0


# -- files ----------------------------------------------------------------------------------------
def _peak_rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM")


def test_a_ranged_read_of_a_large_file_streams_only_the_range(localbatch, client):
    make_pool(client, "pool")
    make_job(client, "job", "pool")
    # a sparse 300 MB file with a marker past 200 MB: reading it whole would show in the peak RSS
    script = "truncate -s 300M big.bin && printf MARKER | dd of=big.bin bs=1 seek=209715200 conv=notrunc 2>/dev/null"
    send(client, "POST", "/jobs/job/tasks", {"id": "t", "commandLine": f"/bin/sh -c '{script}'"})
    wait_tasks_done(client, "job", 1)
    before = _peak_rss_kib(localbatch.pid)
    stream = client.download_task_file("job", "t", "wd/big.bin", ocp_range="bytes=209715200-209715205")
    assert b"".join(stream) == b"MARKER"
    assert _peak_rss_kib(localbatch.pid) - before < 64 * 1024


# -- connections ----------------------------------------------------------------------------------
@pytest.fixture
def tight_server(tmp_path_factory: pytest.TempPathFactory):
    ws = tmp_path_factory.mktemp("tight-ws")
    info = start_server(ws, read_timeout=1.0, max_connections=50)
    try:
        yield ws, info
    finally:
        control.stop(ws)


def test_200_half_open_connections_neither_block_others_nor_outlive_the_timeout(tight_server, account):
    ws, info = tight_server
    partial = f"GET /accounts/{account}/jobs{API} HTTP/1.1\r\nHost: 127.0.0.1\r\n".encode("latin-1")  # no blank line
    socks = []
    try:
        for _ in range(200):
            s = socket.create_connection((info.host, info.port), timeout=5)
            s.sendall(partial)
            socks.append(s)
        with control.batch_client(account, ws, retry_total=0) as client:
            started = time.monotonic()
            assert list(client.list_jobs()) == []
            assert time.monotonic() - started < 2.0

        def closed(s: socket.socket) -> bool:
            s.settimeout(0.01)
            try:
                return s.recv(65536) == b"" or closed(s)  # drain an error answer, then see the close
            except TimeoutError:
                return False
            except OSError:
                return True  # reset: closed as well

        wait_for(lambda: all(closed(s) for s in socks), 6.0, "the server to close every half-open connection")
    finally:
        for s in socks:
            s.close()


def test_an_idle_kept_alive_connection_is_closed_after_the_timeout(tight_server, account):
    _ws, info = tight_server
    head = f"GET /accounts/{account}/jobs{API} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode("latin-1")
    with socket.create_connection((info.host, info.port), timeout=5) as sock:
        sock.sendall(head)
        assert sock.recv(65536).startswith(b"HTTP/1.1 403 ")
        started = time.monotonic()
        sock.settimeout(5)
        assert sock.recv(65536) == b""  # closed by the server, not by our timeout
        assert 0.5 < time.monotonic() - started < 4.0


def _signed_job_create(ws: Path, account: str, job_id: str) -> tuple[bytes, bytes]:
    """The head and body of a signed job create, for writing to a socket by hand."""
    body = json.dumps({"id": job_id, "poolInfo": {"poolId": "p"}}).encode()
    target = f"/accounts/{account}/jobs{API}"
    headers = {
        "Content-Type": "application/json; odata=minimalmetadata",
        "Content-Length": str(len(body)),
        "ocp-date": email.utils.formatdate(usegmt=True),
    }
    key = auth.read_key(ws / "localbatch")
    headers["Authorization"] = auth.authorization("POST", target, headers, account, key)
    head = f"POST {target} HTTP/1.1\r\nHost: 127.0.0.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
    return head.encode("latin-1"), body


def test_a_body_trickled_in_slower_than_the_timeout_ends_its_connection(tight_server, account):
    """The read timeout bounds the whole body, not each read: a signed client dripping a byte
    every 0.2 s never waits a full second between reads, yet is cut off."""
    ws, info = tight_server
    head, body = _signed_job_create(ws, account, "fast")
    assert raw_exchange(info, head + body).startswith(b"HTTP/1.1 201 ")  # the same request, sent at once
    head, body = _signed_job_create(ws, account, "slow")
    with socket.create_connection((info.host, info.port), timeout=5) as sock:
        sock.sendall(head)
        started = time.monotonic()
        cut = False
        for byte in body:  # 40-odd bytes, over 8 s at this pace
            try:
                sock.sendall(bytes([byte]))
            except OSError:
                cut = True
                break
            time.sleep(0.2)  # the pace of the hostile client, not a synchronisation
            sock.settimeout(0.001)
            try:
                if sock.recv(65536) == b"":
                    cut = True
                    break
            except TimeoutError:
                pass
            except OSError:
                cut = True
                break
        assert cut, "the server kept reading a body trickled in below its timeout"
        assert time.monotonic() - started < 4.0
