"""Locations, the leader lease, proxy heartbeat records and the suspend flag."""

from __future__ import annotations

import time
import uuid
from dataclasses import replace
from datetime import datetime, timezone

import pytest

from batchfed_lab.errors import ClaimLostError, InvalidIdError, NotFoundError, StoreError
from batchfed_lab.store import ActionKind, ActionState, LocationUpdate, NewAction, ProxyRecord

URL = "https://acct1.westeurope.batch.azure.com"
URL2 = "https://acct2.eastus.batch.azure.com"


@pytest.fixture
def fed(timed):
    timed.create_federation("fed")
    return "fed"


@pytest.mark.token_path
def test_a_location_is_created_once_and_collects_unique_ids(timed, fed, clock):
    u1, u2 = str(uuid.uuid4()), str(uuid.uuid4())
    loc = timed.record_location(
        fed, "job-1", kind="job", batch_service_url=URL, pool_id="p1", account="acct1", location="westeurope", unique_id=u1
    )
    assert (loc.job_id, loc.kind, loc.account, loc.location, loc.unique_ids) == (
        "job-1",
        ActionKind.JOB,
        "acct1",
        "westeurope",
        (u1,),
    )
    assert loc.created_at.timestamp() == pytest.approx(clock.now)
    clock.advance(5)
    at = datetime(2030, 1, 2, 3, 4, 5, 123456, tzinfo=timezone.utc)
    loc = timed.record_location(fed, "job-1", kind="job", batch_service_url=URL, pool_id="p1", unique_id=u2, at=at)
    again = timed.record_location(fed, "job-1", kind="job", batch_service_url=URL, pool_id="p1", unique_id=u2)  # a retried add
    assert again == loc
    assert loc.unique_ids == (u1, u2) and loc.addition_timestamps[1] == at
    assert loc.addition_timestamps[0].timestamp() == pytest.approx(clock.now - 5)


def test_all_locations_of_a_job_id(timed, fed):
    timed.record_location(fed, "job-1", kind="job", batch_service_url=URL, pool_id="p1")
    timed.record_location(fed, "JOB-1", kind="job", batch_service_url=URL2, pool_id="p2")
    timed.record_location(fed, "job-1", kind="job_schedule", batch_service_url=URL, pool_id="p1")
    timed.record_location(fed, "job-2", kind="job", batch_service_url=URL, pool_id="p1")
    found = timed.get_locations(fed, "Job-1")
    assert [(x.kind.value, x.pool_id) for x in found] == [("job", "p1"), ("job", "p2"), ("job_schedule", "p1")]
    assert [x.pool_id for x in timed.get_locations(fed, "job-1", kind="job_schedule")] == ["p1"]
    assert len(timed.get_locations(fed)) == 4
    assert timed.get_locations(fed, "nothing") == []


def test_terminate_time_is_set_once(timed, fed, clock):
    with pytest.raises(NotFoundError, match="no location"):
        timed.mark_terminated(fed, "job-1", kind="job", batch_service_url=URL, pool_id="p1")
    timed.record_location(fed, "job-1", kind="job", batch_service_url=URL, pool_id="p1")
    first = timed.mark_terminated(fed, "job-1", kind="job", batch_service_url=URL, pool_id="p1")
    assert first.terminated_at.timestamp() == pytest.approx(clock.now)
    clock.advance(60)
    assert (
        timed.mark_terminated(fed, "job-1", kind="job", batch_service_url=URL, pool_id="p1") == first
    )  # already terminated is fine


def test_delete_a_location(timed, fed):
    timed.record_location(fed, "job-1", kind="job", batch_service_url=URL, pool_id="p1")
    assert timed.delete_location(fed, "job-1", kind="job", batch_service_url=URL, pool_id="p1") is True
    assert timed.delete_location(fed, "job-1", kind="job", batch_service_url=URL, pool_id="p1") is False
    assert timed.get_locations(fed, "job-1") == []


