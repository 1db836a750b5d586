"""Reading task output cannot escape the task folder — not through the client API (job id,
task id, stream), not through the Batch adapter (file paths), not through localbatch's REST
API (``..``, encoded ``..``, absolute paths), and not through symbolic links a task plants in
its own folder (reading one is refused; listing does not follow them out)."""

from __future__ import annotations

import email.utils
import http.client
import json
from typing import Any
from urllib.parse import quote

import pytest
from stack import Stack, wait_until

from batchfed_lab.errors import BatchfedError, ConfigError

PLANT = "ln -s {key} leak; ln -s / rootlink; ln -s ../../../.. up; echo planted"  # in wd/, the working folder


@pytest.fixture(scope="module")
def planted(secret_stack: tuple[Stack, Any]) -> dict[str, Any]:
    stack, known = secret_stack
    c = stack.client
    key_path = stack.root / "localbatch" / "key"
    cmd = PLANT.format(key=key_path)
    c.submit("sec", f"job_specifications:\n- id: planter\n  tasks: [{{command: '{cmd}'}}]\n").wait(30)
    wait_until(lambda: all(t.task.state == "completed" for t in c.tasks("sec", "planter")), "the planting task", 30)
    (loc,) = c.locations("sec", "planter")
    return {"stack": stack, "known": known, "client": c, "account": c.account(loc.batch_service_url), "loc": loc}


def test_client_api_refuses_to_leave_the_task(planted: dict[str, Any]) -> None:
    c, key = planted["client"], planted["known"].localbatch_key
    assert "planted" in c.task_output("sec", "planter", "task-00000")
    attempts = [
        ("planter", "../../../key", "stdout"),
        ("planter", "task-00000/../../../../key", "stdout"),
        ("planter", "..", "stdout"),
        ("planter", "task-00000", "../../key"),
        ("planter", "task-00000", "wd/leak"),
        ("../planter", "task-00000", "stdout"),
        ("planter/../../../localbatch", "key", "stdout"),
    ]
    for job, task, stream in attempts:
        with pytest.raises(BatchfedError) as info:
            c.task_output("sec", job, task, stream)
        assert key not in str(info.value), (job, task, stream)
        assert isinstance(info.value, (ConfigError, BatchfedError))


def test_adapter_file_paths_stay_in_the_task_folder(planted: dict[str, Any]) -> None:
    acct, key = planted["account"], planted["known"].localbatch_key
    for path in (
        "../../../key",
        "wd/../../../../../localbatch/key",
        "/etc/passwd",
        "wd/leak",
        "wd/rootlink/etc/passwd",
        "wd/up/localbatch/key",
        "%2e%2e/%2e%2e/key",
        "..\\..\\key",
    ):
        with pytest.raises(BatchfedError) as info:
            data = acct.read_task_file("planter", "task-00000", path)
            pytest.fail(f"{path}: read {data[:40]!r}")
        assert key not in str(info.value), path


def test_listing_does_not_follow_links_out(planted: dict[str, Any]) -> None:
    from batchfed_lab.localbatch import control

    stack = planted["stack"]
    client = control.batch_client(planted["loc"].account, stack.client.workspace, retry_total=0)
    try:
        names = [f.name for f in client.list_task_files("planter", "task-00000", recursive=True)]
    finally:
        client.close()
    assert "stdout.txt" in names and "wd/leak" in names, names
    outside = [n for n in names if n.startswith(("wd/rootlink/", "wd/up/"))]
    assert not outside, f"the listing followed a link out of the task folder: {outside[:5]}"


def test_rest_paths_stay_in_the_task_folder(planted: dict[str, Any]) -> None:
    from batchfed_lab.localbatch import auth, control

    stack, key = planted["stack"], planted["known"].localbatch_key
    info = control.info(stack.client.workspace)
    account = planted["loc"].account
    base = f"/accounts/{account}/jobs/planter/tasks/task-00000/files/"
    paths = [
        "../../../key",
        quote("../../../key", safe=""),
        "%2e%2e/%2e%2e/%2e%2e/key",
        quote("/etc/passwd", safe=""),
        "wd/leak",
        "wd/rootlink/etc/passwd",
        "wd/up/localbatch/key",
        "wd%2fup%2flocalbatch%2fkey",
        "..%5c..%5ckey",
    ]
    for p in paths:
        target = f"{base}{p}?api-version=2025-06-01"
        headers = {"ocp-date": email.utils.formatdate(usegmt=True)}
        headers["Authorization"] = auth.authorization("GET", target, headers, account, key)
        conn = http.client.HTTPConnection("127.0.0.1", info.port, timeout=10)
        try:
            conn.putrequest("GET", target, skip_accept_encoding=True)
            for k, v in headers.items():
                conn.putheader(k, v)
            conn.endheaders()
            resp = conn.getresponse()
            body = resp.read()
        finally:
            conn.close()
        assert resp.status in (400, 404), (p, resp.status, body[:100])
        assert key.encode() not in body and b"root:" not in body, p
        assert json.loads(body)["code"] in ("InvalidUri", "FileNotFound", "TaskNotFound"), (p, body[:200])
