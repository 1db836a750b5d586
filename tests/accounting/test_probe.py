"""What the proxy asks Batch about a placed job: not finished while a task is active or
running; once finished, one task listing gives each task's run; a job gone is finished with
nothing to measure; a service that does not answer says not yet."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta, timezone

from batchfed_lab.accounting.usage import Finished, TaskRun
from batchfed_lab.batch.jobs import JobInfo
from batchfed_lab.batch.tasks import TaskCounts, TaskInfo
from batchfed_lab.errors import BatchError, BatchNotFoundError
from batchfed_lab.proxy.accounting import probe_in

START = datetime(2026, 12, 7, tzinfo=timezone.utc)


class Account:
    def __init__(self, state: str = "active", counts: TaskCounts | None = None, error: BatchError | None = None):
        self.state, self.counts, self.error = state, counts or TaskCounts(), error
        self.calls: Counter[str] = Counter()

    def get_job(self, job_id: str) -> JobInfo:
        self.calls["get_job"] += 1
        if self.error is not None:
            raise self.error
        return JobInfo(job_id, self.state, "p1")

    def job_task_counts(self, job_id: str) -> TaskCounts:
        self.calls["job_task_counts"] += 1
        return self.counts

    def list_tasks(self, job_id: str) -> list[TaskInfo]:
        self.calls["list_tasks"] += 1
        return [TaskInfo("t1", "completed", start_time=START, end_time=START + timedelta(seconds=90))]


def _probe(account: Account) -> Finished | None:
    return probe_in(lambda url: account)("https://b", "j")


def test_a_job_with_a_task_active_or_running_has_not_finished_and_no_task_is_listed():
    running = Account(counts=TaskCounts(running=1, completed=3))
    assert _probe(running) is None and running.calls["list_tasks"] == 0


def test_a_finished_job_is_measured_from_one_task_listing():
    done = Account(counts=TaskCounts(completed=1, succeeded=1))
    start = START.timestamp()
    assert _probe(done) == Finished((TaskRun(start, start + 90),))
    assert done.calls == Counter(get_job=1, job_task_counts=1, list_tasks=1)
    completed = Account(state="completed")
    assert _probe(completed) is not None and completed.calls["job_task_counts"] == 0


def test_a_job_gone_has_finished_with_nothing_to_measure_and_a_silent_service_says_not_yet():
    assert _probe(Account(error=BatchNotFoundError("JobNotFound", status=404))) == Finished(None)
    assert _probe(Account(error=BatchError("unreachable"))) is None