def test_a_claimed_step_can_record_its_jobs_location(timed, fed, clock):
    """``record_progress`` / ``mark_placed`` with ``location=`` record the claimed job's
    location as ``record_location`` would (the proxy saves a store round trip per step)."""
    timed.enqueue(fed, [NewAction("job", "add", "job-1", {})])
    claim = timed.claim(fed, "w1", ttl=60)
    where = LocationUpdate(URL, "p1", account="acct1", location="westeurope")
    claim = timed.record_progress(claim, {"job_ready": True}, location=where)
    (loc,) = timed.get_locations(fed, "job-1")
    assert (loc.pool_id, loc.account, loc.location, loc.unique_ids) == ("p1", "acct1", "westeurope", ())
    assert claim.action.progress == {"job_ready": True}
    at = datetime(2030, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    placed = timed.mark_placed(claim, progress={"tasks_added": 1}, location=replace(where, unique_id=claim.action.id, at=at))
    (loc,) = timed.get_locations(fed, "job-1")
    assert placed.state is ActionState.PLACED and loc.unique_ids == (claim.action.id,) and loc.addition_timestamps == (at,)


def test_a_step_with_a_location_under_a_lost_claim_is_refused(timed, fed, clock):
    timed.enqueue(fed, [NewAction("job", "add", "job-1", {})])
    stale = timed.claim(fed, "w1", ttl=10)
    clock.advance(11)
    timed.claim(fed, "w2", ttl=10)
    with pytest.raises(ClaimLostError):
        timed.mark_placed(stale, location=LocationUpdate(URL, "p1", unique_id=stale.action.id))
    assert timed.get_action(fed, stale.action.id).state is not ActionState.PLACED
    if timed.backend == "sqlite":  # one transaction: neither is written
        assert timed.get_locations(fed, "job-1") == []
    # elsewhere the location goes first (see AzureStore._mutate_claimed_and_locate): recording it
    # again is what the claim's new holder does anyway, so nothing is duplicated


def test_locations_need_the_federation(timed):
    with pytest.raises(NotFoundError, match="'ghost'"):
        timed.record_location("ghost", "job-1", kind="job", batch_service_url=URL, pool_id="p1")


@pytest.mark.token_path
def test_lease_is_exclusive_between_two_contenders(store):
    lease = store.acquire_lease("leader", "proxy-a", ttl=store.lease_ttl_range[0] + 5)
    assert lease.holder == "proxy-a" and lease.expires_at > datetime.now(timezone.utc)
    assert store.acquire_lease("leader", "proxy-b", ttl=store.lease_ttl_range[0]) is None
    assert store.get_lease("leader").holder == "proxy-a"
    assert store.acquire_lease("leader", "proxy-a", ttl=store.lease_ttl_range[0]) is not None  # re-entrant
    assert store.renew_lease("leader", "proxy-a", ttl=store.lease_ttl_range[0]).holder == "proxy-a"
    with pytest.raises(ClaimLostError, match="'leader' is no longer held by 'proxy-b'"):
        store.renew_lease("leader", "proxy-b", ttl=store.lease_ttl_range[0])
    assert store.release_lease("leader", "proxy-b") is False  # only the holder may release
    assert store.get_lease("leader").holder == "proxy-a"
    assert store.release_lease("leader", "proxy-a") is True
    assert store.get_lease("leader") is None
    assert store.acquire_lease("leader", "proxy-b", ttl=store.lease_ttl_range[0]).holder == "proxy-b"
    assert store.get_lease("other") is None


def test_an_expired_lease_is_taken_over(backend, store):
    """Real time: the Azure lease is a Blob lease (at least 15 s), kept by the service."""
    ttl = backend.min_lease
    store.acquire_lease("leader", "proxy-a", ttl=ttl)
    started = time.monotonic()
    rival = backend.open()
    try:
        assert rival.acquire_lease("leader", "proxy-b", ttl=ttl) is None
        deadline = time.monotonic() + ttl + 20
        taken = None
        while taken is None and time.monotonic() < deadline:
            # Azurite (not Azure) lets the old holder renew a lease taken over within ~30 ms of
            # its expiry, and the lease is then the old holder's: reproduced 2 times in 6 with
            # takeovers at 15.02 s. Stay clear of that instant (the lease began a little before
            # `started`, so the window is taken from 0.1 s early to a quarter second late).
            late = time.monotonic() - started - ttl
            if -0.1 <= late < 0.25:
                time.sleep(0.25 - late)
            taken = rival.acquire_lease("leader", "proxy-b", ttl=ttl)
            if taken is None:
                time.sleep(min(0.5, ttl / 10))  # polling a timed condition, not synchronising
        assert taken is not None and taken.holder == "proxy-b"
        assert time.monotonic() - started >= ttl * 0.9  # not before the lease ran out
        with pytest.raises(ClaimLostError):
            store.renew_lease("leader", "proxy-a", ttl=ttl)
        assert store.release_lease("leader", "proxy-a") is False
        assert store.get_lease("leader").holder == "proxy-b"
    finally:
        rival.release_lease("leader", "proxy-b")
        rival.close()


def test_lease_arguments_are_checked(store):
    with pytest.raises(InvalidIdError, match="lease name"):
        store.acquire_lease("Leader!", "p")
    with pytest.raises(InvalidIdError, match="printable ASCII"):
        store.acquire_lease("leader", "pröxy")
    with pytest.raises(StoreError, match="lease ttl"):
        store.acquire_lease("leader", "p", ttl=store.lease_ttl_range[1] + 1)


@pytest.mark.token_path
def test_proxy_heartbeat_records(timed, clock):
    rec = timed.heartbeat(
        ProxyRecord(
            "host-1:4242",
            pid=4242,
            host="host-1",
            version="0.1",
            role="leader",
            counters={"placed": 3},
            info={"log": "/x/fedproxy.log"},
        )
    )
    assert rec.heartbeat_at.timestamp() == pytest.approx(clock.now)
    clock.advance(5)
    timed.heartbeat(ProxyRecord("host-2:7", pid=7, role="standby"))
    rec2 = timed.heartbeat(ProxyRecord("host-1:4242", pid=4242, role="leader", counters={"placed": 4}))
    assert timed.get_proxy("host-1:4242") == rec2
    assert [r.proxy_id for r in timed.list_proxies()] == ["host-1:4242", "host-2:7"]
    assert timed.remove_proxy("host-2:7") is True
    assert timed.remove_proxy("host-2:7") is False
    assert timed.get_proxy("host-2:7") is None
    with pytest.raises(StoreError, match="counters is not JSON"):
        timed.heartbeat(ProxyRecord("x", counters={"bad": {1}}))


@pytest.mark.token_path
def test_suspend_flag_moves_the_control_mark(store):
    assert store.is_suspended() is False
    before = store.change_marks()
    store.set_suspended(True)
    assert store.is_suspended() is True
    assert store.change_marks().control != before.control
    store.set_suspended(False)
    assert store.is_suspended() is False


def test_a_stop_request_reaches_one_proxy_by_id_and_moves_the_control_mark(store):
    odd = "host/1#a?b"  # characters Azure Table row keys refuse
    assert store.stop_requested(odd) is False
    before = store.change_marks()
    store.request_stop(odd)
    assert store.change_marks().control != before.control, "a watching proxy wakes up"
    assert store.stop_requested(odd) is True
    assert store.stop_requested("host-2") is False, "only the proxy asked"
    assert store.is_suspended() is False
    store.clear_stop(odd)
    assert store.stop_requested(odd) is False
