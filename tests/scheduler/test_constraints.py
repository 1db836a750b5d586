"""Every federation constraint (SPEC §4.1): pass, fail, default and edges.

Each row: the constraints a job sets, the task group, the pool, and the
expected verdict — ``None`` means the pool is eligible, otherwise the name of
the first failing constraint. Failing verdicts must carry required and actual.
"""

from __future__ import annotations

import pytest
from factories import NOW, group, make_constraints, make_pool

from batchfed_lab.scheduler import decide
from batchfed_lab.scheduler.types import VmSize

SUBNET = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/virtualNetworks/v/subnets/a"
IMAGE = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/images/img1"

CASES = [
    # id, constraints, task group kwargs, pool kwargs, expected failing constraint (None = eligible)
    ("no constraints: any pool", {}, {}, {}, None),
    # pool.autoscale
    ("autoscale allowed by default", {}, {}, {"autoscale": True}, None),
    (
        "autoscale allow false excludes autoscale pool",
        {"pool": {"autoscale": {"allow": False}}},
        {},
        {"autoscale": True},
        "autoscale",
    ),
    ("autoscale allow false keeps fixed pool", {"pool": {"autoscale": {"allow": False}}}, {}, {}, None),
    ("autoscale exclusive excludes fixed pool", {"pool": {"autoscale": {"exclusive": True}}}, {}, {}, "autoscale"),
    ("autoscale exclusive keeps autoscale pool", {"pool": {"autoscale": {"exclusive": True}}}, {}, {"autoscale": True}, None),
    # pool.low_priority_nodes
    ("low-priority allowed by default", {}, {}, {"idle": 0, "lp_idle": 2}, None),
    (
        "lp allow false excludes pool targeting lp",
        {"pool": {"low_priority_nodes": {"allow": False}}},
        {},
        {"lp_idle": 1},
        "low_priority",
    ),
    ("lp allow false keeps dedicated pool", {"pool": {"low_priority_nodes": {"allow": False}}}, {}, {}, None),
    ("lp exclusive excludes dedicated-only pool", {"pool": {"low_priority_nodes": {"exclusive": True}}}, {}, {}, "low_priority"),
    ("lp exclusive keeps lp pool", {"pool": {"low_priority_nodes": {"exclusive": True}}}, {}, {"idle": 0, "lp_idle": 1}, None),
    ("lp exclusive keeps autoscale pool", {"pool": {"low_priority_nodes": {"exclusive": True}}}, {}, {"autoscale": True}, None),
    # pool.native
    ("native not set: any", {}, {}, {"native": True}, None),
    ("native true excludes non-native", {"pool": {"native": True}}, {}, {}, "native"),
    ("native true keeps native", {"pool": {"native": True}}, {}, {"native": True}, None),
    ("native false excludes native", {"pool": {"native": False}}, {}, {"native": True}, "native"),
    ("native false keeps unflagged pool (treated as non-native)", {"pool": {"native": False}}, {}, {}, None),
    # pool.windows
    ("windows default: linux only", {}, {}, {"windows": True}, "windows"),
    ("windows true excludes linux", {"pool": {"windows": True}}, {}, {}, "windows"),
    ("windows true keeps windows", {"pool": {"windows": True}}, {}, {"windows": True}, None),
    ("windows false excludes windows (original ignored it)", {"pool": {"windows": False}}, {}, {"windows": True}, "windows"),
    ("windows false keeps linux", {"pool": {"windows": False}}, {}, {}, None),
    # pool.location
    ("location match", {"pool": {"location": "westeurope"}}, {}, {}, None),
    ("location case-insensitive", {"pool": {"location": "WestEurope"}}, {}, {"location": "westeurope"}, None),
    ("location mismatch", {"pool": {"location": "eastus"}}, {}, {}, "location"),
    # container registries
    ("public image needs no login", {}, {"registries": frozenset()}, {}, None),
    ("private registry login missing", {}, {"registries": frozenset({"myacr.azurecr.io"})}, {}, "container_registries"),
    (
        "private registry login held",
        {},
        {"registries": frozenset({"myacr.azurecr.io"})},
        {"registry_logins": frozenset({"myacr.azurecr.io"})},
        None,
    ),
    (
        "docker hub private login held",
        {},
        {"registries": frozenset({"dockerhub-alice"})},
        {"registry_logins": frozenset({"dockerhub-alice", "x.io"})},
        None,
    ),
    # backlog
    ("backlog under ratio", {"pool": {"max_active_task_backlog": {"ratio": 2}}}, {}, {"idle": 2, "active_tasks": 4}, None),
    ("backlog at ratio", {"pool": {"max_active_task_backlog": {"ratio": 2}}}, {}, {"idle": 2, "active_tasks": 4}, None),
    ("backlog over ratio", {"pool": {"max_active_task_backlog": {"ratio": 2}}}, {}, {"idle": 2, "active_tasks": 5}, "backlog"),
    (
        "backlog ratio 0 with no active tasks",
        {"pool": {"max_active_task_backlog": {"ratio": 0}}},
        {},
        {"idle": 1, "active_tasks": 0},
        None,
    ),
    (
        "backlog autoscale exempt at 0 slots",
        {"pool": {"max_active_task_backlog": {"ratio": 1}}},
        {},
        {"idle": 0, "autoscale": True, "active_tasks": 9},
        None,
    ),
    (
        "backlog autoscale not exempt",
        {"pool": {"max_active_task_backlog": {"ratio": 1, "autoscale_exempt": False}}},
        {},
        {"idle": 0, "autoscale": True, "active_tasks": 9},
        "backlog",
    ),
    (
        "backlog autoscale resizing not exempt",
        {"pool": {"max_active_task_backlog": {"ratio": 1}}},
        {},
        {"idle": 0, "autoscale": True, "allocation_state": "resizing"},
        "backlog",
    ),
    ("backlog unknown active count", {"pool": {"max_active_task_backlog": {"ratio": 1}}}, {}, {"active_tasks": None}, "backlog"),
    # custom image
    (
        "custom image match (case-insensitive)",
        {"pool": {"custom_image_arm_id": IMAGE.upper()}},
        {},
        {"custom_image_id": IMAGE},
        None,
    ),
    ("custom image vs platform-image pool: excluded, no crash", {"pool": {"custom_image_arm_id": IMAGE}}, {}, {}, "custom_image"),
    ("custom image mismatch", {"pool": {"custom_image_arm_id": IMAGE}}, {}, {"custom_image_id": IMAGE + "2"}, "custom_image"),
    # virtual network
    ("subnet match", {"pool": {"virtual_network_arm_id": SUBNET.lower()}}, {}, {"subnet_id": SUBNET}, None),
    ("subnet missing on pool", {"pool": {"virtual_network_arm_id": SUBNET}}, {}, {}, "virtual_network"),
    # vm_size
    ("vm_size exact, any case, with or without prefix", {"compute_node": {"vm_size": "D2_V3"}}, {}, {}, None),
    ("vm_size mismatch", {"compute_node": {"vm_size": "standard_d4_v3"}}, {}, {}, "vm_size"),
    # cores
    ("cores at amount, no variance", {"compute_node": {"cores": {"amount": 2}}}, {}, {}, None),
    (
        "cores above amount, no variance = no upper bound",
        {"compute_node": {"cores": {"amount": 2}}},
        {},
        {"vm_size": "standard_d8_v3"},
        None,
    ),
    ("cores below amount", {"compute_node": {"cores": {"amount": 4}}}, {}, {}, "cores"),
    (
        "cores variance 0 = exact, equal",
        {"compute_node": {"cores": {"amount": 4, "schedulable_variance": 0}}},
        {},
        {"vm_size": "standard_d4_v3"},
        None,
    ),
    (
        "cores variance 0 = exact, larger",
        {"compute_node": {"cores": {"amount": 4, "schedulable_variance": 0}}},
        {},
        {"vm_size": "standard_d8_v3"},
        "cores",
    ),
    (
        "cores within variance upper bound",
        {"compute_node": {"cores": {"amount": 4, "schedulable_variance": 1}}},
        {},
        {"vm_size": "standard_d8_v3"},
        None,
    ),
    (
        "cores above variance upper bound",
        {"compute_node": {"cores": {"amount": 2, "schedulable_variance": 0.5}}},
        {},
        {"vm_size": "standard_d4_v3"},
        "cores",
    ),
    # memory
    ("memory suffix m (crashed the original)", {"compute_node": {"memory": {"amount": "8192m"}}}, {}, {}, None),
    ("memory suffix g", {"compute_node": {"memory": {"amount": "8g"}}}, {}, {}, None),
    ("memory suffix upper-case G", {"compute_node": {"memory": {"amount": "8G"}}}, {}, {}, None),
    ("memory suffix k", {"compute_node": {"memory": {"amount": "8388608k"}}}, {}, {}, None),
    ("memory suffix b", {"compute_node": {"memory": {"amount": "8589934592b"}}}, {}, {}, None),
    ("memory suffix t", {"compute_node": {"memory": {"amount": "0.25t"}}}, {}, {"vm_size": "standard_hb120rs_v3"}, None),
    ("memory too small", {"compute_node": {"memory": {"amount": "9g"}}}, {}, {}, "memory"),
    (
        "memory variance 0 exact",
        {"compute_node": {"memory": {"amount": "16g", "schedulable_variance": 0}}},
        {},
        {"vm_size": "standard_d8_v3"},
        "memory",
    ),
    (
        "memory variance bound",
        {"compute_node": {"memory": {"amount": "16g", "schedulable_variance": 1}}},
        {},
        {"vm_size": "standard_d8_v3"},
        None,
    ),
    # exclusive
    ("exclusive needs 1 slot per node", {"compute_node": {"exclusive": True}}, {}, {"slots": 4}, "exclusive"),
    ("exclusive ok with 1 slot", {"compute_node": {"exclusive": True}}, {}, {"slots": 1}, None),
    # gpu
    ("gpu true excludes cpu size", {"compute_node": {"gpu": True}}, {}, {}, "gpu"),
    ("gpu true keeps gpu size", {"compute_node": {"gpu": True}}, {}, {"vm_size": "standard_nc6s_v3"}, None),
    ("gpu false excludes gpu size", {"compute_node": {"gpu": False}}, {}, {"vm_size": "standard_nc6s_v3"}, "gpu"),
    ("gpu implied by a gpu task", {}, {"gpu": True}, {}, "gpu"),
    ("gpu unset: any size", {}, {}, {"vm_size": "standard_nc6s_v3"}, None),
    # infiniband
    ("ib true excludes non-rdma", {"compute_node": {"infiniband": True}}, {}, {}, "infiniband"),
    ("ib true keeps rdma", {"compute_node": {"infiniband": True}}, {}, {"vm_size": "standard_hb120rs_v3"}, None),
    ("ib false excludes rdma", {"compute_node": {"infiniband": False}}, {}, {"vm_size": "standard_hb120rs_v3"}, "infiniband"),
    ("ib implied by an ib task", {}, {"infiniband": True}, {}, "infiniband"),
    # unknown size
    (
        "size unknown is a verdict, not a crash",
        {"compute_node": {"cores": {"amount": 1}}},
        {},
        {"vm_size": "standard_zz9", "size": None},
        "size unknown",
    ),
    ("size unknown irrelevant without size constraints", {}, {}, {"vm_size": "standard_zz9", "size": None}, None),
    # multi-instance
    (
        "multi-instance needs inter-node communication",
        {},
        {"multi_instance": True, "max_instances": 2},
        {"idle": 2},
        "multi_instance",
    ),
    (
        "multi-instance ok with inter-node",
        {},
        {"multi_instance": True, "max_instances": 2},
        {"idle": 2, "inter_node_communication": True},
        None,
    ),
    # load filter
    ("blackout skips the pool", {}, {}, {"blackout_until": NOW + 5}, "blackout"),
    ("blackout over", {}, {}, {"blackout_until": NOW - 1}, None),
    ("no schedulable nodes", {}, {}, {"idle": 0}, "nodes"),
    ("only starting nodes", {}, {}, {"idle": 0, "target_dedicated": 3}, "nodes"),
    (
        "lp allow false: lp-only capacity does not count",
        {"pool": {"low_priority_nodes": {"allow": False}}},
        {},
        {"idle": 0, "target_low_priority": 0, "lp_idle": 0},
        "nodes",
    ),
    ("deleting pool skipped", {}, {}, {"state": "deleting"}, "state"),
]


