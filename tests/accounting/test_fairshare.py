"""Fair share between users, as Slurm's fair-share factor: usage decays with a half-life, a
user's factor is 2^(-U/S) (normalised usage over normalised share), and whose head is
claimed next is the user with the highest factor (the least served for their share)."""

from __future__ import annotations

import pytest

from batchfed_lab.accounting.fairshare import FairShareOrder, Shares, UsageLedger, fair_share_factor
from batchfed_lab.accounting.priority import Aging
from batchfed_lab.store.ordering import ReadyGroup

HOUR = 3600.0


def test_usage_halves_every_half_life():
    ledger = UsageLedger(half_life=HOUR)
    ledger.charge("ada", 8.0, at=0.0)
    assert ledger.usage("ada", 0.0) == pytest.approx(8.0)
    assert ledger.usage("ada", HOUR) == pytest.approx(4.0)
    assert ledger.usage("ada", 3 * HOUR) == pytest.approx(1.0)
    ledger.charge("ada", 1.0, at=3 * HOUR)
    assert ledger.usage("ada", 3 * HOUR) == pytest.approx(2.0)
    assert ledger.usage("nobody", 0.0) == 0.0


def test_the_factor_is_two_to_the_minus_usage_over_share():
    assert fair_share_factor(0.0, 0.5) == 1.0
    assert fair_share_factor(0.5, 0.5) == pytest.approx(0.5)
    assert fair_share_factor(1.0, 0.25) == pytest.approx(2**-4)


def test_shares_default_equal_and_groups_split_among_members():
    shares = Shares(users={"ada": 3.0}, groups={"lab": (2.0, ("bob", "cy"))})
    assert shares.of("ada") == 3.0
    assert shares.of("bob") == shares.of("cy") == 1.0
    assert shares.of("dee") == 1.0  # not named anywhere: the default share
    assert Shares(default=2.0).of("x") == 2.0


def _order(shares: Shares | None = None, ledger: UsageLedger | None = None) -> FairShareOrder:
    return FairShareOrder(shares or Shares(), ledger or UsageLedger(half_life=HOUR), Aging(3.6))


def test_the_least_served_user_goes_first_then_priority_within_a_user():
    ledger = UsageLedger(half_life=HOUR)
    ledger.charge("ada", 5.0, at=0.0)
    order = _order(ledger=ledger)
    ada_old, bob_new = ReadyGroup("ada", 0, 1.0, 3), ReadyGroup("bob", 0, 50.0, 1)
    assert order.choose([ada_old, bob_new], now=60.0) is bob_new
    bob_high = ReadyGroup("bob", 100, 55.0, 1)
    assert order.choose([ada_old, bob_new, bob_high], now=60.0) is bob_high


def test_without_usage_the_oldest_head_goes_first():
    a, b = ReadyGroup("ada", 0, 1.0, 1), ReadyGroup("bob", 0, 2.0, 1)
    assert _order().choose([b, a], now=3.0) is a


def _run(order: FairShareOrder, backlog: dict[str, int], steps: int, arrivals=None) -> list[str]:
    """Place one head per step, charging one unit each; ``arrivals``: step → (user, count)."""
    placed: list[str] = []
    for step in range(steps):
        for who, n in (arrivals or {}).get(step, []):
            backlog[who] = backlog.get(who, 0) + n
        groups = [ReadyGroup(u, 0, float(i), n) for i, (u, n) in enumerate(sorted(backlog.items())) if n > 0]
        if not groups:
            break
        who = order.choose(groups, now=float(step)).submitter
        backlog[who] -= 1
        order.ledger.charge(who, 1.0, at=float(step))
        placed.append(who)
    return placed


def test_shares_three_to_one_give_placements_three_to_one_under_contention():
    order = _order(Shares(users={"ada": 3.0, "bob": 1.0}), UsageLedger(half_life=7 * 24 * HOUR))
    placed = _run(order, {"ada": 2000, "bob": 2000}, 400)
    ratio = placed.count("ada") / placed.count("bob")
    assert 2.7 <= ratio <= 3.3, ratio


def test_a_late_users_few_actions_go_before_the_big_backlogs_next_hundred():
    order = _order(ledger=UsageLedger(half_life=7 * 24 * HOUR))
    placed = _run(order, {"ada": 2000}, 300, arrivals={50: [("bob", 10)]})
    after = placed[50:]
    assert after[0] == "bob"
    last_bob = max(i for i, u in enumerate(after) if u == "bob")
    assert after[: last_bob + 1].count("ada") < 100 and after.count("bob") == 10
