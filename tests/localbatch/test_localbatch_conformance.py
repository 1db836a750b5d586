"""Azure's own examples of the Batch API (api-version 2025-06-01), replayed against localbatch:
every operation it implements answers with the example's status, and its body holds every
property the example's holds, with the type Azure's description gives it. The cases, and where
they come from, are in ``azure_examples.py``."""

from __future__ import annotations

import datetime
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from azure.core.exceptions import HttpResponseError
from azure.core.rest import HttpRequest

from batchfed_lab.localbatch import control
from batchfed_lab.localbatch._util import parse_duration, parse_iso
from batchfed_lab.localbatch.api import ROUTES

from .azure_examples import CASES, POOL_BASE, Case
from .lb_helpers import wait_for

API_VERSION = "api-version=2025-06-01"


def send(client, method: str, path: str, body: object = None):
    url = "/" + path + ("&" if "?" in path else "?") + API_VERSION
    try:
        return client.send_request(HttpRequest(method, url, json=body))
    except HttpResponseError as exc:
        return exc.response


def ok(client, method: str, path: str, body: object = None) -> dict:
    r = send(client, method, path, body)
    assert r.status_code < 300, (method, path, r.status_code, r.text())
    return r.json() if r.content else {}


# -- the account the cases are replayed in -------------------------------------------------------
def _pool(client, pool_id: str, nodes: int = 0, **extra) -> None:
    ok(client, "POST", "pools", {**POOL_BASE, "id": pool_id, "targetDedicatedNodes": nodes, **extra})


def _steady(client, pool_id: str, nodes: int) -> None:
    def probe():
        p = ok(client, "GET", f"pools/{pool_id}")
        return p["allocationState"] == "steady" and p["currentDedicatedNodes"] == nodes

    wait_for(probe, 15, f"pool {pool_id} steady")


def _job(client, job_id: str, pool_id: str = "pool", **extra) -> None:
    ok(client, "POST", "jobs", {"id": job_id, "poolInfo": {"poolId": pool_id}, **extra})


def _state(client, path: str, state: str) -> None:
    wait_for(lambda: ok(client, "GET", path)["state"] == state, 20, f"{path} to be {state}")


def _set_up(client) -> None:
    _pool(client, "pool", 2, taskSlotsPerNode=2, enableInterNodeCommunication=True, startTask={"commandLine": "true"})
    _pool(client, "shrinkpool", 2)
    for empty in ("replacepool", "autopool", "resizepool", "deletepool", "idle0"):
        _pool(client, empty)
    _steady(client, "pool", 2)
    _steady(client, "shrinkpool", 2)
    _job(client, "job")
    writer = "/bin/sh -c 'printf hello > testFile.txt && printf bye > otherFile.txt'"
    ok(client, "POST", "jobs/job/tasks", {"id": "writer", "commandLine": writer})
    mpi = {"numberOfInstances": 2, "coordinationCommandLine": "/bin/sh -c true"}
    ok(client, "POST", "jobs/job/tasks", {"id": "mpi", "commandLine": "/bin/sh -c true", "multiInstanceSettings": mpi})
    for job_id in ("donejob", "termjob", "deljob", "disjob"):
        _job(client, job_id)
    _job(client, "sidejob", "idle0")
    ok(client, "POST", "jobs/donejob/terminate", {})
    later = (datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=1)).isoformat()
    spec = {"poolInfo": {"poolId": "pool"}}
    ok(
        client,
        "POST",
        "jobschedules",
        {"id": "oncesched", "schedule": {}, "jobSpecification": {**spec, "onAllTasksComplete": "terminatejob"}},
    )
    for sched in ("sched", "termsched"):
        ok(
            client,
            "POST",
            "jobschedules",
            {"id": sched, "schedule": {"doNotRunUntil": later, "recurrenceInterval": "PT1H"}, "jobSpecification": spec},
        )
    ok(client, "POST", "jobschedules/sched/disable")
    for path in ("jobs/job/tasks/writer", "jobs/job/tasks/mpi"):
        _state(client, path, "completed")
    _state(client, "jobs/donejob", "completed")
    _state(client, "jobschedules/oncesched", "completed")


@pytest.fixture(scope="module")
def replay(localbatch, lb_workspace) -> Iterator[tuple[object, dict[str, str]]]:
    client = control.batch_client("conformance", lb_workspace, retry_total=0)
    try:
        _set_up(client)
        names = {f"<{p}.node0>": next(iter(client.list_nodes(p))).id for p in ("pool", "shrinkpool")}
        yield client, names
    finally:
        client.close()


