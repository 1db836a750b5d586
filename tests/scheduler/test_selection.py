"""Choosing among eligible pools (SPEC §4.3): idle fit, schedulable fit, steady
autoscale, backlog fallback; dedicated before low-priority; nodes for
multi-instance groups; deterministic ties; largest-fit vs best-fit."""

from __future__ import annotations

import pytest
from factories import NOW, group, make_constraints, make_pool

from batchfed_lab.errors import SchedulingError
from batchfed_lab.scheduler import decide


def chosen(pools, need=1, policy="largest-fit", **kw):
    c = kw.pop("constraints", make_constraints())
    d = decide(c, group(need, **kw), pools, NOW, policy)
    return (d.pool.rsplit("#", 1)[-1] if d.pool else None), d


def test_idle_fit_takes_the_pool_with_most_idle_capacity():
    name, d = chosen([make_pool("small", idle=2), make_pool("big", idle=5), make_pool("mid", idle=3)], need=2)
    assert name == "big" and d.rule == "idle-fit" and d.capacity == 5


def test_idle_capacity_counts_slots_per_node():
    name, d = chosen([make_pool("wide", idle=1, slots=8), make_pool("many", idle=4, slots=1)], need=6)
    assert (name, d.capacity, d.unit) == ("wide", 8, "slots")


def test_schedulable_fit_when_no_pool_has_enough_idle():
    pools = [make_pool("busy", idle=1, running=5), make_pool("quiet", idle=2)]
    name, d = chosen(pools, need=4)
    assert name == "busy" and d.rule == "schedulable-fit"


def test_steady_autoscale_pool_when_nothing_fits():
    pools = [make_pool("fixed", idle=1), make_pool("auto", idle=0, autoscale=True)]
    name, d = chosen(pools, need=3, task_count=3)
    assert name == "auto" and d.rule == "steady-autoscale"


def test_resizing_autoscale_pool_is_not_the_autoscale_choice():
    pools = [make_pool("auto", idle=0, autoscale=True, allocation_state="resizing"), make_pool("fixed", idle=1)]
    name, d = chosen(pools, need=3)
    assert name == "fixed" and d.rule == "backlog"


def test_backlog_fallback_accepts_partial_fit_for_slot_groups():
    name, d = chosen([make_pool("a", idle=1), make_pool("b", idle=2)], need=10)
    assert name == "b" and d.rule == "backlog"


def test_backlog_fallback_prefers_idle_then_schedulable():
    pools = [make_pool("running", idle=0, running=3), make_pool("idle", idle=1)]
    name, _ = chosen(pools, need=10)
    assert name == "idle"


def test_dedicated_before_low_priority():
    pools = [make_pool("lp", idle=0, lp_idle=10), make_pool("ded", idle=1)]
    name, d = chosen(pools, need=1)
    assert name == "ded" and d.node_kind == "dedicated"


def test_low_priority_used_when_no_dedicated_capacity():
    pools = [make_pool("lp", idle=0, lp_idle=2)]
    name, d = chosen(pools, need=1)
    assert name == "lp" and d.node_kind == "low_priority"


def test_dedicated_backlog_beats_idle_low_priority_in_default_mode():
    # the original's order: the whole dedicated procedure (backlog included) runs first
    pools = [make_pool("lp", idle=0, lp_idle=10), make_pool("ded", idle=1)]
    name, d = chosen(pools, need=5)
    assert (name, d.node_kind, d.rule) == ("ded", "dedicated", "backlog")


def test_low_priority_only():
    c = make_constraints(pool={"low_priority_nodes": {"exclusive": True}})
    pools = [make_pool("mixed", idle=5, lp_idle=1), make_pool("lp", idle=0, lp_idle=2)]
    name, d = chosen(pools, need=1, constraints=c)
    assert d.node_kind == "low_priority" and name == "lp"


def test_dedicated_only():
    c = make_constraints(pool={"low_priority_nodes": {"allow": False}})
    pools = [make_pool("lp", idle=0, lp_idle=8), make_pool("ded", idle=1)]
    name, d = chosen(pools, need=4, constraints=c)
    assert (name, d.node_kind) == ("ded", "dedicated")


def test_multi_instance_counts_nodes_not_slots():
    pools = [
        make_pool("wide", idle=2, slots=16, inter_node_communication=True),
        make_pool("many", idle=4, slots=1, inter_node_communication=True),
    ]
    name, d = chosen(pools, need=4, multi_instance=True, max_instances=4)
    assert (name, d.unit, d.required, d.capacity) == ("many", "nodes", 4, 4)


def test_multi_instance_has_no_backlog_fallback():
    pools = [make_pool("small", idle=2, inter_node_communication=True)]
    name, d = chosen(pools, need=4, multi_instance=True, max_instances=4)
    assert name is None and "capacity" in d.reason