@pytest.mark.parametrize("spec,tg,pool_kw,expected", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_constraint(spec, tg, pool_kw, expected):
    p = make_pool("p1", **pool_kw)
    d = decide(make_constraints(**spec), group(1, **tg), [p], NOW)
    (v,) = d.verdicts
    if expected is None:
        assert v.status in ("eligible", "chosen"), v.reason
        assert v.constraint is None
    else:
        assert v.status in ("excluded", "skipped"), f"expected {expected!r} to fail, pool was {v.status}"
        assert v.constraint == expected, v.reason
        assert v.required and v.actual, "a failing verdict names required and actual values"
        assert not d.placed


def test_verdict_message_names_required_and_actual():
    d = decide(make_constraints(compute_node={"memory": {"amount": "64g"}}), group(), [make_pool("p1")], NOW)
    assert d.verdicts[0].reason == "memory: needs ≥ 64g, has 8g"


def test_hard_constraints_run_in_order_first_failure_wins():
    # location comes before memory in the original's order
    c = make_constraints(pool={"location": "eastus"}, compute_node={"memory": {"amount": "64g"}})
    (v,) = decide(c, group(), [make_pool("p1")], NOW).verdicts
    assert v.constraint == "location"


def test_native_and_windows_default_from_submitters_pool_config():
    pools = [make_pool("native", native=True), make_pool("plain")]
    d = decide(make_constraints(), group(), pools, NOW, native_default=True)
    assert d.pool.endswith("#native")
    d = decide(make_constraints(pool={"native": False}), group(), pools, NOW, native_default=True)
    assert d.pool.endswith("#plain"), "an explicit constraint beats the pool.yaml default"


def test_vm_size_override_makes_unknown_size_known():
    p = make_pool("p1", vm_size="standard_custom1", size=VmSize("standard_custom1", 16, 65536))
    d = decide(make_constraints(compute_node={"cores": {"amount": 16}}), group(), [p], NOW)
    assert d.placed


def test_excluded_pool_from_failed_job_create_is_not_chosen_again():
    pools = [make_pool("a", idle=4), make_pool("b", idle=2)]
    first = decide(make_constraints(), group(), pools, NOW)
    second = decide(make_constraints(), group(), pools, NOW, exclude=[first.pool])
    assert second.pool != first.pool
    assert second.verdict_for(first.pool).constraint == "job_create"


def test_constraint_matrix_judges_every_constraint_on_every_pool():
    from batchfed_lab.scheduler import constraint_matrix

    c = make_constraints(pool={"location": "westeurope"}, compute_node={"memory": {"amount": "16g"}, "gpu": True})
    pools = [make_pool("cpu", vm_size="standard_d2_v3"), make_pool("gpu", vm_size="standard_nc6s_v3", location="eastus")]
    rows = {(r.pool.rsplit("#")[-1], r.constraint): r for r in constraint_matrix(c, group(), pools, NOW)}
    # the cpu pool fails gpu and memory but passes location — all three are judged
    assert rows[("cpu", "location")].passed and rows[("cpu", "location")].actual == "westeurope"
    assert not rows[("cpu", "gpu")].passed and rows[("cpu", "gpu")].actual == "0 GPUs"
    assert not rows[("cpu", "memory")].passed and (rows[("cpu", "memory")].required, rows[("cpu", "memory")].actual) == (
        "≥ 16g",
        "8g",
    )
    # the gpu pool fails only location
    assert [k for k, r in rows.items() if k[0] == "gpu" and not r.passed] == [("gpu", "location")]
    assert rows[("gpu", "load")].passed and rows[("cpu", "load")].actual == "ok"


def test_constraint_matrix_marks_size_dependent_rows_when_the_size_is_unknown():
    from batchfed_lab.scheduler import constraint_matrix

    c = make_constraints(compute_node={"cores": {"amount": 2}})
    rows = {r.constraint: r for r in constraint_matrix(c, group(), [make_pool("odd", vm_size="standard_zz9", size=None)], NOW)}
    assert list(rows) == ["windows", "size unknown", "cores", "load"]  # linux by default, then the job's own
    assert not rows["size unknown"].passed
    assert (rows["cores"].passed, rows["cores"].actual) == (False, "size unknown")
