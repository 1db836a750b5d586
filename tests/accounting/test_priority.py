"""Priorities order the federation's queue across job ids (higher first); equal priorities keep
the order in which the heads became ready; and aging lifts a waiting head by one priority point
per ``seconds_per_point`` of waiting, so a low priority never starves."""

from __future__ import annotations

import pytest

from batchfed_lab.accounting.priority import Aging, effective_priority, longest_wait, rank
from batchfed_lab.store.ordering import ReadyGroup

AGING = Aging(seconds_per_point=3.6)  # 1000 points an hour


def _first(groups, now=0.0):
    return min(groups, key=lambda g: rank(g, AGING))


def test_higher_priority_goes_first_across_job_ids():
    low, high = ReadyGroup("ada", -5, 100.0, 1), ReadyGroup("ada", 10, 100.0, 1)
    assert _first([low, high]) is high


def test_equal_priorities_keep_the_ready_order():
    old, new = ReadyGroup("ada", 0, 100.0, 1), ReadyGroup("bob", 0, 101.0, 1)
    assert _first([new, old]) is old


def test_aging_lifts_a_waiting_head_one_point_per_step():
    assert effective_priority(-1000, waited=3600.0, aging=AGING) == pytest.approx(0.0)
    waited_low = ReadyGroup("ada", -1000, 0.0, 1)
    fresh_high = ReadyGroup("bob", 1000, 7200.0 - 1.0, 1)  # became ready just under 2 h later
    assert _first([waited_low, fresh_high]) is fresh_high
    later_high = ReadyGroup("bob", 1000, 7200.0 + 1.0, 1)
    assert _first([waited_low, later_high]) is waited_low


def test_a_low_priority_head_never_waits_longer_than_the_bound():
    """A stream of fresh top-priority heads, one placement per second: the lowest-priority head
    is placed once it has waited (1000 - (-1000)) x seconds_per_point, never later."""
    bound = longest_wait(-1000, AGING)
    assert bound == pytest.approx(7200.0)
    low = ReadyGroup("ada", -1000, 0.0, 1)
    queue = [low]
    t = 0.0
    while True:
        t += 1.0
        queue.append(ReadyGroup("bob", 1000, t, 1))
        chosen = _first(queue)
        queue.remove(chosen)
        if chosen is low:
            break
        assert t <= bound + 2
    assert bound - 2 <= t <= bound + 2


def test_aging_is_checked():
    with pytest.raises(ValueError):
        Aging(seconds_per_point=0)
