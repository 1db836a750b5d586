"""``Submission.wait`` (``--wait`` of the CLI and ``%fed``) on its own, over a scripted store:
it answers as soon as the answer is known (issue 20, points 10 and 11).

* A job that no pool of the federation can take (every pool excluded by a constraint or a
  federation rule) is reported at once with its reason, not after the whole timeout.
* A job blocked only by load (a blackout, no idle node) is waited for: it clears by itself.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime, timezone
from typing import Any

import pytest

from batchfed_lab.errors import SubmissionError
from batchfed_lab.results import Submission
from batchfed_lab.store.records import Action, ActionKind, ActionMethod, ActionState

T0 = datetime(2030, 1, 1, tzinfo=timezone.utc)
EXCLUDED = {"pool": "u#a", "pool_id": "a", "status": "excluded", "constraint": "memory", "reason": "memory: needs ≥ 10000g"}
SKIPPED = {"pool": "u#b", "pool_id": "b", "status": "skipped", "constraint": "blackout", "reason": "blackout"}
NO_POOL = "no pool satisfies the constraints (1 of 1 excluded): memory: needs ≥ 10000g, has 16g"


def action(state: ActionState = ActionState.QUEUED, **kw: Any) -> Action:
    return Action("u1", "f", ActionKind.JOB, ActionMethod.ADD, "big", 0, state, T0, **kw)


class ScriptedStore:
    """Each read of the action gives the next state of the script (the last one repeats)."""

    def __init__(self, states: list[Action]):
        self._states: Iterator[Action] = iter(states)
        self._last = states[0]
        self.reads = 0

    def get_action(self, federation_id: str, action_id: str) -> Action:
        self.reads += 1
        self._last = next(self._states, self._last)
        return self._last

    def change_marks(self) -> Any:
        return None

    def wait_for_change(self, marks: Any, timeout: float) -> None:
        return None  # every read is a change here


class Owner:
    def __init__(self, store: ScriptedStore):
        self.store = store

    def tasks(self, *a: Any, **kw: Any) -> list[Any]:
        return []


def submission(*states: Action) -> Submission:
    return Submission(Owner(ScriptedStore(list(states))), "f", [states[0]])  # type: ignore[arg-type]


def test_wait_answers_at_once_when_no_pool_can_take_the_job() -> None:
    sub = submission(action(), action(ActionState.BLOCKED, reason=NO_POOL, verdicts=[EXCLUDED]))
    started = time.monotonic()
    with pytest.raises(SubmissionError) as info:
        sub.wait(timeout=30)
    assert time.monotonic() - started < 5
    assert str(info.value) == f"job big (u1) is blocked: {NO_POOL}"


def test_wait_waits_out_a_block_by_load_that_clears() -> None:
    load = action(ActionState.BLOCKED, reason="no eligible pool can take work now", verdicts=[EXCLUDED, SKIPPED])
    placed = action(ActionState.PLACED)
    sub = submission(action(), *[load] * 5, placed)
    assert [a.state for a in sub.wait(timeout=30)] == [ActionState.PLACED]


def test_wait_waits_out_a_pool_where_the_job_could_not_be_created_in_this_attempt() -> None:
    gone = {**EXCLUDED, "constraint": "job_create", "reason": "job_create: job creation failed on this pool in this attempt"}
    retried = action(ActionState.BLOCKED, reason="no pool satisfies the constraints (1 of 1 excluded)", verdicts=[gone])
    sub = submission(action(), retried, retried, action(ActionState.PLACED))
    assert [a.state for a in sub.wait(timeout=30)] == [ActionState.PLACED]


def test_wait_waits_out_an_unreachable_service() -> None:
    away = action(ActionState.BLOCKED, reason="Batch service unreachable: refused", verdicts=None)
    sub = submission(action(), away, away, replace(away, state=ActionState.PLACED))
    assert [a.state for a in sub.wait(timeout=30)] == [ActionState.PLACED]


def test_wait_still_times_out_on_a_block_by_load_with_its_reason() -> None:
    load = action(ActionState.BLOCKED, reason="no eligible pool can take work now (0 excluded)", verdicts=[SKIPPED])
    sub = submission(action(), load)
    with pytest.raises(SubmissionError, match=r"1 of 1 action\(s\) not placed after 0.2s; job big is blocked: no eligible"):
        sub.wait(timeout=0.2)


def test_wait_reports_the_tasks_a_placement_left_out() -> None:
    failures = [{"task_id": f"t{i}", "code": "TaskIdInUse", "message": "already\nthere"} for i in range(4)]
    progress = {"tasks_added": 1, "task_failures": failures, "task_failure_count": 5}
    sub = submission(action(), action(ActionState.PLACED, progress=progress))
    with pytest.raises(SubmissionError) as info:
        sub.wait(timeout=30)
    named = ", ".join(f"t{i} (TaskIdInUse: already there)" for i in range(3))
    assert str(info.value) == f"job big (u1) placed, but 5 of 6 task(s) not added: {named}, +2 more"
