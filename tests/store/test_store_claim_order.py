"""A claim order installed on the store (``store.head_order``) chooses which ready head is
claimed: by priority with aging and by fair share between submitters, on every backend; the
FIFO of one job id is kept whatever the order."""

from __future__ import annotations

import pytest

from batchfed_lab.accounting.fairshare import FairShareOrder, Shares, UsageLedger
from batchfed_lab.accounting.priority import Aging
from batchfed_lab.store import NewAction
from batchfed_lab.store.identity import Submitter


def _as(store, who: str):
    store._submitter = Submitter(who, f"os:{who}@test")  # what that user's own credential would give
    return store


@pytest.fixture
def ordered(timed):
    timed.create_federation("fed")
    timed.head_order = FairShareOrder(Shares(), UsageLedger(half_life=3600.0), Aging(3.6))
    return timed


def _claim_targets(store, n):
    out = []
    for _ in range(n):
        c = store.claim("fed", "w")
        assert c is not None
        out.append(c.action.target_id)
        store.mark_placed(c)
    return out


def test_without_an_order_the_readiest_head_goes_first(timed, clock):
    timed.create_federation("fed")
    timed.enqueue("fed", [NewAction("job", "add", "low", priority=-5)])
    clock.advance(1)
    timed.enqueue("fed", [NewAction("job", "add", "high", priority=10)])
    assert _claim_targets(timed, 2) == ["low", "high"]


def test_higher_priority_heads_are_claimed_first(ordered, clock):
    ordered.enqueue("fed", [NewAction("job", "add", "low", priority=-5)])
    clock.advance(1)
    ordered.enqueue("fed", [NewAction("job", "add", "mid"), NewAction("job", "add", "high", priority=10)])
    assert _claim_targets(ordered, 3) == ["high", "mid", "low"]


def test_a_job_ids_actions_stay_in_order_whatever_their_priority(ordered, clock):
    ordered.enqueue("fed", [NewAction("job", "add", "j"), NewAction("job", "terminate", "j", priority=1000)])
    clock.advance(1)
    ordered.enqueue("fed", [NewAction("job", "add", "k", priority=5)])
    first = ordered.claim("fed", "w")
    assert first.action.target_id == "k"
    second = ordered.claim("fed", "w")
    assert (second.action.target_id, second.action.method.value) == ("j", "add")
    assert ordered.claim("fed", "w") is None  # j's terminate waits for j's add
    ordered.mark_placed(second)
    third = ordered.claim("fed", "w")
    assert (third.action.target_id, third.action.method.value) == ("j", "terminate")


def test_a_later_action_of_a_job_id_is_ordered_by_its_own_priority_once_it_is_the_head(ordered, clock):
    """FIFO within a job id holds it behind the opener; once it is the head it competes with
    its own priority (and submitter), not the opener's."""
    ordered.enqueue("fed", [NewAction("job", "add", "j")])
    opener = ordered.claim("fed", "w")
    ordered.enqueue("fed", [NewAction("job", "terminate", "j", priority=100), NewAction("job", "add", "k", priority=50)])
    clock.advance(1)
    ordered.mark_placed(opener)
    nxt = ordered.claim("fed", "w")
    assert (nxt.action.target_id, nxt.action.method.value) == ("j", "terminate")


def test_the_least_served_submitter_goes_first(ordered, clock):
    _as(ordered, "ada").enqueue("fed", [NewAction("job", "add", f"a{i}") for i in range(3)])
    clock.advance(1)
    _as(ordered, "bob").enqueue("fed", [NewAction("job", "add", "b0")])
    ordered.head_order.ledger.charge("ada", 4.0, at=clock.now)
    assert _claim_targets(ordered, 1) == ["b0"]
