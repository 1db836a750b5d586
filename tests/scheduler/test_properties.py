"""Properties that hold for any federation (hypothesis):

* a chosen pool passes every hard constraint and the load filter;
* every pool gets exactly one verdict, and every excluded or skipped pool names why;
* the decision does not depend on the order the pools are given in.
"""

from __future__ import annotations

from factories import NOW, SIZES, group, make_constraints, make_pool
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from batchfed_lab.scheduler import decide
from batchfed_lab.scheduler.hard_checks import build_hard_checks
from batchfed_lab.scheduler.matching import hard_verdict, load_verdict
from batchfed_lab.scheduler.requirements import resolve

LOCATIONS = ["westeurope", "eastus", "japaneast"]


@st.composite
def pools(draw):
    n = draw(st.integers(min_value=0, max_value=12))
    out = []
    for i in range(n):
        out.append(
            make_pool(
                f"p{i:02d}",
                account=draw(st.sampled_from(["a1", "a2"])),
                location=draw(st.sampled_from(LOCATIONS)),
                vm_size=draw(st.sampled_from(sorted(SIZES))),
                idle=draw(st.integers(0, 4)),
                running=draw(st.integers(0, 4)),
                lp_idle=draw(st.integers(0, 3)),
                lp_running=draw(st.integers(0, 2)),
                slots=draw(st.sampled_from([1, 2, 4])),
                autoscale=draw(st.booleans()),
                native=draw(st.booleans()),
                windows=draw(st.booleans()),
                inter_node_communication=draw(st.booleans()),
                active_tasks=draw(st.integers(0, 20)),
                allocation_state=draw(st.sampled_from(["steady", "resizing"])),
                blackout_until=draw(st.sampled_from([None, NOW - 1, NOW + 5])),
            )
        )
    return out


@st.composite
def constraint_specs(draw):
    pool: dict = {}
    node: dict = {}
    if draw(st.booleans()):
        pool["location"] = draw(st.sampled_from(LOCATIONS))
    if draw(st.booleans()):
        allow = draw(st.booleans())
        pool["autoscale"] = {"allow": allow, "exclusive": allow and draw(st.booleans())}
    if draw(st.booleans()):
        allow = draw(st.booleans())
        pool["low_priority_nodes"] = {"allow": allow, "exclusive": allow and draw(st.booleans())}
    if draw(st.booleans()):
        pool["native"] = draw(st.booleans())
    if draw(st.booleans()):
        pool["windows"] = draw(st.booleans())
    if draw(st.booleans()):
        pool["max_active_task_backlog"] = {
            "ratio": draw(st.sampled_from([0, 0.5, 1, 4])),
            "autoscale_exempt": draw(st.booleans()),
        }
    if draw(st.booleans()):
        node["cores"] = {
            "amount": draw(st.sampled_from([1, 2, 4, 8])),
            **({"schedulable_variance": draw(st.sampled_from([0, 0.5, 1]))} if draw(st.booleans()) else {}),
        }
    if draw(st.booleans()):
        node["memory"] = {"amount": draw(st.sampled_from(["2g", "8192m", "16G", "64g"]))}
    if draw(st.booleans()):
        node["gpu"] = draw(st.booleans())
    if draw(st.booleans()):
        node["infiniband"] = draw(st.booleans())
    if draw(st.booleans()):
        node["exclusive"] = draw(st.booleans())
    return make_constraints(pool=pool, compute_node=node)


@st.composite
def groups(draw):
    multi = draw(st.booleans())
    total = draw(st.integers(1, 12))
    return group(total, multi_instance=multi, max_instances=draw(st.integers(2, 4)) if multi else 1)


PROFILE = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROFILE
@given(pools(), constraint_specs(), groups(), st.sampled_from(["largest-fit", "best-fit"]))
def test_chosen_pool_passes_every_hard_constraint_and_the_load_filter(ps, c, g, policy):
    d = decide(c, g, ps, NOW, policy)
    if d.pool is None:
        return
    req = resolve(c, g)
    (p,) = [p for p in ps if p.key == d.pool]
    assert hard_verdict(p.facts, build_hard_checks(req)) is None
    assert load_verdict(p, req, NOW) is None
    if req.low_priority_exclusive:
        assert d.node_kind == "low_priority"
    if not req.allow_low_priority:
        assert d.node_kind == "dedicated"


@PROFILE
@given(pools(), constraint_specs(), groups())
def test_every_pool_has_exactly_one_verdict_and_failures_say_why(ps, c, g):
    d = decide(c, g, ps, NOW)
    assert sorted(v.pool for v in d.verdicts) == sorted(p.key for p in ps)
    assert sum(v.status == "chosen" for v in d.verdicts) == (1 if d.pool else 0)
    for v in d.verdicts:
        if v.status in ("excluded", "skipped"):
            assert v.constraint and v.required is not None and v.actual is not None and v.reason
    if d.pool is None:
        assert d.reason


@PROFILE
@given(pools(), constraint_specs(), groups(), st.randoms(use_true_random=False))
def test_decision_does_not_depend_on_pool_order(ps, c, g, rnd):
    shuffled = list(ps)
    rnd.shuffle(shuffled)
    assert decide(c, g, ps, NOW) == decide(c, g, shuffled, NOW)


@PROFILE
@given(pools(), constraint_specs(), groups())
def test_a_verdict_judged_once_per_value_is_the_pools_own_verdict(ps, c, g):
    """A decision judges each distinct value (region, image, size…) once and reuses the
    answer for every pool that shares it: each pool's verdict must still be the one its own
    facts give when judged alone, with checks that have seen no other pool."""
    d = decide(c, g, ps, NOW)
    req = resolve(c, g)
    for p in ps:
        alone = hard_verdict(p.facts, build_hard_checks(req))
        verdict = d.verdict_for(p.key)
        if alone is not None:
            assert verdict == alone
        else:
            assert verdict is not None and verdict.status != "excluded"
