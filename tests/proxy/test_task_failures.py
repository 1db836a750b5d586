"""Tasks a placement could not add are reported where the user looks (issue 20, point 11).

A task group merged into an existing job whose user-written task id is already there adds
that task nowhere (``TaskIdInUse``). The action records it, and it shows in the placements
frame (``Submission.status()``), in ``jobs list --blocked`` and in the error of ``wait``
(``--wait``) — not only in the proxy log.

Everything is real: a detached proxy process, localbatch, SQLite.
"""

from __future__ import annotations

import pytest

from batchfed_lab.errors import SubmissionError
from batchfed_lab.store import ActionState

BODY = "job_specifications:\n- id: clash\n  tasks:\n{tasks}"
IN_USE = "TaskIdInUse: an earlier task group of this job already has this task id"


def tasks(*ids: str) -> str:
    return "".join(f"  - {{id: {t}, command: echo {t}}}\n" for t in ids)


def test_a_merge_reports_the_task_ids_already_in_the_job(stack):
    stack.federation("clashing", ["we-native"], unique_job_ids=False)
    stack.start_proxy()
    c = stack.client
    c.submit("clashing", BODY.format(tasks=tasks("a"))).wait(timeout=30)

    second = c.submit("clashing", BODY.format(tasks=tasks("a", "b")))
    with pytest.raises(SubmissionError) as info:
        second.wait(timeout=30)
    uid = second.unique_ids[0]
    assert str(info.value) == f"job clash ({uid}) placed, but 1 of 2 task(s) not added: a ({IN_USE})"
    assert stack.account("lab1").task_ids("clash") == {"a", "b"}

    (action,) = second.actions()
    assert action.state is ActionState.PLACED
    assert action.progress["task_failure_count"] == 1 and action.progress["tasks_added"] == 1
    (row,) = second.status().to_dict("records")
    assert row["state"] == "placed" and row["reason"] == f"1 of 2 task(s) not added: a ({IN_USE})"

    listed = c.jobs_frame("clashing", "clash", blocked=True)
    assert listed["unique_id"].tolist() == [uid]
    assert listed["state"].tolist() == ["placed"] and listed["reason"].tolist() == [row["reason"]]


def test_a_merge_that_adds_no_task_fails_with_the_reason(stack):
    stack.federation("clashing-all", ["we-native"], unique_job_ids=False)
    stack.start_proxy()
    c = stack.client
    c.submit("clashing-all", BODY.format(tasks=tasks("x"))).wait(timeout=30)
    again = c.submit("clashing-all", BODY.format(tasks=tasks("x")))
    with pytest.raises(SubmissionError, match=r"failed: no task of the group could be added \(1 failed; first: x: TaskIdInUse"):
        again.wait(timeout=30)
    listed = c.jobs_frame("clashing-all", "clash", blocked=True)
    assert listed["state"].tolist() == ["failed"]
