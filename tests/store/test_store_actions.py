"""Actions: enqueue, FIFO per target, the unique-job-ids rule, payloads, zap, counts."""

from __future__ import annotations

import math
import uuid

import pytest

from batchfed_lab.errors import ConflictError, InvalidIdError, NotFoundError, PayloadTooLargeError, StoreError
from batchfed_lab.store import ActionState, NewAction

URL = "https://acct1.westeurope.batch.azure.com"


def add(target, **payload):
    return NewAction("job", "add", target, payload)


def term(target, **payload):
    return NewAction("job", "terminate", target, payload)


@pytest.fixture
def fed(store):
    store.create_federation("fed")
    return "fed"


@pytest.mark.token_path
def test_enqueue_assigns_uuid4_ids_and_fifo_positions_per_target(store, fed):
    done = store.enqueue(fed, [add("a", n=1), add("b"), term("a"), NewAction("job", "delete", "a")])
    assert [(x.target_id, x.method.value, x.position) for x in done] == [
        ("a", "add", 1),
        ("b", "add", 1),
        ("a", "terminate", 2),
        ("a", "delete", 3),
    ]
    assert all(uuid.UUID(x.id).version == 4 for x in done)
    first = done[0]
    assert (first.state, first.kind.value, first.payload, first.attempts) == (ActionState.QUEUED, "job", {"n": 1}, 0)
    assert first.enqueued_at.tzinfo is not None
    assert store.get_action(fed, first.id) == first
    assert store.enqueue(fed, [term("a")])[0].position == 4


def test_given_action_ids_are_kept_and_must_be_uuids(store, fed):
    aid = str(uuid.uuid4())
    assert store.enqueue(fed, [NewAction("job", "add", "a", {}, id=aid.upper())])[0].id == aid
    with pytest.raises(InvalidIdError, match="not a UUID"):
        store.enqueue(fed, [NewAction("job", "add", "b", {}, id="not-a-uuid")])
    with pytest.raises(ConflictError, match="listed twice"):
        store.enqueue(fed, [NewAction("job", "terminate", "c", {}, id=aid), NewAction("job", "terminate", "d", {}, id=aid)])
    with pytest.raises(ConflictError, match=f"action id {aid} exists already"):
        store.enqueue(fed, [NewAction("job", "terminate", "e", {}, id=aid)])
    assert [a.target_id for a in store.list_actions(fed)] == ["a"]


@pytest.mark.token_path
def test_head_and_queued_list_follow_fifo_order(store, fed):
    actions = store.enqueue(fed, [term("a", i=i) for i in range(5)] + [term("b")])
    assert store.head(fed, "a") == actions[0]
    assert store.head(fed, "nobody") is None
    assert [x.payload["i"] for x in store.list_queued(fed, "a")] == [0, 1, 2, 3, 4]
    assert [x.target_id for x in store.list_queued(fed)] == ["a"] * 5 + ["b"]
    assert len(store.list_actions(fed, limit=2)) == 2


def test_target_ids_are_case_insensitive_like_batch(store, fed):
    store.enqueue(fed, [add("Job-1"), term("JOB-1")])
    assert [x.position for x in store.list_queued(fed, "job-1")] == [1, 2]
    assert store.job_id_in_use(fed, "jOb-1")


def test_get_and_zap_of_unknown_actions_are_not_found(store, fed):
    with pytest.raises(NotFoundError, match="does not exist"):
        store.get_action(fed, str(uuid.uuid4()))
    with pytest.raises(NotFoundError):
        store.zap(fed, str(uuid.uuid4()))


