"""Claims: only FIFO heads, at-least-once with expiry, stale claims refused, blocking,
retries and the proxy's progress record. Time comes from a fake clock."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from batchfed_lab.errors import ClaimLostError, ConflictError, StoreError
from batchfed_lab.store import ActionState, LocationUpdate, NewAction


def term(target, **payload):
    return NewAction("job", "terminate", target, payload)


@pytest.fixture
def fed(timed):
    timed.create_federation("fed")
    return "fed"


@pytest.mark.token_path
def test_only_the_head_of_each_target_is_claimable(timed, fed, clock):
    a1, a2, b1 = timed.enqueue(fed, [term("a", i=1), term("a", i=2), term("b")])
    first = timed.claim(fed, "w1", ttl=30)
    clock.advance(0.001)
    second = timed.claim(fed, "w2", ttl=30)
    assert {first.action.id, second.action.id} == {a1.id, b1.id}
    assert timed.claim(fed, "w3") is None  # a2 waits behind a1's live claim
    claim_a = first if first.action.id == a1.id else second
    assert (claim_a.worker, claim_a.action.attempts, claim_a.action.claimed_by) == (claim_a.worker, 1, claim_a.worker)
    done = timed.mark_done(claim_a)
    assert done.state is ActionState.DONE and done.claimed_by is None and done.finished_at is not None
    nxt = timed.claim(fed, "w3")
    assert nxt.action.id == a2.id


def test_the_oldest_ready_head_is_claimed_first(timed, fed, clock):
    for target in ("c", "a", "b"):
        timed.enqueue(fed, [term(target)])
        clock.advance(1)
    assert [timed.claim(fed, "w").action.target_id for _ in range(3)] == ["c", "a", "b"]


def test_a_lapsed_claim_makes_the_action_claimable_again(timed, fed, clock):
    (action,) = timed.enqueue(fed, [term("a")])
    dead = timed.claim(fed, "dead-worker", ttl=10)
    clock.advance(9.9)
    assert timed.claim(fed, "w2", ttl=10) is None
    clock.advance(0.2)
    again = timed.claim(fed, "w2", ttl=10)
    assert again.action.id == action.id
    assert again.action.attempts == 2 and again.action.claimed_by == "w2"
    assert again.token != dead.token


def test_a_lapsed_claim_cannot_change_the_action_any_more(timed, fed, clock):
    timed.enqueue(fed, [NewAction("job", "add", "a", {})])
    stale = timed.claim(fed, "w1", ttl=10)
    clock.advance(11)
    # lapsed but not yet re-claimed: still refused
    with pytest.raises(ClaimLostError, match="lapsed"):
        timed.record_progress(stale, {"pool": "p1"})
    fresh = timed.claim(fed, "w2", ttl=10)
    for op in (
        lambda: timed.mark_placed(stale),
        lambda: timed.mark_blocked(stale, "no pool"),
        lambda: timed.mark_failed(stale, "boom"),
        lambda: timed.release(stale),
        lambda: timed.renew_claim(stale),
        lambda: timed.record_progress(stale, {"x": 1}),
    ):
        with pytest.raises(ClaimLostError, match="no longer held"):
            op()
    assert timed.get_action(fed, fresh.action.id).progress == {}
    assert timed.mark_placed(fresh).state is ActionState.PLACED


def test_renewing_keeps_a_claim_alive(timed, fed, clock):
    timed.enqueue(fed, [term("a")])
    claim = timed.claim(fed, "w1", ttl=10)
    for _ in range(3):
        clock.advance(8)
        claim = timed.renew_claim(claim, ttl=10)
        assert timed.claim(fed, "w2") is None
    assert claim.deadline.timestamp() == pytest.approx(clock.now + 10)
    assert timed.mark_done(claim).state is ActionState.DONE


def test_progress_is_merged_under_the_claim_and_survives_a_reclaim(timed, fed, clock):
    timed.enqueue(fed, [NewAction("job", "add", "a", {})])
    claim = timed.claim(fed, "w1", ttl=10)
    claim = timed.record_progress(claim, {"pool": "p1", "step": "job-created"})
    claim = timed.record_progress(claim, {"step": "tasks-added", "tasks": 3})
    assert claim.action.progress == {"pool": "p1", "step": "tasks-added", "tasks": 3}
    clock.advance(11)  # the worker dies; the next one sees the intent and finishes it
    successor = timed.claim(fed, "w2")
    assert successor.action.progress == {"pool": "p1", "step": "tasks-added", "tasks": 3}
    placed = timed.mark_placed(successor, progress={"step": "placed"})
    assert placed.progress["step"] == "placed" and placed.placed_at is not None


def test_progress_must_be_json(timed, fed):
    timed.enqueue(fed, [NewAction("job", "add", "a", {})])
    claim = timed.claim(fed, "w1")
    with pytest.raises(StoreError, match="progress is not JSON"):
        timed.record_progress(claim, {"bad": {1}})
    assert timed.record_progress(claim, {"good": [1]}).action.progress == {"good": [1]}


def test_blocked_head_keeps_its_place_and_holds_back_its_target_only(timed, fed, clock):
    a1, a2 = timed.enqueue(fed, [NewAction("job", "add", "a", {}), term("a")])
    clock.advance(1)
    (b1,) = timed.enqueue(fed, [term("b")])
    claim = timed.claim(fed, "w")
    assert claim.action.id == a1.id
    verdicts = [{"pool": "p1", "verdict": "memory: needs >= 64g, has 7g"}, {"pool": "p2", "verdict": "eligible"}]
    blocked = timed.mark_blocked(claim, "no pool can take it now", verdicts=verdicts, retry_in=30)
    assert (blocked.state, blocked.reason, blocked.verdicts) == (ActionState.BLOCKED, "no pool can take it now", verdicts)
    assert blocked.next_attempt_at.timestamp() == pytest.approx(clock.now + 30)
    assert timed.head(fed, "a").id == a1.id
    other = timed.claim(fed, "w")
    assert other.action.id == b1.id  # other targets flow
    timed.mark_done(other)
    assert timed.claim(fed, "w") is None  # a2 waits behind the blocked a1
    assert timed.next_ready_at(fed) == blocked.next_attempt_at
    assert [x.id for x in timed.list_actions(fed, states=["blocked"])] == [a1.id]
    clock.advance(30)
    retry = timed.claim(fed, "w")
    assert retry.action.id == a1.id and retry.action.state is ActionState.BLOCKED and retry.action.attempts == 2
    assert timed.mark_placed(retry).state is ActionState.PLACED
    assert timed.claim(fed, "w").action.id == a2.id


def test_zapping_a_blocked_head_lets_the_next_action_flow(timed, fed):
    a1, a2 = timed.enqueue(fed, [NewAction("job", "add", "a", {}), term("a")])
    timed.mark_blocked(timed.claim(fed, "w"), "no pool", retry_in=3600)
    assert timed.claim(fed, "w") is None
    timed.zap(fed, a1.id)
    assert timed.claim(fed, "w").action.id == a2.id


def test_zapping_a_claimed_action_takes_the_claim_away(timed, fed):
    (a1,) = timed.enqueue(fed, [term("a")])
    claim = timed.claim(fed, "w")
    timed.zap(fed, a1.id)
    with pytest.raises(ClaimLostError):
        timed.mark_done(claim)
    assert timed.get_action(fed, a1.id).state is ActionState.ZAPPED


def test_failed_is_final_and_the_next_action_flows(timed, fed):
    a1, a2 = timed.enqueue(fed, [NewAction("job", "add", "a", {}), term("a")])
    failed = timed.mark_failed(timed.claim(fed, "w"), "Batch said no: " + "x" * 10_000)
    assert failed.state is ActionState.FAILED and failed.error.startswith("Batch said no")
    assert "more characters cut" in failed.error and len(failed.error) < 4100  # diagnostics stay bounded
    assert timed.claim(fed, "w").action.id == a2.id
    assert timed.list_actions(fed, states=["failed"])[0].id == a1.id


def test_release_with_an_error_counts_it_and_backs_off(timed, fed, clock):
    timed.enqueue(fed, [term("a")])
    claim = timed.claim(fed, "w")
    released = timed.release(claim, retry_in=5, error="connection reset")
    assert (released.errors, released.error, released.state, released.claimed_by) == (
        1,
        "connection reset",
        ActionState.QUEUED,
        None,
    )
    assert timed.claim(fed, "w") is None
    clock.advance(5)
    again = timed.claim(fed, "w")
    assert again.action.attempts == 2
    assert timed.release(again).errors == 1  # a plain release is not an error
    assert timed.claim(fed, "w") is not None


def test_placed_is_for_adds_and_done_for_terminate_and_delete(timed, fed):
    timed.enqueue(fed, [term("a"), NewAction("job", "add", "b", {})])
    claims = {c.action.target_id: c for c in (timed.claim(fed, "w"), timed.claim(fed, "w"))}
    with pytest.raises(ConflictError, match="terminate action: mark it done"):
        timed.mark_placed(claims["a"])
    with pytest.raises(ConflictError, match="add action: mark it placed"):
        timed.mark_done(claims["b"])
    assert timed.mark_done(claims["a"]).state is ActionState.DONE  # the refused call changed nothing
    assert timed.mark_placed(claims["b"]).state is ActionState.PLACED


def test_claims_need_a_positive_ttl_and_a_worker_id(timed, fed):
    with pytest.raises(StoreError, match="ttl"):
        timed.claim(fed, "w", ttl=0)
    with pytest.raises(StoreError, match="worker id"):
        timed.claim(fed, "")


def test_claiming_in_an_unknown_federation_finds_nothing(timed):
    assert timed.claim("nobody", "w") is None


def test_release_claims_frees_a_dead_workers_claims_at_once(store):
    """A restarted proxy reuses its id and frees what its killed run held."""
    store.create_federation("relc")
    store.enqueue("relc", [NewAction(kind="job", method="add", target_id=f"j{i}") for i in range(3)])
    held = [store.claim("relc", "proxy-1", ttl=600) for _ in range(2)]
    other = store.claim("relc", "proxy-2", ttl=600)
    assert all(held) and other is not None
    assert store.release_claims("proxy-1") == 2
    again = {store.claim("relc", "proxy-1", ttl=600).action_id for _ in range(2)}
    assert again == {c.action_id for c in held}
    assert store.claim("relc", "proxy-3") is None, "proxy-2's live claim is untouched"
    for c in held:  # the dead run's tokens are void
        with pytest.raises(ClaimLostError):
            store.release(c)


@pytest.mark.token_path
def test_nothing_is_claimed_while_suspended(store):
    store.create_federation("susp")
    store.set_suspended(True)
    store.enqueue("susp", [NewAction(kind="job", method="add", target_id="later")])
    assert store.claim("susp", "w") is None
    store.set_suspended(False)
    assert store.claim("susp", "w").action.target_id == "later"


def test_a_stale_claim_object_never_undoes_a_later_step(timed, fed):
    timed.enqueue(fed, [NewAction("job", "add", "a", {})])
    first = timed.claim(fed, "w1", ttl=60)
    timed.record_progress(first, {"pool": "p1"})
    timed.record_progress(first, {"step": "x"})  # an older Claim object of the same holder
    assert timed.get_action(fed, first.action.id).progress == {"pool": "p1", "step": "x"}


def add(target, **payload):
    return NewAction("job", "add", target, payload)


@pytest.mark.token_path
def test_a_placement_and_the_next_claim_are_one_step(timed, fed, clock):
    a1, a2 = timed.enqueue(fed, [add("a"), term("a")])
    clock.advance(1)
    (b1,) = timed.enqueue(fed, [add("b")])
    first = timed.claim(fed, "w1", ttl=30)
    assert first.action.id == a1.id
    where = LocationUpdate(
        "https://acct.westeurope.batch.azure.com", "pool-1", unique_id=a1.id, at=datetime.fromtimestamp(clock(), timezone.utc)
    )
    placed, nxt = timed.mark_placed_and_claim(first, worker="w1", progress={"tasks_added": 1}, location=where, ttl=30)
    assert placed.state is ActionState.PLACED and placed.progress["tasks_added"] == 1 and placed.claimed_by is None
    # a ready head of the federation, as claim() would pick it: a2 (now the head of a) or b1
    assert nxt.action.id in (a2.id, b1.id) and nxt.worker == "w1" and nxt.action.claimed_by == "w1" and nxt.action.attempts == 1
    (loc,) = timed.get_locations(fed, "a")
    assert (loc.pool_id, loc.unique_ids) == ("pool-1", (a1.id,))
    assert timed.claim(fed, "w2").action.id == ({a2.id, b1.id} - {nxt.action.id}).pop()
    assert timed.release(nxt).claimed_by is None  # a real claim: its holder can give it back


def test_the_next_claim_is_none_when_nothing_is_ready_or_the_proxy_is_suspended(timed, fed):
    timed.enqueue(fed, [add("a"), add("b")])
    first = timed.claim(fed, "w1")
    timed.set_suspended(True)
    placed, nxt = timed.mark_placed_and_claim(first, worker="w1")
    assert placed.state is ActionState.PLACED and nxt is None
    timed.set_suspended(False)
    second = timed.claim(fed, "w1")
    placed, nxt = timed.mark_placed_and_claim(second, worker="w1")
    assert placed.state is ActionState.PLACED and nxt is None  # nothing left


def test_a_lost_claim_places_nothing_and_claims_nothing(timed, fed, clock):
    timed.enqueue(fed, [add("a"), add("b")])
    stale = timed.claim(fed, "w1", ttl=10)
    clock.advance(11)
    with pytest.raises(ClaimLostError):
        timed.mark_placed_and_claim(stale, worker="w1")
    assert {c.action.target_id for c in (timed.claim(fed, "w2"), timed.claim(fed, "w3"))} == {"a", "b"}


def test_on_a_two_step_backend_a_failed_next_claim_leaves_the_placement_placed(tmp_path):
    from batchfed_lab.store.azure import AzureStore
    from batchfed_lab.store.sqlite import SqliteStore

    class TwoSteps(SqliteStore):
        """As a backend without one transaction for both: Azure's two steps."""

        _placed_then_claim = AzureStore._placed_then_claim

        def _claim(self, *args, **kwargs):
            raise ConflictError("too much contention")

    store = TwoSteps(tmp_path / "s.sqlite")
    try:
        store.create_federation("fed")
        store.enqueue("fed", [add("a"), add("b")])
        claim = SqliteStore._claim(store, "fed", "w1", "token-1", store.now() + 30, store.now())
        placed, nxt = store.mark_placed_and_claim(claim, worker="w1")
        assert placed.state is ActionState.PLACED and nxt is None
        assert store.get_action("fed", claim.action_id).state is ActionState.PLACED
    finally:
        store.close()


