"""Moves (re-placement): a proxy re-queues a placed job under its own id, once per decision;
clients cannot. Runs against every backend."""

from __future__ import annotations

import uuid

import pytest

from batchfed_lab.errors import ConflictError, StoreError
from batchfed_lab.store import ActionState, NewAction
from batchfed_lab.store.identity import Submitter
from batchfed_lab.store.records import LocationUpdate

URL = "https://acct1.westeurope.batch.azure.com"


@pytest.fixture
def placed(store):
    store.create_federation("fed")
    (first,) = store.enqueue("fed", [NewAction("job", "add", "j", {"job": {"id": "j"}})])
    claim = store.claim("fed", "w")
    store.mark_placed(claim, location=LocationUpdate(URL, "p1", unique_id=first.id))
    return first


def move_payload(why: str = "3 preemptions on p1") -> dict:
    return {"job": {"id": "j"}, "move": {"why": why, "from": {"pool_id": "p1"}}}


def test_a_move_of_a_located_job_is_queued_in_a_unique_federation(store, placed):
    with pytest.raises(ConflictError):
        store.enqueue("fed", [NewAction("job", "add", "j", {"job": {"id": "j"}})])
    aid = str(uuid.uuid4())
    moved = store.enqueue_move("fed", "j", move_payload(), action_id=aid)
    assert (moved.id, moved.state, moved.target_id) == (aid, ActionState.QUEUED, "j")
    assert store.head("fed", "j").id == aid
    assert [m.id for m in store.list_moves("fed", "j")] == [aid]


def test_a_move_is_queued_once_per_decision(store, placed):
    aid = str(uuid.uuid4())
    first = store.enqueue_move("fed", "j", move_payload(), action_id=aid)
    again = store.enqueue_move("fed", "j", move_payload("another look"), action_id=aid)
    assert again.id == first.id and again.payload["move"]["why"] == "3 preemptions on p1"
    assert len(store.list_queued("fed", "j")) == 1


def test_clients_cannot_enqueue_a_move(store, placed):
    with pytest.raises(StoreError, match="move"):
        store.enqueue("fed", [NewAction("job", "add", "other", move_payload())])


def test_moves_of_a_federation_are_listed_per_job(store, placed):
    store.enqueue("fed", [NewAction("job", "add", "k", {"job": {"id": "k"}})])
    store.enqueue_move("fed", "j", move_payload(), action_id=str(uuid.uuid4()))
    assert [m.target_id for m in store.list_moves("fed")] == ["j"]
    assert store.list_moves("fed", "k") == []


def test_a_location_keeps_the_batch_job_id_a_move_derived_and_only_that(store, placed):
    move = store.enqueue_move("fed", "j", move_payload(), action_id=str(uuid.uuid4()))
    claim = store.claim("fed", "w")
    assert claim.action_id == move.id
    store.mark_placed(claim, location=LocationUpdate(URL, "p2", unique_id=move.id, batch_job_id="j-moved-1"))
    store.record_location("fed", "j", kind="job", batch_service_url=URL, pool_id="p2", batch_job_id="other")
    locs = {loc.pool_id: loc for loc in store.get_locations("fed", "j")}
    assert (locs["p1"].batch_job_id, locs["p1"].batch_id) == (None, "j")
    assert (locs["p2"].batch_job_id, locs["p2"].batch_id) == ("j-moved-1", "j-moved-1")


@pytest.fixture
def group_placed(store):
    """A federation without unique job ids: task group 1 of job j placed, 2 and 3 queued."""
    store.create_federation("nf", unique_job_ids=False)
    (first,) = store.enqueue("nf", [NewAction("job", "add", "j", {"job": {"id": "j"}, "n": 1})])
    store.mark_placed(store.claim("nf", "w"), location=LocationUpdate(URL, "p1", unique_id=first.id))
    store.enqueue("nf", [NewAction("job", "add", "j", {"job": {"id": "j"}, "n": n}) for n in (2, 3)])
    return first


