"""A submission to its end: ``wait(until="completed")``, ``result()`` (per-task frame with the
failure reason), ``logs(follow=True)`` (stdout/stderr as they grow) and ``cancel()`` — over a
scripted client, without processes."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from batchfed_lab.batch import TaskInfo
from batchfed_lab.errors import SubmissionError
from batchfed_lab.results import FederatedTask, OutputBlob, RemovalResult, Submission
from batchfed_lab.store.records import Action, ActionKind, ActionMethod, ActionState

T0 = datetime(2030, 1, 1, tzinfo=timezone.utc)


def placed(job: str = "j") -> Action:
    return Action("u-" + job, "f", ActionKind.JOB, ActionMethod.ADD, job, 0, ActionState.PLACED, T0)


def task(tid: str, state: str = "completed", exit_code: int | None = 0, **kw: Any) -> FederatedTask:
    info = TaskInfo(
        id=tid,
        state=state,
        exit_code=exit_code if state == "completed" else None,
        result=kw.pop("result", ("success" if exit_code == 0 else "failure") if state == "completed" else None),
        node_id="n1",
        start_time=T0,
        end_time=T0 + timedelta(seconds=2) if state == "completed" else None,
        **kw,
    )
    return FederatedTask("j", "p1", "local", "westeurope", info)


class Store:
    def __init__(self, actions: list[Action]):
        self.actions = {a.id: a for a in actions}

    def get_action(self, federation_id: str, action_id: str) -> Action:
        return self.actions[action_id]

    def change_marks(self) -> Any:
        return None

    def wait_for_change(self, marks: Any, timeout: float) -> None:
        return None


class Owner:
    """Each ``tasks()`` read gives the next listing of the script (the last one repeats)."""

    def __init__(self, listings: list[list[FederatedTask]], actions: list[Action] | None = None):
        self.store = Store(actions or [placed()])
        self.listings = listings
        self.reads = 0
        self.files: dict[tuple[str, str], list[str]] = {}
        self.zapped: list[str] = []
        self.terminated: list[str] = []
        self.ranges: list[tuple[str, str, int]] = []

    def tasks(self, federation_id: str, job_id: str | None = None, *, schedule_id: str | None = None) -> list[FederatedTask]:
        listing = self.listings[min(self.reads, len(self.listings) - 1)]
        self.reads += 1
        return listing

    def task_output(self, federation_id: str, job_id: str | None, task_id: str, stream: str = "stdout", **kw: Any) -> str:
        versions = self.files.get((task_id, stream), [""])
        return versions.pop(0) if len(versions) > 1 else versions[0]

    def task_output_bytes(
        self, federation_id: str, job_id: str, task_id: str, stream: str, offset: int, *, max_bytes: int
    ) -> bytes:
        self.ranges.append((task_id, stream, offset))
        return self.task_output(federation_id, job_id, task_id, stream).encode()[offset : offset + max_bytes]

    def job_outputs(self, federation_id: str, job_id: str, tasks: Any = None) -> list[OutputBlob]:
        return [OutputBlob("j", "a", "local", "outputs", "a/y.txt", 12, T0)]

    def output_notes(self, federation_id: str, job_id: str, tasks: Any) -> dict[str, str]:
        return {"b": "y.txt: matched no file: nothing uploaded"}

    def cancel(self, federation_id: str, job_ids: Any) -> RemovalResult:
        self.terminated += list(job_ids)
        return RemovalResult()


def sub(owner: Owner) -> Submission:
    return Submission(owner, "f", list(owner.store.actions.values()))  # type: ignore[arg-type]


def test_wait_until_completed_returns_once_every_task_has_completed() -> None:
    owner = Owner([[task("a", "running")], [task("a", "running"), task("b", "active")], [task("a"), task("b")]])
    done = sub(owner).wait(timeout=30, until="completed", poll=0.001)
    assert [a.state for a in done] == [ActionState.PLACED]
    assert owner.reads == 3


def test_wait_until_completed_raises_with_each_failed_tasks_reason() -> None:
    bad = task("b", exit_code=None, result="failure", failure_code="BlobNotFound", failure_message="inputs/x.txt: not found")
    owner = Owner([[task("a"), bad, task("c", exit_code=3)]])
    with pytest.raises(SubmissionError) as info:
        sub(owner).wait(timeout=30, until="completed", poll=0.001)
    text = str(info.value)
    assert text.startswith("2 of 3 task(s) failed: ")
    assert "j/b (BlobNotFound: inputs/x.txt: not found)" in text and "j/c (exit code 3)" in text
    assert "\n" not in text


def test_wait_until_completed_times_out_naming_what_still_runs() -> None:
    owner = Owner([[task("a"), task("b", "running")]])
    with pytest.raises(SubmissionError, match=r"1 of 2 task\(s\) not completed after 0.05s; j/b is running"):
        sub(owner).wait(timeout=0.05, until="completed", poll=0.001)


def test_wait_refuses_an_unknown_until() -> None:
    with pytest.raises(ValueError, match="until must be 'placed' or 'completed'"):
        sub(Owner([[]])).wait(until="finished")


def test_result_is_one_row_per_task_with_state_exit_code_node_times_failure_and_outputs() -> None:
    bad = task("b", exit_code=None, result="failure", failure_code="BlobNotFound", failure_message="gone")
    df = sub(Owner([[task("a"), bad]])).result()
    assert list(df["task_id"]) == ["a", "b"]
    assert {"state", "exit_code", "node_id", "start_time", "end_time", "duration_s", "failure", "outputs", "output_note"} <= set(
        df.columns
    )
    assert df.loc[0, "failure"] is None and df.loc[1, "failure"] == "BlobNotFound: gone"
    assert df.loc[0, "outputs"] == ["outputs/a/y.txt"] and df.loc[1, "outputs"] == []
    assert df.loc[0, "output_note"] is None and df.loc[1, "output_note"] == "y.txt: matched no file: nothing uploaded"
    assert str(df["start_time"].dtype) == "datetime64[us, UTC]"


def test_logs_follow_streams_new_lines_of_each_task_until_all_completed() -> None:
    owner = Owner([[task("a", "running")], [task("a", "running")], [task("a")]])
    owner.files[("a", "stdout")] = ["one\n", "one\ntwo\npart", "one\ntwo\npartial end\n"]
    owner.files[("a", "stderr")] = ["", "", "warn\n"]
    pieces = list(sub(owner).logs(follow=True, poll=0.001))
    text = "".join(pieces)
    assert text.splitlines() == ["[j/a] one", "[j/a] two", "[j/a] partial end", "[j/a stderr] warn"]


def test_logs_follow_reads_each_file_from_where_the_last_look_stopped() -> None:
    owner = Owner([[task("a", "running")], [task("a", "running")], [task("a", "running")], [task("a")]])
    owner.files[("a", "stdout")] = ["één\n", "één\ntw", "één\ntwee\n", "één\ntwee\n"]
    text = "".join(sub(owner).logs(follow=True, poll=0.001, streams=("stdout",)))
    assert text.splitlines() == ["[j/a] één", "[j/a] twee"]
    assert [offset for _, _, offset in owner.ranges] == [0, 6, 8, 11]  # bytes: a line split between looks is joined


def test_a_completed_task_with_more_than_one_look_of_log_is_read_to_its_end() -> None:
    from batchfed_lab.outcomes import TaskLogs

    owner = Owner([[task("a")]])
    owner.files[("a", "stdout")] = ["l1\nl2\nl3\n"]
    logs = TaskLogs(owner, "f", ["j"], poll=0.001, streams=("stdout",), max_bytes=4)
    assert "".join(logs).splitlines() == ["[j/a] l1", "[j/a] l2", "[j/a] l3"]


def test_logs_without_follow_is_every_tasks_output_once() -> None:
    owner = Owner([[task("a"), task("b")]])
    owner.files[("a", "stdout")] = ["hello\n"]
    owner.files[("b", "stderr")] = ["oops\n"]
    text = str(sub(owner).logs())
    assert "[j/a] hello" in text and "[j/b stderr] oops" in text


def test_cancel_terminates_the_submitted_jobs() -> None:
    owner = Owner([[]], actions=[placed("j"), replace(placed("k"), id="u-k")])
    sub(owner).cancel()
    assert owner.terminated == ["j", "k"]


def test_logs_view_grows_in_the_background_and_stops_when_every_task_completed() -> None:
    from batchfed_lab.widgets import LogsView

    owner = Owner([[task("a", "running")], [task("a")]])
    owner.files[("a", "stdout")] = ["one\n", "one\ntwo\n"]
    view = LogsView(sub(owner), autostart=False)
    view.refresh()
    assert view.text == "[j/a] one\n" and not view._finished()
    view.refresh()
    assert view.text.splitlines() == ["[j/a] one", "[j/a] two"] and view._finished()
    assert "[j/a] two" in view._repr_mimebundle_()["text/plain"]
