"""Bad actions: what a broken or hostile client could write to the store instead of what
``Client.submit`` writes. Each is refused at enqueue with a one-line error, or — once it is
in the store — set aside by the proxy (``failed``) with its reason. The proxy keeps running
and placing throughout. Payloads damaged in the store itself (rows written around the store)
and garbage messages in an Azure federation queue are part of the corpus too."""

from __future__ import annotations

import json
import sqlite3
import uuid
from typing import Any

import pytest
from badinput_helpers import assert_proxy_alive_and_placing
from stack import Stack, wait_until

from batchfed_lab.errors import BatchfedError
from batchfed_lab.proxy.payload import add_payload
from batchfed_lab.store import ActionState, NewAction

JOB = {"id": "{t}", "tasks": [{"command": "true"}]}


def good_add(target: str) -> dict[str, Any]:
    from batchfed_lab.config import load_jobs

    return add_payload(load_jobs({"job_specifications": [{**JOB, "id": target}]}).job_specifications[0])


def nested(depth: int) -> dict[str, Any]:
    d: dict[str, Any] = {}
    x = d
    for _ in range(depth):
        x["a"] = {}
        x = x["a"]
    return d


#: refused by the store at enqueue: (case id, federation, kind, method, target, payload, error type, fragment)
REFUSED: list[tuple[str, str, str, str, str, Any, str, str]] = [
    ("payload-list", "bad", "job", "add", "r-list", [1, 2], "StoreError", "must be a JSON object"),
    ("payload-string", "bad", "job", "add", "r-str", "job", "StoreError", "must be a JSON object"),
    ("payload-none", "bad", "job", "add", "r-none", None, "StoreError", "must be a JSON object"),
    ("payload-nan", "bad", "job", "add", "r-nan", {"version": 1, "x": float("nan")}, "StoreError", "not JSON"),
    ("payload-object", "bad", "job", "add", "r-obj", {"version": 1, "x": object()}, "StoreError", "not JSON"),
    ("payload-bytes", "bad", "job", "add", "r-bytes", {"version": 1, "x": b"\x00"}, "StoreError", "not JSON"),
    ("payload-nested-too-deep", "bad", "job", "add", "r-deep", nested(50_000), "StoreError", "nested too deeply"),
    (
        "payload-oversized",
        "bad",
        "job",
        "add",
        "r-big",
        {"version": 1, "blob": "x" * (17 * 1024 * 1024)},
        "PayloadTooLargeError",
        "the limit is",
    ),
    ("unknown-federation", "nope", "job", "add", "r-fed", {"version": 1}, "NotFoundError", "'nope' does not exist"),
    ("bad-federation-id", "Bad Fed!", "job", "add", "r-fedid", {"version": 1}, "InvalidIdError", "federation id"),
    ("wrong-kind", "bad", "pool", "add", "r-kind", {"version": 1}, "StoreError", "pool"),
    ("wrong-method", "bad", "job", "run", "r-method", {"version": 1}, "StoreError", "run"),
    ("empty-target", "bad", "job", "add", "", {"version": 1}, "InvalidIdError", "job id"),
    ("target-too-long", "bad", "job", "add", "t" * 65, {"version": 1}, "InvalidIdError", "job id"),
    ("target-control-chars", "bad", "job", "add", "a\x00b", {"version": 1}, "InvalidIdError", "job id"),
    ("target-padded", "bad", "job", "add", " padded ", {"version": 1}, "InvalidIdError", "job id"),
]


@pytest.mark.parametrize("case", REFUSED, ids=[c[0] for c in REFUSED])
def test_refused_at_enqueue(case: tuple[Any, ...], stack: Stack) -> None:
    name, fed, kind, method, target, payload, error, fragment = case
    before = stack.total_actions()
    with pytest.raises(BatchfedError) as info:
        stack.client.store.enqueue(fed, [NewAction(kind, method, target, payload)])
    assert type(info.value).__name__ == error, f"{name}: {type(info.value).__name__}: {info.value}"
    text = str(info.value)
    assert fragment in text and "\n" not in text and len(text) < 600, f"{name}: {text[:300]!r}"
    assert stack.total_actions() == before


def test_refused_action_ids(stack: Stack) -> None:
    """Given action ids must be UUIDs, unique in the call and in the federation."""
    store = stack.client.store
    aid = str(uuid.uuid4())
    cases = [
        ([NewAction("job", "add", "r-id", {"version": 1}, id="not-a-uuid")], "InvalidIdError", "not a UUID"),
        (
            [NewAction("job", "add", "r-id1", {"version": 1}, id=aid), NewAction("job", "add", "r-id2", {"version": 1}, id=aid)],
            "ConflictError",
            "listed twice",
        ),
    ]
    for actions, error, fragment in cases:
        with pytest.raises(BatchfedError) as info:
            store.enqueue("bad", actions)
        assert type(info.value).__name__ == error and fragment in str(info.value), str(info.value)


