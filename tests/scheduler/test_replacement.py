"""Re-placement rules, pure: when a placed job moves, what moves with it, where it may not go."""

from __future__ import annotations

import pytest

from batchfed_lab.config.constraints import FederationConstraints
from batchfed_lab.config.jobs import TaskDefinition
from batchfed_lab.config.replacement import ReplacementRules
from batchfed_lab.errors import ConfigError
from batchfed_lab.scheduler.replacement import (
    Observation,
    PoolCondition,
    TaskState,
    judge,
    move_exclusions,
    moved_batch_job_id,
    stall_candidate,
    tasks_to_move,
)
from batchfed_lab.scheduler.types import PoolFacts, PoolSnapshot

DEFAULTS = ReplacementRules()
RUNNING = (TaskState("t0", "running"), TaskState("t1", "active"))


def rules(**kw: object) -> ReplacementRules:
    return FederationConstraints.model_validate({"replacement": kw}).replacement


def obs(pool: PoolCondition | None = None, tasks: tuple[TaskState, ...] = RUNNING, **kw: object) -> Observation:
    return Observation("job", pool or PoolCondition("eus-spot"), tasks, **kw)  # type: ignore[arg-type]


def test_a_healthy_placement_stays() -> None:
    assert judge(obs(), DEFAULTS).outcome == "none"


@pytest.mark.parametrize(
    "pool",
    [
        PoolCondition("eus-spot", present=False, state="missing"),
        PoolCondition("eus-spot", state="deleting"),
        PoolCondition("eus-spot", target_nodes=0, current_nodes=0),
    ],
    ids=["deleted", "deleting", "resized-to-zero"],
)
def test_pool_gone_moves_at_once_by_default(pool: PoolCondition) -> None:
    j = judge(obs(pool), DEFAULTS)
    assert (j.outcome, j.kind) == ("move", "pool_gone")
    assert j.text.startswith("moved: pool eus-spot")


def test_a_pool_at_zero_with_autoscale_is_not_gone() -> None:
    pool = PoolCondition("eus-spot", target_nodes=0, current_nodes=0, autoscale=True)
    assert judge(obs(pool), DEFAULTS).outcome == "none"


def test_node_lost_moves_at_once_by_default() -> None:
    j = judge(obs(PoolCondition("we", unusable_nodes=1)), DEFAULTS)
    assert (j.outcome, j.kind, j.text) == ("move", "node_lost", "moved: 1 node lost on we")


def test_preempted_moves_on_the_third_preemption_in_a_row() -> None:
    two = (TaskState("t0", "active", requeues=2),)
    three = (TaskState("t0", "active", requeues=3),)
    assert judge(obs(tasks=two), DEFAULTS).outcome == "retry"
    j = judge(obs(tasks=three), DEFAULTS)
    assert (j.outcome, j.text) == ("move", "moved: 3 preemptions on eus-spot")


def test_preemptions_of_finished_tasks_do_not_count() -> None:
    tasks = (TaskState("t0", "completed", exit_code=0, requeues=5), TaskState("t1", "active"))
    assert judge(obs(tasks=tasks), DEFAULTS).outcome == "none"


def test_start_failed_exit_code_and_stalled_are_off_by_default() -> None:
    assert judge(obs(PoolCondition("p", start_failed_nodes=2)), DEFAULTS).outcome == "retry"
    oom = (TaskState("t0", "completed", exit_code=137), TaskState("t1", "active"))
    assert judge(obs(tasks=oom), DEFAULTS).outcome == "none"
    idle = (TaskState("t0", "active"),)
    assert judge(obs(tasks=idle, placed_for=10**6), DEFAULTS).outcome == "retry"


def test_start_failed_moves_when_asked() -> None:
    j = judge(obs(PoolCondition("p", start_failed_nodes=1)), rules(start_failed={"move": True}))
    assert (j.outcome, j.text) == ("move", "moved: start task failed on 1 node of p")


def test_listed_exit_codes_move_and_those_tasks_are_not_finished() -> None:
    r = rules(exit_code={"move": True, "codes": [137]})
    oom = (TaskState("t0", "completed", exit_code=137), TaskState("t1", "completed", exit_code=0))
    j = judge(obs(tasks=oom), r)
    assert (j.outcome, j.text) == ("move", "moved: 1 task exited with 137 on eus-spot")
    assert [t.id for t in tasks_to_move([_t("t0"), _t("t1")], ["t1"])] == ["t0"]


@pytest.mark.parametrize("code", ["TaskEnded", "SomeServiceCode"])
def test_a_task_the_service_ended_is_not_finished(code: str) -> None:
    ended = (TaskState("t0", "completed", exit_code=137, failure_code=code),)
    assert judge(obs(PoolCondition("p", unusable_nodes=1), tasks=ended), DEFAULTS).outcome == "move"
    failed_itself = (TaskState("t0", "completed", exit_code=1, failure_code="FailureExitCode"),)
    assert judge(obs(PoolCondition("p", unusable_nodes=1), tasks=failed_itself), DEFAULTS).outcome == "none"


