"""Bad REST requests to localbatch, sent raw: each gets a 4xx with Batch's JSON error body
(``code`` and ``message.value``) — never a 5xx, a dropped connection or a crash — and the
server keeps serving (same pid) afterwards."""

from __future__ import annotations

import email.utils
import json
import time
from typing import Any

import pytest
from badinput_helpers import Raw, assert_proxy_alive_and_placing
from stack import Stack, job_yaml

V = "api-version=2025-06-01"
FORGED = "Zm9yZ2VkIGtleSBmb3IgdGVzdHM="
STALE = email.utils.formatdate(time.time() - 20 * 60, usegmt=True)
FUTURE = email.utils.formatdate(time.time() + 3600, usegmt=True)
JOB = {"poolInfo": {"poolId": "we-small"}}


def big(n: int) -> str:
    return json.dumps({"id": "big", **JOB, "metadata": [{"name": "x", "value": "y" * n}]})


#: (case id, method, target, body, request options, allowed statuses, Batch error code or None)
REST: list[tuple[str, str, str, Any, dict[str, Any], tuple[int, ...], str | None]] = [
    ("unsigned", "GET", f"/accounts/lab1/pools?{V}", None, {"sign": False}, (403,), "AuthenticationFailed"),
    ("forged-key", "GET", f"/accounts/lab1/pools?{V}", None, {"sign": FORGED}, (403,), "AuthenticationFailed"),
    ("signed-for-another-account", "GET", f"/accounts/lab2/pools?{V}", None, {"account": "lab1"}, (403,), "AuthenticationFailed"),
    ("stale-date", "GET", f"/accounts/lab1/pools?{V}", None, {"date": STALE}, (403,), "AuthenticationFailed"),
    ("future-date", "GET", f"/accounts/lab1/pools?{V}", None, {"date": FUTURE}, (403,), "AuthenticationFailed"),
    (
        "bad-date",
        "GET",
        f"/accounts/lab1/pools?{V}",
        None,
        {"sign": False, "headers": {"Authorization": "SharedKey lab1:AAAA"}, "date": "yesterday"},
        (403,),
        "AuthenticationFailed",
    ),
    (
        "bearer-token",
        "GET",
        f"/accounts/lab1/pools?{V}",
        None,
        {"sign": False, "headers": {"Authorization": "Bearer eyJ0eXAi"}},
        (403,),
        "AuthenticationFailed",
    ),
    (
        "malformed-authorization",
        "GET",
        f"/accounts/lab1/pools?{V}",
        None,
        {"sign": False, "headers": {"Authorization": "SharedKey"}},
        (403,),
        "AuthenticationFailed",
    ),
    (
        "signature-of-another-path",
        "GET",
        f"/accounts/lab1/jobs?{V}",
        None,
        {"resign": f"/accounts/lab1/pools?{V}"},
        (403,),
        "AuthenticationFailed",
    ),
    ("missing-api-version", "GET", "/accounts/lab1/pools", None, {}, (400,), "MissingRequiredQueryParameter"),
    ("unknown-api-version", "GET", "/accounts/lab1/pools?api-version=1999-01-01", None, {}, (400,), "InvalidQueryParameterValue"),
    ("root-path", "GET", f"/?{V}", None, {"account": "lab1", "sign": False}, (400,), "InvalidUri"),
    ("upper-case-account", "GET", f"/accounts/LAB1/pools?{V}", None, {"sign": False}, (400,), "InvalidUri"),
    ("short-account", "GET", f"/accounts/ab/pools?{V}", None, {"sign": False}, (400,), "InvalidUri"),
    ("unknown-resource", "GET", f"/accounts/lab1/widgets?{V}", None, {}, (400,), "InvalidUri"),
    ("verb-not-allowed", "DELETE", f"/accounts/lab1/pools?{V}", None, {}, (400,), "InvalidUri"),
    ("malformed-json", "POST", f"/accounts/lab1/jobs?{V}", "{not json", {}, (400,), "InvalidRequestBody"),
    ("truncated-json", "POST", f"/accounts/lab1/jobs?{V}", '{"id": "t", "poolInfo": {', {}, (400,), "InvalidRequestBody"),
    ("json-array-body", "POST", f"/accounts/lab1/jobs?{V}", "[]", {}, (400,), None),
    ("json-string-body", "POST", f"/accounts/lab1/jobs?{V}", '"job"', {}, (400,), None),
    ("non-utf8-body", "POST", f"/accounts/lab1/jobs?{V}", b'{"id": "\xff\xfe"}', {}, (400,), None),
    ("id-wrong-type", "POST", f"/accounts/lab1/jobs?{V}", json.dumps({"id": 123, **JOB}), {}, (400,), None),
    (
        "poolinfo-wrong-type",
        "POST",
        f"/accounts/lab1/jobs?{V}",
        json.dumps({"id": "x", "poolInfo": "we-small"}),
        {},
        (400,),
        None,
    ),
    ("missing-id", "POST", f"/accounts/lab1/jobs?{V}", json.dumps(JOB), {}, (400,), "MissingRequiredProperty"),
    ("id-path-chars", "POST", f"/accounts/lab1/jobs?{V}", json.dumps({"id": "../x", **JOB}), {}, (400,), None),
    ("id-too-long", "POST", f"/accounts/lab1/jobs?{V}", json.dumps({"id": "j" * 65, **JOB}), {}, (400,), None),
    (
        "priority-out-of-range",
        "POST",
        f"/accounts/lab1/jobs?{V}",
        json.dumps({"id": "p", **JOB, "priority": 5000}),
        {},
        (400,),
        None,
    ),
    (
        "priority-nan",
        "POST",
        f"/accounts/lab1/jobs?{V}",
        '{"id": "n", "poolInfo": {"poolId": "we-small"}, "priority": NaN}',
        {},
        (400,),
        None,
    ),
    ("deeply-nested-json", "POST", f"/accounts/lab1/jobs?{V}", "[" * 100_000 + "]" * 100_000, {}, (400, 413), None),
    (
        "pool-negative-nodes",
        "POST",
        f"/accounts/lab1/pools?{V}",
        json.dumps({"id": "neg", "vmSize": "standard_d2_v3", "targetDedicatedNodes": -1}),
        {},
        (400,),
        None,
    ),
    (
        "pool-zero-slots",
        "POST",
        f"/accounts/lab1/pools?{V}",
        json.dumps({"id": "zero", "vmSize": "standard_d2_v3", "taskSlotsPerNode": 0}),
        {},
        (400,),
        None,
    ),
    (
        "task-unsupported-property",
        "POST",
        "/accounts/lab1/jobs/{job}/tasks?" + V,
        json.dumps({"id": "rf", "commandLine": "true", "applicationPackageReferences": [{"applicationId": "a"}]}),
        {},
        (400,),
        "UnsupportedProperty",
    ),
    ("oversized-body", "POST", f"/accounts/lab1/jobs?{V}", big(5 * 1024 * 1024), {}, (413,), "RequestBodyTooLarge"),
    (
        "oversized-task-collection",
        "POST",
        "/accounts/lab1/jobs/{job}/addtaskcollection?" + V,
        json.dumps({"value": [{"id": f"t{i}", "commandLine": "x" * 2000} for i in range(600)]}),
        {},
        (413,),
        "RequestBodyTooLarge",
    ),
    (
        "content-length-not-a-number",
        "POST",
        f"/accounts/lab1/jobs?{V}",
        None,
        {"headers": {"Content-Length": "lots"}},
        (400,),
        "InvalidHeaderValue",
    ),
    (
        "chunked-body",
        "POST",
        f"/accounts/lab1/jobs?{V}",
        None,
        {"headers": {"Transfer-Encoding": "chunked"}},
        (400,),
        "InvalidHeaderValue",
    ),
    ("bad-filter", "GET", f"/accounts/lab1/jobs?{V}&$filter=state%20eq", None, {}, (400,), "InvalidQueryParameterValue"),
    ("bad-maxresults", "GET", f"/accounts/lab1/jobs?{V}&maxresults=many", None, {}, (400,), None),
    ("file-traversal-dots", "GET", "/accounts/lab1/jobs/{job}/tasks/{task}/files/../../../key?" + V, None, {}, (400, 404), None),
    (
        "file-traversal-encoded",
        "GET",
        "/accounts/lab1/jobs/{job}/tasks/{task}/files/%2e%2e%2f%2e%2e%2f%2e%2e%2fkey?" + V,
        None,
        {},
        (400, 404),
        None,
    ),
    (
        "file-absolute-path",
        "GET",
        "/accounts/lab1/jobs/{job}/tasks/{task}/files/%2fetc%2fpasswd?" + V,
        None,
        {},
        (400, 404),
        None,
    ),
    (
        "task-id-traversal",
        "GET",
        "/accounts/lab1/jobs/{job}/tasks/..%2f..%2fkey/files/stdout.txt?" + V,
        None,
        {},
        (400, 404),
        None,
    ),
    (
        "bad-range",
        "GET",
        "/accounts/lab1/jobs/{job}/tasks/{task}/files/stdout.txt?" + V,
        None,
        {"headers": {"ocp-range": "bytes=z"}},
        (400,),
        "InvalidHeaderValue",
    ),
    ("unknown-job", "GET", f"/accounts/lab1/jobs/never-created?{V}", None, {}, (404,), "JobNotFound"),
]