def test_enqueue_validates_kind_method_and_ids(store, fed):
    with pytest.raises(StoreError, match="kind 'pool'"):
        store.enqueue(fed, [NewAction("pool", "add", "a")])
    with pytest.raises(StoreError, match="method 'resize'"):
        store.enqueue(fed, [NewAction("job", "resize", "a")])
    with pytest.raises(InvalidIdError, match=r"job id 'x.*65 characters, at most 64"):
        store.enqueue(fed, [add("x" * 65)])
    with pytest.raises(InvalidIdError, match="U\\+0000"):
        store.enqueue(fed, [add("a\x00b")])
    with pytest.raises(InvalidIdError, match="white space"):
        store.enqueue(fed, [add(" a")])
    with pytest.raises(InvalidIdError, match="job schedule id '': must not be empty"):
        store.enqueue(fed, [NewAction("job_schedule", "add", "")])
    assert store.list_actions(fed) == []


def test_unicode_and_maximum_length_ids_work_everywhere(store):
    fid = "f" * 63
    store.create_federation(fid)
    job = "ジョブ-😀" * 12 + "αβγδ"  # 64 characters, astral ones included
    assert len(job) == 64
    pool = "プール" * 21 + "p"
    acts = store.enqueue(fid, [add(job, name=job), term(job)])
    assert store.head(fid, job).id == acts[0].id
    assert [x.payload for x in store.list_queued(fid, job)] == [{"name": job}, {}]
    store.add_pool(fid, URL, pool)
    loc = store.record_location(fid, job, kind="job", batch_service_url=URL, pool_id=pool, unique_id=acts[0].id)
    assert store.get_locations(fid, job) == [loc]
    assert loc.job_id == job and loc.pool_id == pool


def test_unique_federation_refuses_an_add_for_a_queued_or_located_job(store, fed):
    store.enqueue(fed, [add("a")])
    with pytest.raises(ConflictError, match="job id 'a' already exists or is queued"):
        store.enqueue(fed, [add("b"), add("a")])
    assert [x.target_id for x in store.list_actions(fed)] == ["a"]  # all or nothing: b was not enqueued
    store.record_location(fed, "located", kind="job", batch_service_url=URL, pool_id="p1")
    store.mark_terminated(fed, "located", kind="job", batch_service_url=URL, pool_id="p1")
    with pytest.raises(ConflictError, match="'located'"):
        store.enqueue(fed, [add("located")])
    store.enqueue(fed, [term("a"), NewAction("job", "delete", "located")])  # term/del are not refused
    with pytest.raises(ConflictError, match="added twice"):
        store.enqueue(fed, [add("new"), add("NEW")])


def test_a_deleted_job_id_can_be_added_again(store, fed):
    (first,) = store.enqueue(fed, [add("a")])
    claim = store.claim(fed, "w")
    store.record_location(fed, "a", kind="job", batch_service_url=URL, pool_id="p1", unique_id=first.id)
    store.mark_placed(claim)
    assert store.job_id_in_use(fed, "a")
    store.delete_location(fed, "a", kind="job", batch_service_url=URL, pool_id="p1")
    assert not store.job_id_in_use(fed, "a")
    assert store.enqueue(fed, [add("a")])[0].position == 2


def test_non_unique_federation_accepts_repeated_adds_but_never_repeated_schedules(store):
    store.create_federation("loose", unique_job_ids=False)
    store.enqueue("loose", [add("a"), add("a")])
    store.record_location("loose", "a", kind="job", batch_service_url=URL, pool_id="p1")
    assert len(store.enqueue("loose", [add("a")])) == 1
    store.enqueue("loose", [NewAction("job_schedule", "add", "nightly")])
    with pytest.raises(ConflictError, match="job_schedule id 'nightly'"):
        store.enqueue("loose", [NewAction("job_schedule", "add", "nightly")])


def test_payloads_are_json_objects(store, fed):
    for bad in ({"x": {1, 2}}, {"x": math.nan}, {"x": object()}):
        with pytest.raises(StoreError, match="is not JSON"):
            store.enqueue(fed, [add("a", **bad)])
    with pytest.raises(StoreError, match="must be a JSON object"):
        store.enqueue(fed, [NewAction("job", "add", "a", ["not", "a", "dict"])])  # type: ignore[arg-type]
    assert store.list_actions(fed) == []