def test_stalled_moves_after_its_limit_only() -> None:
    r = rules(stalled={"move": True, "after": 60})
    idle = (TaskState("t0", "active"),)
    assert not stall_candidate(obs(tasks=idle, placed_for=59), r)
    assert stall_candidate(obs(tasks=idle, placed_for=61), r)
    assert judge(obs(tasks=idle, placed_for=61), r).text == "moved: queued 61 s on eus-spot with no task started"
    assert judge(obs(tasks=RUNNING, placed_for=61), r).outcome == "none"


def test_a_finished_job_never_moves() -> None:
    finished = (TaskState("t0", "completed", exit_code=0),)
    assert judge(obs(PoolCondition("p", present=False), tasks=finished), DEFAULTS).outcome == "none"


def test_max_moves_stops_moving() -> None:
    gone = PoolCondition("p", present=False)
    j = judge(obs(gone, moves=("pool_gone", "node_lost", "preempted")), DEFAULTS)
    assert j.outcome == "exhausted" and "3 moves" in j.text
    assert judge(obs(gone, moves=("node_lost",)), rules(pool_gone={"move": True, "max_moves": 1})).outcome == "move"
    assert judge(obs(gone, moves=("pool_gone",)), rules(pool_gone={"move": True, "max_moves": 1})).outcome == "exhausted"


def test_prefer_dedicated_after_k_preemptions_over_all_moves() -> None:
    r = rules(preempted={"prefer": "dedicated", "prefer_after": 5})
    three = (TaskState("t0", "active", requeues=3),)
    assert not judge(obs(tasks=three), r).prefer_dedicated
    assert judge(obs(tasks=three, earlier_preemptions=3), r).prefer_dedicated


def test_regions_of_a_kind_override_the_jobs() -> None:
    r = rules(regions=["eastus"], node_lost={"move": True, "regions": ["japaneast"]})
    assert judge(obs(PoolCondition("p", unusable_nodes=1)), r).regions == ("japaneast",)
    assert judge(obs(PoolCondition("p", present=False)), r).regions == ("eastus",)


def _t(tid: str, *deps: str) -> TaskDefinition:
    return TaskDefinition(tid, "true", depends_on=deps, generated_id=True)


def test_unfinished_tasks_move_with_what_they_depend_on() -> None:
    placed = [_t("a"), _t("b", "a"), _t("c", "b"), _t("d", "a")]
    moved = tasks_to_move(placed, ["a"])
    assert [(t.id, t.depends_on) for t in moved] == [("b", ()), ("c", ("b",)), ("d", ())]
    assert not any(t.generated_id for t in moved)  # ids never renumbered again


def _snap(pid: str, location: str, account: str = "a") -> PoolSnapshot:
    return PoolSnapshot(PoolFacts(pid, f"http://x/accounts/{account}", account, location, "standard_d2_v3", None))


def test_a_move_excludes_the_pool_it_left_and_other_regions_but_not_its_account() -> None:
    pools = [_snap("old", "eastus"), _snap("same", "eastus"), _snap("us2", "eastus", "b"), _snap("jp", "japaneast", "b")]
    out = move_exclusions(pools, {pools[0].key: "3 preemptions on old"}, ["eastus"], "j")
    assert out == {
        pools[0].key: "moved away: 3 preemptions on old",
        pools[3].key: "region japaneast is not among the regions allowed for moves",
    }


def test_a_moved_batch_job_id_is_a_valid_batch_id_that_names_the_move() -> None:
    assert moved_batch_job_id("train-7", 2) == "train-7-moved-2"
    long_a, long_b = "a" * 60 + "x", "a" * 60 + "y"
    ids = {moved_batch_job_id(long_a, 1), moved_batch_job_id(long_b, 1)}
    assert len(ids) == 2 and all(len(i) <= 64 and i.endswith("-moved-1") for i in ids)


@pytest.mark.parametrize(
    "bad, where",
    [
        ({"exit_code": {"move": True}}, "codes"),
        ({"preempted": {"retry_in_place": -1}}, "retry_in_place"),
        ({"preempted": {"prefer": "spot"}}, "prefer"),
        ({"stalled": {"after": 0}}, "after"),
        ({"regions": ["West Europe"]}, "regions"),
        ({"pool_gone": {"moves": True}}, "moves"),
    ],
)
def test_bad_rules_name_the_field(bad: dict[str, object], where: str) -> None:
    from batchfed_lab.config import load_jobs

    job = {"id": "j", "tasks": [{"command": "true"}], "federation_constraints": {"replacement": bad}}
    with pytest.raises(ConfigError, match=rf"replacement\.[a-z_.]*{where}"):
        load_jobs({"job_specifications": [job]})


def test_explain_lines_state_every_kind() -> None:
    lines = DEFAULTS.summary()
    assert lines[0] == "pool_gone: move at once; at most 3 moves"
    assert "preempted: move after 3 in a row; at most 3 moves" in lines
    assert "stalled: off" in lines
