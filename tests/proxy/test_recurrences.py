"""Each recurrence's task group comes from the proxy, once per job, whatever happened before:
the job's ``onAllTasksComplete`` on Batch is the record, not the proxy's memory. Without
processes: a fake account and a real SQLite store (the end-to-end run on localbatch, across
a kill -9, is in test_resilience.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from batchfed_lab.batch.jobs import JobInfo
from batchfed_lab.batch.tasks import TaskAddReport, TaskAddResult
from batchfed_lab.config import load_jobs
from batchfed_lab.errors import BatchUnreachableError
from batchfed_lab.proxy.payload import add_payload
from batchfed_lab.proxy.recurrences import RecurrenceTasks
from batchfed_lab.store import NewAction
from batchfed_lab.store.records import LocationUpdate
from batchfed_lab.store.sqlite import SqliteStore

URL = "http://127.0.0.1:1/accounts/lab"


class Account:
    """Jobs of schedules as Batch keeps them: state, onAllTasksComplete and task ids."""

    def __init__(self) -> None:
        self.jobs: dict[str, dict[str, Any]] = {}
        self.down = False
        self.refuse: set[str] = set()  # task ids answered with a client error

    def recur(self, job_id: str, state: str = "active", mode: str = "noaction", tasks: set[str] | None = None) -> None:
        self.jobs[job_id] = {"state": state, "mode": mode, "tasks": set(tasks or ())}

    def list_jobs_from_schedule(self, schedule_id: str, *, state: str | None = None) -> list[JobInfo]:
        if self.down:
            raise BatchUnreachableError("service unreachable: connection refused")
        return [
            JobInfo(jid, j["state"], "pool", on_all_tasks_complete=j["mode"])
            for jid, j in self.jobs.items()
            if jid.startswith(f"{schedule_id}:job-") and (state is None or j["state"] == state)
        ]

    def add_tasks(self, job_id: str, tasks: list[Any], *, windows: bool = False) -> TaskAddReport:
        results = []
        for t in tasks:
            if t.id in self.refuse:
                results.append(TaskAddResult(t.id, "failed", "InvalidPropertyValue"))
            elif t.id in self.jobs[job_id]["tasks"]:
                results.append(TaskAddResult(t.id, "exists", "TaskExists"))
            else:
                self.jobs[job_id]["tasks"].add(t.id)
                results.append(TaskAddResult(t.id, "added"))
        return TaskAddReport(tuple(results), 1)

    def set_auto_complete(self, job_id: str) -> None:
        self.jobs[job_id]["mode"] = "terminatejob"


@pytest.fixture
def rig(tmp_path: Path) -> Any:
    store = SqliteStore(tmp_path / "store.sqlite")
    store.create_federation("f")
    store.add_pools("f", [{"batch_service_url": URL, "pool_id": "pool", "account": "lab"}])
    spec = {"id": "tick", "recurrence": {"schedule": {"recurrence_interval": 60}}, "tasks": [{"id": "a", "command": "true"}]}
    spec["tasks"].append({"id": "b", "command": "true"})
    payload = add_payload(load_jobs({"job_specifications": [spec]}).job_specifications[0])
    store.enqueue("f", [NewAction("job_schedule", "add", "tick", payload)])
    claim = store.claim("f", "proxy")
    assert claim is not None
    claim = store.record_progress(claim, {"pool": {"key": "k", "service_url": URL, "pool_id": "pool", "windows": False}})
    store.mark_placed(claim, location=LocationUpdate(URL, "pool", unique_id=claim.action_id))
    account = Account()
    yield store, account, RecurrenceTasks(store, lambda url: account)
    store.close()


def test_each_new_recurrence_job_gets_the_group_and_is_then_left_to_end(rig: Any) -> None:
    _store, account, recurrences = rig
    account.recur("tick:job-1", state="completed", mode="terminatejob", tasks={"a", "b"})
    account.recur("tick:job-2")
    assert recurrences.step(["f"]) == 1
    assert account.jobs["tick:job-2"] == {"state": "active", "mode": "terminatejob", "tasks": {"a", "b"}}
    assert recurrences.step(["f"]) == 0  # served: nothing more to do, however often it looks


def test_a_job_half_served_before_a_crash_is_finished_without_duplicates(rig: Any) -> None:
    store, account, _ = rig
    account.recur("tick:job-3", tasks={"a"})  # the last leader died between its two calls
    fresh = RecurrenceTasks(store, lambda url: account)  # a new process: nothing in memory
    assert fresh.step(["f"]) == 1
    assert account.jobs["tick:job-3"] == {"state": "active", "mode": "terminatejob", "tasks": {"a", "b"}}


def test_refused_tasks_are_counted_and_the_job_still_closes(rig: Any) -> None:
    _store, account, recurrences = rig
    account.refuse = {"b"}
    account.recur("tick:job-1")
    assert recurrences.step(["f"]) == 1
    assert account.jobs["tick:job-1"]["mode"] == "terminatejob"  # else it would hold back every later recurrence
    assert recurrences.counters.as_dict()["task_add_failures"] == 1


def test_an_unreachable_service_waits_for_the_next_look_and_terminated_schedules_are_left(rig: Any) -> None:
    store, account, recurrences = rig
    account.recur("tick:job-1")
    account.down = True
    assert recurrences.step(["f"]) == 0
    account.down = False
    store.mark_terminated("f", "tick", kind="job_schedule", batch_service_url=URL, pool_id="pool")
    assert recurrences.step(["f"]) == 0 and account.jobs["tick:job-1"]["tasks"] == set()


class Minted:
    """A storage resolver that mints a numbered URL per call: each recurrence gets fresh ones."""

    def __init__(self) -> None:
        self.calls: list[tuple[str | None, Any]] = []

    def regions(self, names: Any) -> dict[str, str | None]:
        return dict.fromkeys(names)

    def access(self, identity: str | None, lifetime: Any) -> Any:
        from batchfed_lab.data.mapping import StorageAccess

        self.calls.append((identity, lifetime))
        n = len(self.calls)
        return StorageAccess(lambda account, container, write: f"https://{account}.blob/{container}?sig=mint{n}")


def test_a_schedules_data_is_mapped_for_each_recurrence_job_with_fresh_urls(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "store.sqlite")
    store.create_federation("f")
    store.add_pools("f", [{"batch_service_url": URL, "pool_id": "pool", "account": "lab"}])
    spec = {
        "id": "tick",
        "recurrence": {"schedule": {"recurrence_interval": 60}},
        "input_data": {
            "azure_storage": [{"storage_account_settings": "research", "remote_path": "inputs", "include": ["x.txt"]}]
        },
        "tasks": [
            {
                "id": "a",
                "command": "true",
                "output_data": {
                    "azure_storage": [
                        {"storage_account_settings": "research", "remote_path": "out/{job_id}/{task_id}", "include": ["r.txt"]}
                    ]
                },
            }
        ],
    }
    payload = add_payload(load_jobs({"job_specifications": [spec]}).job_specifications[0])
    store.enqueue("f", [NewAction("job_schedule", "add", "tick", payload)])
    claim = store.claim("f", "proxy")
    assert claim is not None
    claim = store.record_progress(claim, {"pool": {"key": "k", "service_url": URL, "pool_id": "pool", "windows": False}})
    store.mark_placed(claim, location=LocationUpdate(URL, "pool", unique_id=claim.action_id))
    added: dict[str, list[Any]] = {}
    account = Account()
    real_add = account.add_tasks

    def add_tasks(job_id: str, tasks: list[Any], *, windows: bool = False) -> TaskAddReport:
        added[job_id] = list(tasks)
        return real_add(job_id, tasks, windows=windows)

    account.add_tasks = add_tasks  # type: ignore[method-assign]
    minted = Minted()
    recurrences = RecurrenceTasks(store, lambda url: account, storage=minted)
    for n in (1, 2):
        account.recur(f"tick:job-{n}")
        assert recurrences.step(["f"]) == 1
    assert len(minted.calls) == 2  # one minting per recurrence job: a SAS never outlives its job's need
    for n in (1, 2):
        (task,) = added[f"tick:job-{n}"]
        (rf,) = task.resource_files
        assert rf["httpUrl"] == f"https://research.blob/inputs/x.txt?sig=mint{n}"
        (of,) = task.output_files
        assert of["destination"]["container"]["path"] == f"tick:job-{n}/a/r.txt"
        assert of["destination"]["container"]["containerUrl"].endswith(f"sig=mint{n}")
    store.close()