def waiting(store, fid: str = "nf") -> list:
    return [a.payload.get("n", "move") for a in store.list_actions(fid, target_id="j") if a.state is not ActionState.PLACED]


def test_a_move_goes_ahead_of_the_later_task_groups_of_its_job_in_fifo_order(store, group_placed):
    other = store.enqueue("nf", [NewAction("job", "add", "k", {"job": {"id": "k"}})])[0]
    move = store.enqueue_move("nf", "j", move_payload(), action_id=str(uuid.uuid4()))
    assert waiting(store) == ["move", 2, 3]
    assert store.head("nf", "j").id == move.id
    claimed = {store.claim("nf", "w").action_id, store.claim("nf", "w2").action_id}
    assert claimed == {move.id, other.id}  # the later groups wait behind the move
    assert store.claim("nf", "w3") is None


def test_a_move_goes_after_a_claimed_head_and_ahead_of_the_rest(store, group_placed):
    held = store.claim("nf", "w")
    assert held.action.payload["n"] == 2
    move = store.enqueue_move("nf", "j", move_payload(), action_id=str(uuid.uuid4()))
    assert waiting(store) == [2, "move", 3]
    store.mark_placed(held, location=LocationUpdate(URL, "p1", unique_id=held.action_id))
    assert store.claim("nf", "w").action_id == move.id


def test_a_move_goes_ahead_of_a_blocked_task_group(store, group_placed):
    blocked = store.claim("nf", "w")
    store.mark_blocked(blocked, "no pool fits", retry_in=3600)
    move = store.enqueue_move("nf", "j", move_payload(), action_id=str(uuid.uuid4()))
    assert waiting(store) == ["move", 2, 3]
    assert store.claim("nf", "w").action_id == move.id


def test_a_sqlite_store_from_before_derived_batch_job_ids_is_upgraded_in_place(tmp_path):
    import sqlite3

    from batchfed_lab.store.sqlite import SqliteStore

    path = tmp_path / "v2.sqlite"
    with SqliteStore(path) as s:
        s.create_federation("fed")
        s.record_location("fed", "j", kind="job", batch_service_url=URL, pool_id="p1")
    with sqlite3.connect(path) as conn:  # what schema 2 wrote: no batch_job_id
        conn.execute("ALTER TABLE locations DROP COLUMN batch_job_id")
        conn.execute("PRAGMA user_version = 2")
    with SqliteStore(path) as s:
        (old,) = s.get_locations("fed", "j")
        assert old.batch_id == "j"
        s.record_location("fed", "j", kind="job", batch_service_url=URL, pool_id="p2", batch_job_id="j-moved-1")
        assert {loc.pool_id: loc.batch_id for loc in s.get_locations("fed", "j")} == {"p1": "j", "p2": "j-moved-1"}


def test_a_move_keeps_its_owners_identity_and_priority_not_the_proxys(store):
    """The proxy queues the move with its own credential, but the work stays its submitter's:
    fair share, quotas and spend keep counting it against them."""
    store.create_federation("fed")
    (first,) = store.enqueue("fed", [NewAction("job", "add", "j", {"job": {"id": "j"}}, priority=7)])
    claim = store.claim("fed", "w")
    store.mark_placed(claim, location=LocationUpdate(URL, "p1", unique_id=first.id))
    store._submitter = Submitter("the-proxy", "proxy-principal", verified=True)  # the proxy's credential
    moved = store.enqueue_move("fed", "j", move_payload(), action_id=str(uuid.uuid4()), owner=first)
    assert (moved.submitter, moved.submitter_id, moved.priority) == (first.submitter, first.submitter_id, 7)
    stored = store.get_action("fed", moved.id)
    assert (stored.submitter, stored.submitter_id, stored.priority) == (first.submitter, first.submitter_id, 7)
