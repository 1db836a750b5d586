"""A decision over a large federation costs the collector nothing per pool.

A placement reads no verdict: building one tracked object per pool of a 10,000-pool
federation made the garbage collector's older generations sweep every pool again and
again (the 10,000 / 1,000 pools time ratio of ``bench/scheduler.py``). The per-pool
table is built when it is read, and is then the same table as before.
"""

from __future__ import annotations

import gc

from factories import NOW, group, make_constraints, make_pool

from batchfed_lab.scheduler import decide

POOLS = 5_000


def _federation() -> list:
    # one pool in ten is in the job's region; the rest are excluded by the location constraint
    return [make_pool(f"p{i:04d}", location="westeurope" if i % 10 == 0 else "eastus", idle=i % 3) for i in range(POOLS)]


def _tracked_after(action):
    gc.collect()
    before = len(gc.get_objects())
    kept = action()
    return kept, len(gc.get_objects()) - before


def test_a_placement_leaves_the_collector_no_object_per_pool():
    pools = _federation()
    constraints = make_constraints(pool={"location": "westeurope"})
    decision, tracked = _tracked_after(lambda: decide(constraints, group(1), pools, NOW))
    assert decision.pool is not None
    assert tracked < POOLS // 50, f"{tracked} objects kept for the collector by one decision over {POOLS} pools"


def test_the_verdicts_read_later_are_the_full_table():
    pools = _federation()
    constraints = make_constraints(pool={"location": "westeurope"})
    d = decide(constraints, group(1), pools, NOW)
    assert len(d.verdicts) == POOLS
    assert [v.pool for v in d.verdicts] == sorted(p.key for p in pools)
    by_status = {s: sum(v.status == s for v in d.verdicts) for s in ("chosen", "eligible", "excluded", "skipped")}
    # of the 500 pools in the region, a third have no idle node (skipped by load)
    assert by_status == {"chosen": 1, "eligible": 332, "excluded": 4_500, "skipped": 167}
    assert d.verdict_for(d.pool).reason.startswith("chosen: ")
    assert d == decide(constraints, group(1), list(reversed(pools)), NOW)
