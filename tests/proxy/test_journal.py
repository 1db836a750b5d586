"""The order of an add's journal against its Batch calls, pinned down without processes:
nothing is created on Batch before the chosen pool is journalled (a retry after a crash goes
back there), and merging into a job this proxy knows — where nothing is created — journals
the pool with the job record, after a listing that only reads."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from factories import make_pool

from batchfed_lab.batch.jobs import JobCreateResult, JobInfo, JobSettings
from batchfed_lab.batch.tasks import TaskAddReport, TaskAddResult
from batchfed_lab.config import load_jobs
from batchfed_lab.errors import BatchUnreachableError
from batchfed_lab.proxy.capacity import CapacityCache
from batchfed_lab.proxy.payload import add_payload
from batchfed_lab.proxy.processor import ActionProcessor, FollowOn, ProcessingOptions
from batchfed_lab.scheduler.catalog import lookup
from batchfed_lab.store import NewAction
from batchfed_lab.store.sqlite import SqliteStore

URL = "http://127.0.0.1:1/accounts/acct"


class Account:
    """A Batch account that writes each call into the shared event list."""

    def __init__(self, events: list[str]):
        self.events = events
        snap = make_pool("p1", idle=4, slots=4, account="acct", size=lookup("standard_d2_v3"))
        self.pool = replace(snap, facts=replace(snap.facts, service_url=URL))
        self.jobs: dict[str, set[str]] = {}
        self.listing_down = False

    def snapshot_pools(self, pool_ids: Any = None, *, active_tasks: bool = True, overrides: Any = None) -> dict[str, Any]:
        return {"p1": self.pool}

    def create_job(
        self, job_id: str, pool_id: str, settings: Any = None, *, windows: bool = False, likely_exists: bool = False
    ) -> JobCreateResult:
        self.events.append("create_job")
        if job_id in self.jobs:
            return JobCreateResult(job_id, False, JobInfo.created(job_id, pool_id, settings or JobSettings(), windows=windows))
        self.jobs[job_id] = set()
        return JobCreateResult(job_id, True)

    def task_ids(self, job_id: str) -> set[str]:
        self.events.append("list_tasks")
        if self.listing_down:
            raise BatchUnreachableError("service unreachable: connection refused")
        return set(self.jobs[job_id])

    def add_tasks(self, job_id: str, tasks: list[Any], **kw: Any) -> TaskAddReport:
        self.events.append("add_tasks")
        self.jobs[job_id].update(t.id for t in tasks)
        return TaskAddReport(tuple(TaskAddResult(t.id, "added") for t in tasks), 1)


class JournalledStore(SqliteStore):
    """The store, writing each progress step (which fields, with a location or not) into the
    same event list."""

    events: list[str]

    def record_progress(self, claim: Any, progress: Any, *, location: Any = None) -> Any:
        self.events.append("journal " + "+".join(sorted(progress)) + (" @location" if location is not None else ""))
        return super().record_progress(claim, progress, location=location)

    def mark_placed(self, claim: Any, **kw: Any) -> Any:
        self.events.append("placed")
        return super().mark_placed(claim, **kw)

    def mark_placed_and_claim(self, claim: Any, **kw: Any) -> Any:
        self.events.append("placed+claimed")
        return super().mark_placed_and_claim(claim, **kw)


@pytest.fixture
def rig(tmp_path: Path) -> Any:
    events: list[str] = []
    store = JournalledStore(tmp_path / "store.sqlite")
    store.events = events
    account = Account(events)
    store.create_federation("f", unique_job_ids=False)
    store.add_pools("f", [{"batch_service_url": URL, "pool_id": "p1", "account": "acct", "location": "westeurope"}])

    def processor() -> ActionProcessor:  # a new one is a restarted proxy: it remembers no job
        return ActionProcessor(
            store,
            CapacityCache(lambda u: account, ttl=0),
            lambda u: account,
            ProcessingOptions(blackout_interval=0, evaluate_autoscale=False),
        )

    yield store, events, processor, account
    store.close()


def place(store: SqliteStore, processor: ActionProcessor, job: str, outcome: str = "placed") -> str:
    payload = add_payload(load_jobs({"job_specifications": [{"id": job, "tasks": [{"command": "true"}]}]}).job_specifications[0])
    (action,) = store.enqueue("f", [NewAction("job", "add", job, payload)])
    assert processor.process(store.claim("f", "w")) == outcome
    return action.id


JOB_RECORD = "journal collisions+generated_after+job_created+job_ready"


def test_the_pool_is_journalled_before_the_job_is_created(rig: Any) -> None:
    store, events, processor, _ = rig
    place(store, processor(), "j1")
    assert events == ["journal pool", "create_job", f"{JOB_RECORD} @location", "add_tasks", "placed"]


def test_merging_into_a_known_job_journals_the_pool_with_the_job_record(rig: Any) -> None:
    store, events, processor, _ = rig
    proxy = processor()
    place(store, proxy, "j1")
    events.clear()
    place(store, proxy, "j1")  # a second task group of the same job id: merged
    assert events == ["list_tasks", f"{JOB_RECORD}+pool @location", "add_tasks", "placed"]


def test_a_job_this_proxy_does_not_know_is_read_only_after_the_pool_is_journalled(rig: Any) -> None:
    store, events, processor, _ = rig
    place(store, processor(), "j1")
    events.clear()
    place(store, processor(), "j1")  # a restarted proxy: the job exists, but not in its memory
    assert events == ["journal pool", "create_job", "list_tasks", f"{JOB_RECORD} @location", "add_tasks", "placed"]


def test_a_listing_that_fails_still_journals_the_pool_so_the_retry_comes_back_to_it(rig: Any) -> None:
    store, events, processor, account = rig
    proxy = processor()
    place(store, proxy, "j1")
    account.listing_down = True
    events.clear()
    aid = place(store, proxy, "j1", outcome="blocked")  # the service stopped answering
    assert events == ["list_tasks", "journal pool"]
    assert store.get_action("f", aid).progress["pool"]["pool_id"] == "p1"


def test_a_placement_asked_to_follow_on_claims_the_next_action_in_its_own_write(rig: Any) -> None:
    store, events, processor, _ = rig
    jobs = load_jobs({"job_specifications": [{"id": j, "tasks": [{"command": "true"}]} for j in ("j1", "j2")]})
    store.enqueue("f", [NewAction("job", "add", s.id, add_payload(s)) for s in jobs.job_specifications])
    follow = FollowOn("w", 30.0)
    assert processor().process(store.claim("f", "w"), follow=follow) == "placed"
    assert events[-1] == "placed+claimed" and "placed" not in events
    assert follow.asked and follow.claim is not None and follow.claim.action.target_id == "j2"
    assert processor().process(follow.claim) == "placed"  # the claim so taken is a working one