def test_oversized_payloads_are_refused_never_truncated(store, fed):
    huge = "x" * store.max_payload_bytes
    with pytest.raises(PayloadTooLargeError, match=r"payload of add job 'a': [\d,]+ bytes of JSON, the limit is [\d,]+ bytes"):
        store.enqueue(fed, [add("small"), add("a", blob=huge)])
    assert store.list_actions(fed) == []


@pytest.mark.token_path
def test_large_payloads_round_trip_intact(store, fed):
    tasks = [{"id": f"t{i:05d}", "command": f"echo {i} ünïcode ✓"} for i in range(4000)]  # ~200 KB
    (action,) = store.enqueue(fed, [add("big", tasks=tasks)])
    assert store.get_action(fed, action.id).payload == {"tasks": tasks}
    assert store.claim(fed, "w").action.payload == {"tasks": tasks}


@pytest.mark.token_path
def test_zap_drops_a_queued_action_so_the_next_one_flows(store, fed):
    first, second, third = store.enqueue(fed, [term("a", i=0), term("a", i=1), term("a", i=2)])
    zapped = store.zap(fed, second.id)
    assert zapped.state is ActionState.ZAPPED and zapped.finished_at is not None
    assert [x.payload["i"] for x in store.list_queued(fed, "a")] == [0, 2]
    store.zap(fed, first.id)
    assert store.head(fed, "a").id == third.id
    assert store.claim(fed, "w").action.id == third.id
    with pytest.raises(ConflictError, match="is zapped: only queued or blocked"):
        store.zap(fed, first.id)


def test_counts_by_state(store, fed):
    store.enqueue(fed, [term("a"), term("a"), term("b"), add("c")])
    store.zap(fed, store.head(fed, "b").id)
    claim = store.claim(fed, "w")
    store.record_location(fed, "c", kind="job", batch_service_url=URL, pool_id="p1")
    counts = store.counts(fed)
    assert (counts.queued, counts.zapped, counts.claimed, counts.located_jobs) == (3, 1, 1, 1)
    store.mark_done(claim) if claim.action.method.value == "terminate" else store.mark_placed(claim)
    assert sum(store.counts(fed).as_dict()[s.value] for s in ActionState) == 4


def test_list_actions_filters_by_state(store, fed):
    store.enqueue(fed, [term("a"), term("b")])
    store.zap(fed, store.head(fed, "a").id)
    assert [x.target_id for x in store.list_actions(fed, states=["zapped"])] == ["a"]
    assert [x.target_id for x in store.list_actions(fed, states=ActionState.QUEUED)] == ["b"]
    with pytest.raises(StoreError, match="action states"):
        store.list_actions(fed, states=["lost"])


def test_enqueued_times_never_go_back_along_a_target_fifo(backend, clock):
    # two submitters: the later in the FIFO read its clock earlier (or its clock lags)
    timed = backend.open(clock=clock)
    try:
        timed.create_federation("mono")
        (first,) = timed.enqueue("mono", [term("seq")])
        clock.advance(-5)
        second, other = timed.enqueue("mono", [term("seq"), term("free")])
        assert second.position == 2 and second.enqueued_at >= first.enqueued_at
        assert timed.get_action("mono", second.id).enqueued_at == second.enqueued_at  # as recorded
        assert other.enqueued_at.timestamp() == pytest.approx(clock.now)  # another target keeps its own time
        # the FIFO drained (idle): a later add still comes after what it ran
        clock.advance(10)
        for _ in range(3):
            timed.mark_done(timed.claim("mono", "w", ttl=30))
        clock.advance(-10)
        (third,) = timed.enqueue("mono", [term("seq")])
        assert third.position == 3 and third.enqueued_at >= second.enqueued_at
    finally:
        timed.close()