#: accepted by the store, set aside by the proxy: (case id, kind, method, target, payload, fragment of the reason)
SET_ASIDE: list[tuple[str, str, str, str, Any, str]] = [
    ("no-version", "job", "add", "s-nover", {"job": {**JOB, "id": "s-nover"}}, "unknown payload version None"),
    ("future-version", "job", "add", "s-v2", {**good_add("s-v2"), "version": 2}, "unknown payload version 2"),
    ("version-as-text", "job", "add", "s-vtext", {**good_add("s-vtext"), "version": "1"}, "unknown payload version '1'"),
    ("no-job", "job", "add", "s-nojob", {"version": 1}, "no job specification"),
    ("job-is-a-list", "job", "add", "s-joblist", {"version": 1, "job": [JOB]}, "no job specification"),
    ("job-without-tasks", "job", "add", "s-notasks", {"version": 1, "job": {"id": "s-notasks"}}, "tasks"),
    (
        "command-is-a-list",
        "job",
        "add",
        "s-cmd",
        {"version": 1, "job": {"id": "s-cmd", "tasks": [{"command": ["rm", "-rf"]}]}},
        "command",
    ),
    ("unknown-job-key", "job", "add", "s-key", {"version": 1, "job": {**JOB, "id": "s-key", "evil": True}}, "evil"),
    ("bad-native-default", "job", "add", "s-native", {**good_add("s-native"), "native_default": "yes"}, "native_default"),
    ("payload-for-another-job", "job", "add", "s-other", good_add("someone-else"), "describes 'someone-else'"),
    ("schedule-action-job-payload", "job_schedule", "add", "s-sched", good_add("s-sched"), "no recurrence"),
    ("terminate-unknown-version", "job", "terminate", "s-term", {"version": 7}, "unknown payload version 7"),
    ("delete-not-versioned", "job", "delete", "s-del", {"force": True}, "unknown payload version None"),
]


def _wait_final(stack: Stack, aid: str) -> Any:
    store = stack.client.store
    return wait_until(
        lambda: (a := store.get_action("bad", aid)).state in (ActionState.FAILED, ActionState.PLACED, ActionState.DONE) and a,
        f"action {aid}",
        30,
    )


@pytest.mark.parametrize("case", SET_ASIDE, ids=[c[0] for c in SET_ASIDE])
def test_set_aside_by_the_proxy_with_its_reason(case: tuple[Any, ...], stack: Stack) -> None:
    name, kind, method, target, payload, fragment = case
    (a,) = stack.client.store.enqueue("bad", [NewAction(kind, method, target, payload)])
    final = _wait_final(stack, a.id)
    assert final.state is ActionState.FAILED, f"{name}: {final.state}: {final.error}"
    assert fragment in (final.error or "") and "\n" not in final.error, f"{name}: {final.error!r}"
    assert final.attempts == 1, f"{name}: retried {final.attempts} times instead of failing at once"
    # what `jobs list --blocked` shows
    ids = {"job_id": target} if kind == "job" else {"schedule_id": target}
    blocked = stack.client.jobs_frame("bad", blocked=True, **ids)
    assert not blocked.empty and fragment in " ".join(blocked["reason"].astype(str)), name


#: payload text damaged in the store itself: (case id, stored text, fragment of the reason)
DAMAGED: list[tuple[str, str, str]] = [
    ("not-json", "{not json", "the stored payload is not JSON"),
    ("empty-text", "", "the stored payload is not JSON"),
    ("json-array", "[1, 2, 3]", "payload is not a JSON object"),
    ("json-number", "42", "payload is not a JSON object"),
    ("nested-too-deep", "[" * 100_000 + "]" * 100_000, "nested too deeply"),
    ("truncated", json.dumps(good_add("d-trunc"))[:40], "the stored payload is not JSON"),
]


@pytest.mark.parametrize("case", DAMAGED, ids=[c[0] for c in DAMAGED])
def test_damaged_stored_payload_is_set_aside(case: tuple[str, str, str], stack: Stack) -> None:
    name, text, fragment = case
    client = stack.client
    client.proxy_suspend()  # hold it while the row is damaged behind the store's back
    try:
        target = f"d-{name}"
        (a,) = client.store.enqueue("bad", [NewAction("job", "add", target, good_add(target))])
        db = sqlite3.connect(stack.root / "store.sqlite", timeout=10)
        try:
            with db:
                db.execute("UPDATE actions SET payload = ? WHERE id = ?", (text, a.id))
        finally:
            db.close()
        assert client.store.get_action("bad", a.id).state is ActionState.QUEUED  # readers do not choke on it
    finally:
        client.proxy_resume()
    final = _wait_final(stack, a.id)
    assert final.state is ActionState.FAILED and fragment in (final.error or ""), f"{name}: {final.state} {final.error!r}"


def test_garbage_in_an_azure_federation_queue_is_ignored(azurite: Any) -> None:
    """On Azure the queue only says "look again" (tables are the truth): malformed, binary,
    oversized and foreign messages are drained without harm, and actions still flow."""
    from batchfed_lab.store.azure import AzureStore

    store = AzureStore.from_connection_string(azurite.connection_string, prefix=f"q{uuid.uuid4().hex[:8]}")
    try:
        store.create_federation("qfed")
        queue = store._queue("qfed")
        try:
            queue.create_queue()
        except Exception:
            pass
        for text in (
            "{not json",
            "",
            "\u0000\u0001 binary",
            json.dumps({"ids": ["x" * 30_000]}),
            json.dumps({"version": 99}),
            "<xml/>",
            json.dumps([1, 2, 3]),
        ):
            queue.send_message(text)
        marks = store.change_marks()
        store.wait_for_change(marks, timeout=1.0)  # drains the queue; must not raise
        (a,) = store.enqueue("qfed", [NewAction("job", "add", "after-garbage", {"version": 1})])
        claim = store.claim("qfed", "w")
        assert claim is not None and claim.action.id == a.id
        store.mark_placed(claim)
    finally:
        store.destroy_federation("qfed")
        store.close()


def test_the_proxy_survived_the_action_corpus(stack: Stack, proxy_pid: int) -> None:
    assert_proxy_alive_and_placing(stack, proxy_pid, "after-action-corpus")
    counts = stack.client.store.counts("bad")
    assert counts.queued == counts.blocked == 0, counts
