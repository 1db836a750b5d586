"""The DataFrame builders on their own: fixed columns and dtypes (also when empty), UTC
timestamps, categorical states, derived columns computed right."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pandas as pd
import pytest
from factories import NOW, group, make_constraints, make_pool

from batchfed_lab import frames
from batchfed_lab.batch.tasks import TaskInfo
from batchfed_lab.results import Explanation, FederatedTask
from batchfed_lab.scheduler import decide
from batchfed_lab.store.records import Action, ActionKind, ActionMethod, ActionState

T0 = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
BUILDERS = {
    "pools": (lambda: frames.pools_frame("f", []), frames.POOL_COLUMNS),
    "placements": (lambda: frames.placements_frame([]), frames.PLACEMENT_COLUMNS),
    "blocked": (lambda: frames.blocked_frame([]), frames.BLOCKED_COLUMNS),
    "verdicts": (lambda: frames.verdicts_frame([]), frames.EXPLAIN_COLUMNS),
    "locations": (lambda: frames.locations_frame([]), frames.LOCATION_COLUMNS),
    "tasks": (lambda: frames.tasks_frame([]), frames.TASK_COLUMNS),
    "federations": (lambda: frames.federations_frame([]), frames.FEDERATION_COLUMNS),
    "proxies": (lambda: frames.proxies_frame([]), frames.PROXY_COLUMNS),
}


def _action(state: ActionState = ActionState.PLACED, **kw: object) -> Action:
    base = {
        "id": "0b5a0c7e-5b38-4a52-9d1e-6f0e3f7f6d11",
        "federation_id": "f",
        "kind": ActionKind.JOB,
        "method": ActionMethod.ADD,
        "target_id": "j1",
        "position": 0,
        "state": state,
        "enqueued_at": T0,
    }
    base.update(kw)
    return Action(**base)  # type: ignore[arg-type]


def _check_dtypes(df: pd.DataFrame, spec: dict[str, object]) -> None:
    assert list(df.columns) == list(spec)
    for col, dtype in spec.items():
        actual = df[col].dtype
        if dtype == "utc":
            assert str(actual) == "datetime64[us, UTC]", (col, actual)
        elif isinstance(dtype, list):
            assert isinstance(actual, pd.CategoricalDtype) and list(actual.categories) == dtype, (col, actual)
        else:
            assert str(actual) == dtype, (col, actual)


@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_empty_frames_keep_their_columns_and_dtypes(name: str) -> None:
    build, spec = BUILDERS[name]
    _check_dtypes(build(), spec)


def test_pools_frame_counts_slots_and_backlog() -> None:
    snaps = [
        make_pool(
            "a",
            idle=2,
            running=1,
            slots=4,
            active_tasks=6,
            account="lab1",
            location="eastus",
            blackout_until=NOW + 10,
            target_dedicated=4,
        ),
        make_pool("b", vm_size="mystery_size", idle=0, active_tasks=None),
    ]
    df = frames.pools_frame("fed", snaps)
    _check_dtypes(df, frames.POOL_COLUMNS)
    a, b = df.iloc[0], df.iloc[1]
    assert (a.slots_available, a.active_tasks, a.backlog_ratio) == (12, 6, 0.5)
    assert (a.dedicated_idle, a.dedicated_running, a.dedicated_target, a.cores, a.memory_gib) == (2, 1, 4, 2, 8.0)
    assert a.blackout_until == pd.Timestamp(NOW + 10, unit="s", tz="UTC")
    assert pd.isna(b.cores) and pd.isna(b.active_tasks) and pd.isna(b.backlog_ratio) and pd.isna(b.blackout_until)
    assert df["allocation_state"].tolist() == ["steady", "steady"]


def test_placements_frame_latency_and_reason() -> None:
    placed = _action(
        placed_at=T0 + timedelta(seconds=1.5), progress={"pool": {"pool_id": "p1", "account": "lab1", "location": "eastus"}}
    )
    blocked = _action(ActionState.BLOCKED, id="1b5a0c7e-5b38-4a52-9d1e-6f0e3f7f6d11", reason="no pool fits")
    df = frames.placements_frame([placed, blocked])
    assert df["latency_s"].tolist()[0] == 1.5 and pd.isna(df["latency_s"][1])
    assert df["pool_id"].tolist() == ["p1", None]
    assert df["reason"].tolist() == [None, "no pool fits"]
    assert df["enqueued"][0] == pd.Timestamp(T0)
    assert df["state"].value_counts()["zapped"] == 0  # every state is a category


def test_blocked_frame_has_a_row_per_pool_verdict() -> None:
    verdicts = [
        {
            "pool": "http://x/accounts/a#p1",
            "pool_id": "p1",
            "status": "excluded",
            "constraint": "location",
            "required": "mars",
            "actual": "eastus",
            "reason": "location: needs mars, pool is in eastus",
        }
    ]
    failed = _action(ActionState.FAILED, id="2b5a0c7e-5b38-4a52-9d1e-6f0e3f7f6d11", error="gave up")
    df = frames.blocked_frame([_action(ActionState.BLOCKED, reason="nope", verdicts=verdicts), failed])
    assert df[["pool_id", "constraint", "passed"]].values.tolist() == [["p1", "location", False], [None, None, False]]
    assert df["reason"].tolist() == ["nope", "gave up"]


def test_verdicts_frame_marks_the_chosen_pool() -> None:
    pools = [make_pool("near", location="eastus", idle=2), make_pool("far", location="japaneast", idle=4)]
    decision = decide(make_constraints(pool={"location": "eastus"}), group(1), pools, NOW)
    df = frames.verdicts_frame([Explanation("f", "j", "job", decision, tuple(pools))])
    by_pool = df.set_index("pool_id")
    assert by_pool.loc["near", "chosen"] and by_pool.loc["near", "status"] == "chosen"
    assert by_pool.loc["far", "constraint"] == "location" and not by_pool.loc["far", "passed"]
    assert (by_pool.loc["far", "required"], by_pool.loc["far", "actual"]) == ("eastus", "japaneast")


def test_tasks_frame_duration_and_nullable_exit_code() -> None:
    done = TaskInfo(
        "t1", "completed", exit_code=3, result="failure", node_id="n1", start_time=T0, end_time=T0 + timedelta(seconds=2)
    )
    waiting = TaskInfo("t2", "active")
    df = frames.tasks_frame([FederatedTask("j", "p", "lab1", "eastus", done), FederatedTask("j", "p", "lab1", "eastus", waiting)])
    _check_dtypes(df, frames.TASK_COLUMNS)
    assert df["exit_code"].tolist()[0] == 3 and pd.isna(df["exit_code"][1])
    assert df["duration_s"][0] == 2.0 and df["result"][0] == "failure" and pd.isna(df["result"][1])


def test_tasks_frame_shows_the_failure_category_beside_its_code() -> None:
    failed = TaskInfo(
        "t1", "completed", result="failure", failure_category="usererror", failure_code="BlobNotFound", failure_message="gone"
    )
    df = frames.tasks_frame([FederatedTask("j", "p", "lab1", "eastus", failed)])
    _check_dtypes(df, frames.TASK_COLUMNS)
    cols = list(df.columns)
    assert cols.index("failure_category") + 1 == cols.index("failure_code")
    assert (df["failure_category"][0], df["failure_code"][0]) == ("usererror", "BlobNotFound")


def test_frame_records_are_json_ready() -> None:
    recs = frames.frame_records(frames.placements_frame([_action(placed_at=T0)]))
    assert recs[0]["enqueued"] == "2026-01-02T03:04:05.000000Z" and recs[0]["latency_s"] == 0.0
    assert recs[0]["pool_id"] is None and recs[0]["state"] == "placed"


def test_proxies_frame_shows_placed_blocked_and_failed_beside_their_sum() -> None:
    status = [
        {
            "proxy_id": "p1",
            "pid": 7,
            "running": True,
            "role": "leader",
            "leader": True,
            "federations": ["a", "b"],
            "counters": {"placed": 5, "done": 1, "blocked": 2, "failed": 1, "task_add_failures": 9},
        }
    ]
    (row,) = frames.proxies_frame(status).to_dict("records")
    assert (row["placed"], row["blocked"], row["failed"], row["actions_processed"]) == (5, 2, 1, 9)
    assert row["federations"] == "a, b"
    _check_dtypes(frames.proxies_frame(status), frames.PROXY_COLUMNS)