# -- checking a response against a case -------------------------------------------------------------
def _is(kind: str, value: object) -> bool:
    if kind in ("int32", "int64"):
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "int64-string":
        return isinstance(value, str) and re.fullmatch(r"-?\d+", value) is not None
    if kind == "bool":
        return isinstance(value, bool)
    if kind == "date-time":
        return isinstance(value, str) and _parses(parse_iso, value)
    if kind == "duration":
        return isinstance(value, str) and _parses(lambda v: parse_duration(v, "x"), value)
    if kind == "string":
        return isinstance(value, str)
    return value == kind  # a literal the example holds


def _parses(parse, value: str) -> bool:
    try:
        parse(value)
        return True
    except Exception:
        return False


def _values_at(doc: object, path: str) -> list[object] | None:
    """Every value at ``path`` (``[]`` fans out over a list), or None when one is missing."""
    found = [doc]
    for part in path.split("/"):
        name, fan = (part[:-2], True) if part.endswith("[]") else (part, False)
        step = []
        for item in found:
            if not isinstance(item, dict) or name not in item:
                return None
            value = item[name]
            if fan:
                if not isinstance(value, list) or not value:
                    return None
                step.extend(value)
            else:
                step.append(value)
        found = step
    return found


def _fill(value: object, names: dict[str, str]) -> object:
    if isinstance(value, str):
        for k, v in names.items():
            value = value.replace(k, v)
        return value
    if isinstance(value, list):
        return [_fill(v, names) for v in value]
    if isinstance(value, dict):
        return {k: _fill(v, names) for k, v in value.items()}
    return value


def _param(i: int, case: Case):
    marks = [pytest.mark.xfail(reason=f"needs {case.pending}", strict=False)] if case.pending else []
    return pytest.param(case, id=f"{i:02d}-{case.example}-{case.method}", marks=marks)


@pytest.mark.parametrize("case", [_param(i, c) for i, c in enumerate(CASES)])
def test_azure_example_replays_with_its_status_properties_and_types(replay, case: Case):
    client, names = replay
    r = send(client, case.method, _fill(case.path, names), _fill(case.body, names))
    assert r.status_code == case.status, r.text()
    if case.refused:
        error = r.json()
        assert error["code"] == "UnsupportedProperty"
        named = sorted(v["value"] for v in error.get("values", []) if v["key"] == "PropertyName")
        assert named == sorted(case.refused)
        return
    body = r.json() if case.props else None
    wrong = []
    for path, kind in case.props.items():
        values = _values_at(body, path)
        if values is None:
            wrong.append(f"{path}: missing")
        elif not all(_is(kind, v) for v in values):
            wrong.append(f"{path}: {values[:2]!r} is not {kind}")
    assert not wrong, wrong
    assert not [h for h in case.headers if h not in r.headers], r.headers


def test_every_operation_localbatch_implements_is_replayed():
    replayed = {(c.method, _shape(c.path)) for c in CASES}
    implemented = {(m, p.replace("**", "*")) for m, p, _h in ROUTES if "localbatch-" not in p}
    assert implemented <= replayed, sorted(implemented - replayed)


def _shape(path: str) -> str:
    """``jobs/job/tasks/t/files/wd%5Cx?recursive=false`` -> ``jobs/*/tasks/*/files/*``."""
    literal = {"pools", "jobs", "tasks", "files", "nodes", "jobschedules", "nodecounts", "subtasksinfo", "taskcounts"}
    literal |= {"resize", "stopresize", "removenodes", "updateproperties", "enableautoscale", "disableautoscale"}
    literal |= {"evaluateautoscale", "terminate", "disable", "enable", "reactivate", "addtaskcollection"}
    return "/".join(s if s in literal else "*" for s in path.split("?")[0].split("/"))


def _statuses_the_api_gives() -> dict[tuple[str, str], set[int]]:
    """(method, path shape) -> the success statuses, as the SDK's operations (generated from
    BatchService.json) check them."""
    import azure.batch._operations._operations as generated

    src = Path(generated.__file__).read_text()
    urls = {
        name: (method, re.sub(r"\{\w+\}", "*", url).lstrip("/"))
        for name, url, method in re.findall(r'def (build_batch_\w+)_request\(.*?_url = "([^"]+)".*?method="(\w+)"', src, re.S)
    }
    out: dict[tuple[str, str], set[int]] = {}
    for name, codes in re.findall(r"_request = (build_batch_\w+)_request\(.*?status_code not in \[([\d, ]+)\]", src, re.S):
        if name in urls:
            out[urls[name]] = {int(c) for c in codes.split(",")}
    return out


def test_every_case_expects_the_status_the_api_description_gives():
    given = _statuses_the_api_gives()
    wrong = [
        (c.example, c.method, c.path, c.status)
        for c in CASES
        if c.status < 400 and c.status not in given.get((c.method, _shape(c.path)), set())
    ]
    assert not wrong, wrong
