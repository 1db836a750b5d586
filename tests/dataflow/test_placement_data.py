"""The proxy maps input_data / output_data when it places a task group: URLs minted then, for
the chosen pool (a SAS, or the pool's managed identity), never stored; the job's data region
steers the choice. Without processes: a fake Batch account and a fake storage resolver."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from factories import make_pool

from batchfed_lab.batch.jobs import JobCreateResult
from batchfed_lab.batch.tasks import TaskAddReport, TaskAddResult, task_create_options
from batchfed_lab.config import load_jobs
from batchfed_lab.data.mapping import StorageAccess
from batchfed_lab.proxy.capacity import CapacityCache
from batchfed_lab.proxy.payload import add_payload
from batchfed_lab.proxy.processor import ActionProcessor, ProcessingOptions
from batchfed_lab.scheduler.catalog import lookup
from batchfed_lab.store import NewAction
from batchfed_lab.store.sqlite import SqliteStore

URL = "http://127.0.0.1:1/accounts/acct"
IDENTITY = "/subscriptions/s/resourceGroups/g/providers/Microsoft.ManagedIdentity/userAssignedIdentities/reader"


class Account:
    def __init__(self, pools: dict[str, Any]):
        self.pools = pools
        self.added: list[Any] = []

    def snapshot_pools(self, pool_ids: Any = None, *, active_tasks: bool = True, overrides: Any = None) -> dict[str, Any]:
        return self.pools

    def create_job(self, job_id: str, pool_id: str, settings: Any = None, **kw: Any) -> JobCreateResult:
        return JobCreateResult(job_id, True)

    def add_tasks(self, job_id: str, tasks: list[Any], **kw: Any) -> TaskAddReport:
        self.added += tasks
        return TaskAddReport(tuple(TaskAddResult(t.id, "added") for t in tasks), 1)


class Storage:
    def __init__(self, regions: dict[str, str | None]):
        self.region_of = regions
        self.calls: list[tuple[str | None, timedelta]] = []

    def regions(self, names: Any) -> dict[str, str | None]:
        return {n: self.region_of.get(n) for n in names}

    def access(self, identity: str | None, lifetime: timedelta) -> StorageAccess:
        self.calls.append((identity, lifetime))
        sas = "" if identity else "?sig=SECRET"
        return StorageAccess(lambda a, c, w: f"https://{a}.blob/{c}{sas}", identity=identity)


def pool(pool_id: str, location: str, idle: int, identity: str | None = None) -> Any:
    snap = make_pool(pool_id, idle=idle, account="acct", location=location, size=lookup("standard_d2_v3"))
    return replace(snap, facts=replace(snap.facts, service_url=URL, identity=identity))


JOB = {
    "id": "stage2",
    "tasks": [
        {
            "id": "t",
            "command": "cat x.txt > y.txt",
            "max_wall_time": "PT1H",
            "input_data": {"azure_storage": [{"storage_account_settings": "eu", "remote_path": "inputs", "include": ["x.txt"]}]},
            "output_data": {
                "azure_storage": [{"storage_account_settings": "eu", "remote_path": "outputs/{task_id}", "include": ["y.txt"]}]
            },
        }
    ],
}


@pytest.fixture
def store(tmp_path: Path) -> Any:
    s = SqliteStore(tmp_path / "store.sqlite")
    s.create_federation("f", unique_job_ids=False)
    s.add_pools(
        "f",
        [
            {"batch_service_url": URL, "pool_id": "east", "account": "acct", "location": "eastus"},
            {"batch_service_url": URL, "pool_id": "west", "account": "acct", "location": "westeurope"},
        ],
    )
    yield s
    s.close()


def run(store: SqliteStore, account: Account, storage: Storage | None, job: dict[str, Any] = JOB) -> tuple[str, Any]:
    proc = ActionProcessor(
        store,
        CapacityCache(lambda u: account, ttl=0),
        lambda u: account,
        ProcessingOptions(blackout_interval=0, evaluate_autoscale=False),
        storage=storage,
    )
    (spec,) = load_jobs({"job_specifications": [job]}).job_specifications
    (action,) = store.enqueue("f", [NewAction("job", "add", spec.id, add_payload(spec))])
    outcome = proc.process(store.claim("f", "w"))
    return outcome, store.get_action("f", action.id)


def test_tasks_reach_batch_with_resource_and_output_files_minted_at_placement(store: Any) -> None:
    account = Account({"east": pool("east", "eastus", 8), "west": pool("west", "westeurope", 2)})
    storage = Storage({"eu": "westeurope"})
    outcome, action = run(store, account, storage)
    assert outcome == "placed"
    assert action.progress["placed_pool"].endswith("#west")  # the inputs' region beat more idle nodes
    (task,) = account.added
    options = dict(task_create_options(task))
    assert options["resourceFiles"] == [{"httpUrl": "https://eu.blob/inputs/x.txt?sig=SECRET", "filePath": "x.txt"}]
    assert options["outputFiles"][0]["destination"]["container"] == {
        "containerUrl": "https://eu.blob/outputs?sig=SECRET",
        "path": "t/y.txt",
    }
    assert storage.calls == [(None, timedelta(hours=1) + timedelta(days=1))]  # wall time + a day queued


def test_no_sas_is_ever_written_to_the_store(store: Any) -> None:
    account = Account({"west": pool("west", "westeurope", 2)})
    _, action = run(store, account, Storage({"eu": "westeurope"}))
    for a in store.list_actions("f"):
        assert "SECRET" not in json.dumps(a.payload) and "SECRET" not in json.dumps(a.progress, default=str)
    assert action.state.value == "placed"


def test_a_pool_with_a_managed_identity_gets_identity_references_and_no_sas(store: Any) -> None:
    account = Account({"west": pool("west", "westeurope", 2, identity=IDENTITY)})
    storage = Storage({"eu": "westeurope"})
    run(store, account, storage)
    (task,) = account.added
    assert task.resource_files[0]["identityReference"] == {"resourceId": IDENTITY}
    assert "sig=" not in json.dumps(task.resource_files) + json.dumps(task.output_files)
    assert storage.calls[0][0] == IDENTITY


def test_a_proxy_without_storage_fails_the_action_with_a_clear_reason(store: Any) -> None:
    account = Account({"west": pool("west", "westeurope", 2)})
    outcome, action = run(store, account, None)
    assert outcome == "failed"
    assert "has input_data / output_data but this proxy has no storage accounts" in action.error
    assert account.added == []


def test_location_data_blocks_when_no_pool_is_in_the_inputs_region(store: Any) -> None:
    account = Account({"east": pool("east", "eastus", 8)})
    job = {**JOB, "federation_constraints": {"pool": {"location": "data"}}}
    outcome, action = run(store, account, Storage({"eu": "westeurope"}), job)
    assert outcome == "blocked"
    assert "data" in action.reason and "westeurope" in action.reason