@pytest.mark.token_path
def test_many_claims_at_once_are_those_one_claim_at_a_time_would_give(timed, fed, clock):
    first = {}
    for n, target in enumerate(("a", "b", "a", "c", "d")):  # a twice: its second action waits for the first
        (action,) = timed.enqueue(fed, [term(target) if n == 2 else add(target)])
        first.setdefault(target, action)
        clock.advance(1)
    two = timed.claim_many(fed, "w", 2, ttl=60)
    assert [c.action.target_id for c in two] == ["a", "b"], "the readiest heads first"
    rest = timed.claim_many(fed, "w", 10, ttl=60)
    assert sorted(c.action.target_id for c in rest) == ["c", "d"], "one head per job id, each once"
    claims = {c.action.target_id: c for c in two + rest}
    assert {t: c.action.id for t, c in claims.items()} == {t: a.id for t, a in first.items()}
    assert all(c.action.claimed_by == "w" and c.action.attempts == 1 for c in claims.values())
    assert timed.claim_many(fed, "w", 5) == [] and timed.claim(fed, "w") is None
    timed.mark_placed(claims["a"])
    (second_a,) = timed.claim_many(fed, "w", 5)
    assert second_a.action.target_id == "a" and second_a.action.position == 2
    for c in [claims["b"], claims["c"], claims["d"], second_a]:  # real claims: their holder can give them back
        assert timed.release(c).claimed_by is None


def test_many_claims_are_none_while_suspended(timed, fed):
    timed.enqueue(fed, [add("a"), add("b")])
    timed.set_suspended(True)
    assert timed.claim_many(fed, "w", 5) == []
    timed.set_suspended(False)
    assert len(timed.claim_many(fed, "w", 5)) == 2
