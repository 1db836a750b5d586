"""``fed cost`` reads Batch in bulk: one job listing per account (which also finds the jobs a
placed job schedule's recurrences created), one task listing per job, and a completed job's
tasks once per client — not one call per placed job each time it is asked."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta, timezone

from batchfed_lab.batch.jobs import JobInfo
from batchfed_lab.batch.tasks import TaskInfo

URL = "https://lab.westeurope.batch.azure.com"
START = datetime(2026, 12, 7, tzinfo=timezone.utc)


class Account:
    def __init__(self, jobs: dict[str, str]) -> None:
        self.jobs = jobs  # job id → state
        self.calls: Counter[str] = Counter()

    def list_jobs(self, *, state: str | None = None) -> list[JobInfo]:
        self.calls["list_jobs"] += 1
        return [JobInfo(j, s, "p1") for j, s in self.jobs.items()]

    def list_tasks(self, job_id: str, *, state: str | None = None) -> list[TaskInfo]:
        self.calls[f"list_tasks {job_id}"] += 1
        return [TaskInfo("t1", "completed", start_time=START, end_time=START + timedelta(minutes=30))]


def test_cost_lists_jobs_once_per_account_includes_recurrence_jobs_and_reads_finished_jobs_once(client, monkeypatch):
    store = client.store
    store.create_federation("lab")
    for i in range(5):
        store.record_location("lab", f"j{i}", kind="job", batch_service_url=URL, pool_id="p1")
    store.record_location("lab", "nightly", kind="job_schedule", batch_service_url=URL, pool_id="p1")
    jobs = {f"j{i}": "completed" for i in range(4)} | {"j4": "active", "nightly:job-1": "completed", "other": "active"}
    account = Account(jobs)
    monkeypatch.setattr(client, "account", lambda url: account)
    monkeypatch.setattr(client, "pool_snapshots", lambda fid, active_tasks=False: [])

    rows = client.cost_rows("lab")
    assert sorted(r["job_id"] for r in rows) == ["j0", "j1", "j2", "j3", "j4", "nightly:job-1"]
    assert all(r["run_s"] == 1800 for r in rows)
    assert account.calls["list_jobs"] == 1 and sum(account.calls.values()) == 1 + 6  # no task listing of "other"

    client.cost_rows("lab")  # again: the completed jobs' tasks are not read again
    assert account.calls["list_jobs"] == 2 and account.calls["list_tasks j4"] == 2
    assert account.calls["list_tasks j0"] == 1 and account.calls["list_tasks nightly:job-1"] == 1
