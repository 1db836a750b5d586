"""The proxy's capacity cache answers for exactly the members it is given, however it keeps
what it works out from them between decisions."""

from __future__ import annotations

from dataclasses import replace

from factories import make_pool

from batchfed_lab.proxy.capacity import CapacityCache
from batchfed_lab.store.records import PoolMember

URL = "http://127.0.0.1:1/accounts/acct"


class Account:
    def __init__(self, pools: list[str]):
        self.snaps = {}
        for pid in pools:
            snap = make_pool(pid, idle=2, slots=2)
            self.snaps[pid] = replace(snap, facts=replace(snap.facts, service_url=URL))

    def snapshot_pools(self, ids, *, active_tasks=False):
        return dict(self.snaps)


def member(pid: str) -> PoolMember:
    return PoolMember("f", URL, pid, account="acct", location="westeurope")


def test_snapshots_follow_the_members_given_as_tuple_or_list():
    cache = CapacityCache(lambda url: Account(["p1", "p2", "p3"]), ttl=60)
    one = (member("p1"),)
    assert [s.pool_id for s in cache.snapshots(one)] == ["p1"]
    assert [s.pool_id for s in cache.snapshots(one)] == ["p1"], "asked again: the same answer"
    assert [s.pool_id for s in cache.snapshots((member("p1"), member("P2")))] == ["p1", "p2"]
    members = [member("p3")]
    assert [s.pool_id for s in cache.snapshots(members)] == ["p3"]
    members.append(member("p1"))  # a list may change between two calls
    assert [s.pool_id for s in cache.snapshots(members)] == ["p3", "p1"]
    assert [s.state for s in cache.snapshots((member("gone"),))] == ["missing"]


def test_a_blackout_shows_in_the_next_snapshots_of_the_same_members():
    cache = CapacityCache(lambda url: Account(["p1"]), ttl=60)
    members = (member("p1"),)
    (before,) = cache.snapshots(members)
    assert before.blackout_until is None
    cache.black_out(before.key, 123.0)
    (after,) = cache.snapshots(members)
    assert after.blackout_until == 123.0
