"""What the drills found about outages, pinned down without processes: a Batch service that
does not answer blocks actions (visible, retried, not failed) and leaves the other accounts
usable; a store that does not answer neither kills the proxy nor counts against actions; a
new leader frees the claims of the leader it replaced."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from factories import make_pool

from batchfed_lab.batch.jobs import JobCreateResult
from batchfed_lab.batch.tasks import TaskAddReport, TaskAddResult
from batchfed_lab.config import load_jobs
from batchfed_lab.errors import BatchUnreachableError, StoreUnavailableError
from batchfed_lab.proxy.capacity import CapacityCache
from batchfed_lab.proxy.daemon import LEASE_NAME, LoopOptions, ProxyDaemon
from batchfed_lab.proxy.payload import add_payload
from batchfed_lab.proxy.processor import ActionProcessor, ProcessingOptions
from batchfed_lab.scheduler.catalog import lookup
from batchfed_lab.store import ActionState, NewAction
from batchfed_lab.store.sqlite import SqliteStore

UP = "http://127.0.0.1:1/accounts/up"
DOWN = "http://127.0.0.1:1/accounts/down"


class Account:
    """An account whose service answers, or not: ``down`` (nothing answers) or ``jobs_down``
    (the pool listing answered, then the service went away before the job was created)."""

    def __init__(self, url: str, pool: str):
        from dataclasses import replace

        self.url, self.down, self.jobs_down = url, False, False
        snap = make_pool(pool, idle=2, slots=2, account=url.rsplit("/", 1)[1], size=lookup("standard_d2_v3"))
        self.pool = replace(snap, facts=replace(snap.facts, service_url=url))
        self.jobs: dict[str, set[str]] = {}

    def _check(self, jobs: bool = False) -> None:
        if self.down or (jobs and self.jobs_down):
            raise BatchUnreachableError("service unreachable: connection refused")

    def snapshot_pools(self, pool_ids: Any = None, *, active_tasks: bool = True, overrides: Any = None) -> dict[str, Any]:
        self._check()
        return {self.pool.pool_id: self.pool}

    def create_job(
        self, job_id: str, pool_id: str, settings: Any = None, *, windows: bool = False, likely_exists: bool = False
    ) -> JobCreateResult:
        self._check(jobs=True)
        self.jobs.setdefault(job_id, set())
        return JobCreateResult(job_id, True)

    def task_ids(self, job_id: str) -> set[str]:
        return set(self.jobs.get(job_id, set()))

    def add_tasks(self, job_id: str, tasks: list[Any], **kw: Any) -> TaskAddReport:
        self._check(jobs=True)
        self.jobs[job_id].update(t.id for t in tasks)
        return TaskAddReport(tuple(TaskAddResult(t.id, "added") for t in tasks), 1)

    def set_auto_complete(self, job_id: str) -> None:
        pass

    def reevaluate_autoscale(self, pool_id: str) -> bool:
        return False


@pytest.fixture
def rig(tmp_path: Path) -> Any:
    store = SqliteStore(tmp_path / "store.sqlite")
    accounts = {UP: Account(UP, "p-up"), DOWN: Account(DOWN, "p-down")}
    store.create_federation("f")
    store.add_pools(
        "f",
        [
            {"batch_service_url": url, "pool_id": a.pool.pool_id, "account": url.rsplit("/", 1)[1], "location": "westeurope"}
            for url, a in accounts.items()
        ],
    )
    processor = ActionProcessor(
        store,
        CapacityCache(lambda u: accounts[u], ttl=0),
        lambda u: accounts[u],
        ProcessingOptions(blackout_interval=0, evaluate_autoscale=False, max_attempts=2),
    )
    yield store, accounts, processor
    store.close()


def enqueue(store: SqliteStore, job: str, **constraints: Any) -> str:
    spec = {"id": job, "tasks": [{"command": "true"}]}
    if constraints:
        spec["federation_constraints"] = constraints
    payload = add_payload(load_jobs({"job_specifications": [spec]}).job_specifications[0])
    (a,) = store.enqueue("f", [NewAction("job", "add", job, payload)])
    return a.id


def test_an_unreachable_account_leaves_the_others_usable(rig: Any) -> None:
    store, accounts, processor = rig
    accounts[DOWN].down = True
    aid = enqueue(store, "j1")
    claim = store.claim("f", "w")
    assert processor.process(claim) == "placed"
    assert store.get_action("f", aid).progress["placed_pool"].endswith("#p-up")
    snaps = {s.pool_id: s for s in processor.capacity.snapshots(store.list_pools("f"))}
    assert snaps["p-down"].state == "unreachable" and snaps["p-up"].state == "active"


def test_nothing_reachable_blocks_with_the_reason_in_the_verdicts(rig: Any) -> None:
    store, accounts, processor = rig
    for acct in accounts.values():
        acct.down = True
    aid = enqueue(store, "j2")
    assert processor.process(store.claim("f", "w")) == "blocked"
    a = store.get_action("f", aid)
    assert a.state is ActionState.BLOCKED and a.errors == 0
    assert {v["reason"] for v in a.verdicts} == {"pool is unreachable"}


def test_a_chosen_pool_whose_service_stops_answering_blocks_and_is_not_charged(rig: Any) -> None:
    store, accounts, processor = rig
    store_clock = [1_000.0]
    store._clock = lambda: store_clock[0]  # type: ignore[attr-defined]
    aid = enqueue(store, "j3", pool={"location": "westeurope"})
    for acct in accounts.values():
        acct.jobs_down = True
    for _ in range(4):  # more than max_attempts (2): blocked each time, never failed
        claim = store.claim("f", "w")
        assert claim is not None and claim.action.id == aid
        assert processor.process(claim) == "blocked"
        a = store.get_action("f", aid)
        assert a.state is ActionState.BLOCKED and a.errors == 0
        assert a.reason.startswith("Batch service unreachable")
        store_clock[0] += 60  # the retry time has come
    chosen = a.progress["pool"]["pool_id"]
    for acct in accounts.values():
        acct.jobs_down = False
    assert processor.process(store.claim("f", "w")) == "placed"
    placed = store.get_action("f", aid)
    assert placed.progress["placed_pool"].endswith("#" + chosen)  # back to the pool it had chosen


class FlakyStore:
    """A store whose calls fail with StoreUnavailableError while ``down``."""

    def __init__(self, inner: SqliteStore):
        self.inner, self.down, self.calls = inner, False, 0

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.inner, name)
        if not callable(attr):
            return attr

        def call(*a: Any, **k: Any) -> Any:
            self.calls += 1
            if self.down:
                raise StoreUnavailableError(f"azure store: {name}: storage service unreachable (ServiceRequestError)")
            return attr(*a, **k)

        return call


def test_the_proxy_keeps_its_federations_while_the_store_is_away(tmp_path: Path) -> None:
    store = FlakyStore(SqliteStore(tmp_path / "s.sqlite"))
    store.inner.create_federation("kept")
    d = ProxyDaemon(store, lambda url: None, loop=LoopOptions(federations_interval=0), proxy_id="p")  # type: ignore[arg-type]
    assert d._watched(force=True) == ["kept"]
    store.down = True
    assert d._watched(force=True) == ["kept"]  # before: StoreUnavailableError ended the proxy's loop
    store.down = False
    store.inner.create_federation("new")
    assert d._watched(force=True) == ["kept", "new"]
    store.inner.close()


def test_a_store_outage_is_not_charged_to_the_action(rig: Any) -> None:
    store, _accounts, processor = rig
    flaky = FlakyStore(store)
    processor.store = flaky
    aid = enqueue(store, "j4")
    claim = store.claim("f", "w")
    calls = 0

    def fail_then_recover(*a: Any, **k: Any) -> Any:  # the store goes away mid-action, then returns
        nonlocal calls
        calls += 1
        if calls == 1:
            flaky.down = True
            raise StoreUnavailableError("azure store: record progress: storage service unreachable")
        return store.record_progress(*a, **k)

    flaky.record_progress = fail_then_recover  # type: ignore[attr-defined]
    import threading

    threading.Timer(0.3, lambda: setattr(flaky, "down", False)).start()
    assert processor.process(claim) == "retry"
    a = store.get_action("f", aid)
    assert a.state is ActionState.QUEUED and a.errors == 0 and a.claimed_by is None


def test_a_new_leader_frees_the_claims_of_the_one_it_replaced(tmp_path: Path) -> None:
    now = [1_000.0]
    store = SqliteStore(tmp_path / "s.sqlite", clock=lambda: now[0])
    store.create_federation("f")
    (a,) = store.enqueue("f", [NewAction("job", "add", "j", {"version": 1})])
    assert store.acquire_lease(LEASE_NAME, "old-leader", ttl=15) is not None
    assert store.claim("f", "old-leader", ttl=600) is not None  # in flight when the old leader died
    now[0] += 20  # its lease lapsed; its claim would hold for another 580 s
    d = ProxyDaemon(store, lambda url: None, loop=LoopOptions(lease_ttl=15), proxy_id="new-leader")  # type: ignore[arg-type]
    d._try_lease()
    assert d.is_leader.is_set()
    claim = store.claim("f", "new-leader")
    assert claim is not None and claim.action.id == a.id
    store.close()