def test_ties_broken_by_pool_id_not_input_order():
    a, b, c = make_pool("a", idle=2), make_pool("b", idle=2), make_pool("c", idle=2)
    assert chosen([c, b, a])[0] == chosen([a, b, c])[0] == "a"


@pytest.mark.parametrize("fit", ["idle", "schedulable", "backlog"])
def test_ties_across_accounts_go_by_pool_id_before_the_account(fit: str):
    # SPEC §4.3: ties are broken by pool id; the account's URL only separates equal ids
    kw = {"idle": {"idle": 2}, "schedulable": {"idle": 0, "running": 2}, "backlog": {"idle": 0, "running": 1}}[fit]
    need = {"idle": 1, "schedulable": 2, "backlog": 3}[fit]
    zeta = make_pool("zeta", account="aaaa", **kw)
    alpha = make_pool("alpha", account="zzzz", **kw)
    assert chosen([zeta, alpha], need)[0] == chosen([alpha, zeta], need)[0] == "alpha"
    same_id = [make_pool("p", account="zzzz", **kw), make_pool("p", account="aaaa", **kw)]
    assert "aaaa" in chosen(same_id, need)[1].pool


def test_best_fit_takes_the_smallest_pool_that_fits():
    pools = [make_pool("big", idle=8), make_pool("snug", idle=3), make_pool("tiny", idle=1)]
    assert chosen(pools, need=3, policy="best-fit")[0] == "snug"
    assert chosen(pools, need=3, policy="largest-fit")[0] == "big"


def test_unknown_policy_is_a_clear_error():
    with pytest.raises(SchedulingError, match="best-fit"):
        chosen([make_pool("a")], policy="random")


def test_blocked_when_every_pool_is_excluded_reason_and_verdicts():
    c = make_constraints(pool={"location": "mars"})
    name, d = chosen([make_pool("a"), make_pool("b")], constraints=c)
    assert name is None
    assert d.reason == "no pool satisfies the constraints (2 of 2 excluded): location: needs mars, has westeurope"
    assert [v.constraint for v in d.verdicts] == ["location", "location"]


def test_a_blocked_reason_carries_what_each_constraint_needs_and_what_the_pools_have():
    """Issue 20, point 9: the one-line reason says why, not only how many pools failed."""
    pools = [make_pool("a", vm_size="standard_d4_v3"), make_pool("b", vm_size="standard_nc6s_v3")]
    pools += [make_pool("c", vm_size="standard_d8_v3"), make_pool("d", vm_size="standard_e4_v3")]
    c = make_constraints(compute_node={"memory": {"amount": "10000g"}})
    name, d = chosen(pools, constraints=c)
    assert name is None
    assert d.reason == "no pool satisfies the constraints (4 of 4 excluded): memory: needs ≥ 10000g, has 16g/112g/32g"


def test_a_blocked_reason_names_each_failing_constraint_with_its_pool_count():
    pools = [make_pool("lin", location="eastus"), make_pool("win"), make_pool("far", location="japaneast")]
    pools[1] = make_pool("win", location="eastus", windows=True, idle=0)  # eligible, but no node now
    c = make_constraints(pool={"location": "eastus", "windows": True})
    d = chosen(pools, constraints=c)[1]
    assert d.reason.startswith("no eligible pool can take work now (2 excluded by constraints, 1 skipped by load): ")
    assert "location: needs eastus, has japaneast (1 pool)" in d.reason
    assert "windows: needs windows, has linux (1 pool)" in d.reason
    assert "nodes: no schedulable (idle or running) dedicated or low-priority nodes (1 pool)" in d.reason


def test_a_blocked_reason_stays_one_bounded_line_on_a_large_federation():
    pools = [make_pool(f"p{i:04d}", location=f"region{i}") for i in range(2000)]
    d = chosen(pools, constraints=make_constraints(pool={"location": "mars"}))[1]
    assert d.reason.startswith("no pool satisfies the constraints (2000 of 2000 excluded): location: needs mars, has ")
    assert "\n" not in d.reason and len(d.reason) < 400 and "(+1995 more)" in d.reason


def test_blocked_by_load_only_says_so():
    name, d = chosen([make_pool("a", idle=0), make_pool("b", blackout_until=NOW + 10)])
    assert name is None and "skipped by load" in d.reason


def test_empty_federation_blocks_with_reason():
    name, d = chosen([])
    assert name is None and d.reason == "the federation has no pools"


def test_chosen_verdict_says_why():
    _, d = chosen([make_pool("a", idle=2)])
    (v,) = d.verdicts
    assert v.status == "chosen" and "idle-fit" in v.reason


def test_same_pool_in_two_accounts_are_different_pools():
    pools = [make_pool("p", account="one", idle=1), make_pool("p", account="two", idle=3)]
    _, d = chosen(pools)
    assert d.pool.endswith("/accounts/two#p") and len(d.verdicts) == 2