@pytest.fixture(scope="module")
def placed(stack: Stack) -> dict[str, str]:
    """A real job and task on lab1 for the path cases."""
    sub = stack.client.submit("bad", job_yaml("rest-corpus", "echo hi"))
    sub.wait(30)
    (loc,) = stack.client.locations("bad", "rest-corpus")
    assert loc.account == "lab1"
    return {"job": "rest-corpus", "task": "task-00000"}


@pytest.mark.parametrize("case", REST, ids=[c[0] for c in REST])
def test_bad_request_gets_a_batch_error(case: tuple[Any, ...], raw: Raw, placed: dict[str, str]) -> None:
    name, method, target, body, options, statuses, code = case
    target = target.replace("{job}", placed["job"]).replace("{task}", placed["task"])
    options = dict(options)
    if "resign" in options:  # a valid signature, but over another path
        from batchfed_lab.localbatch import auth

        other = options.pop("resign")
        date = email.utils.formatdate(usegmt=True)
        options = {
            "sign": False,
            "date": date,
            "headers": {"Authorization": auth.authorization(method, other, {"ocp-date": date}, "lab1", raw.key)},
        }
    status, doc = raw.request(method, target, body, **options)
    assert status in statuses, f"{name}: status {status}: {doc!r}"[:500]
    assert isinstance(doc, dict) and doc.get("code") and doc.get("message", {}).get("value"), (
        f"{name}: not a Batch error: {doc!r}"[:500]
    )
    if code is not None:
        assert doc["code"] == code, f"{name}: {doc['code']}"
    assert raw.key not in json.dumps(doc)


def test_localbatch_still_serves_after_the_corpus(raw: Raw, stack: Stack, proxy_pid: int) -> None:
    from batchfed_lab.localbatch import control

    info = control.info(stack.client.workspace)
    assert info is not None and info.pid == raw.info.pid, "localbatch restarted or died"
    status, doc = raw.request("GET", f"/accounts/lab1/pools?{V}")
    assert status == 200 and {p["id"] for p in doc["value"]} >= {"we-small", "we-big"}
    assert_proxy_alive_and_placing(stack, proxy_pid, "after-rest-corpus")
