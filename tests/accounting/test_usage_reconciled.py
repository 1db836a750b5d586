"""Usage and spend follow what really ran: a running job counts its elapsed time, capped at its
estimate; once Batch says it finished, its measured core-hours (task run time × the cores
each task held) and their cost replace the estimate. The ledger is per federation, survives a
failover, and a new leader asks Batch (a bounded number of jobs per step) which held jobs
still run."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from factories import make_pool

from batchfed_lab.accounting.accountant import Accountant
from batchfed_lab.accounting.prices import PriceTable
from batchfed_lab.accounting.published import spent_of, usage_of
from batchfed_lab.accounting.usage import Finished, TaskRun
from batchfed_lab.config.accounting import Accounting
from batchfed_lab.config.jobs import JobSpecification
from batchfed_lab.scheduler.types import Decision, Verdict
from batchfed_lab.store.ordering import ReadyGroup
from batchfed_lab.store.records import ProxyRecord

HOUR = 3600.0
T0 = 1_000_000.0


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


class Batch:
    """Answers probes: jobs in ``done`` finished with their runs; counts the questions."""

    def __init__(self) -> None:
        self.done: dict[str, Finished] = {}
        self.asked: list[str] = []

    def __call__(self, service_url: str, job_id: str) -> Finished | None:
        self.asked.append(job_id)
        return self.done.get(job_id)


def _accountant(clock: Clock, batch: Batch | None = None, info: dict | None = None, **cfg) -> Accountant:
    acct = Accountant(Accounting(**cfg), clock=clock, probe=batch, info=info)
    acct.prices = PriceTable.from_rows([("standard_d2_v3", "westeurope", 0.4, 0.1)])
    return acct


POOL = make_pool(vm_size="standard_d2_v3", slots=2)  # 2 cores, 2 slots: one core per task


def _place(acct: Accountant, jid: str, tasks: int, who: str = "ada", fed: str = "lab", **job) -> None:
    action = SimpleNamespace(id=f"{fed}/{jid}", submitter=who, target_id=jid, federation_id=fed, kind="job")
    spec = JobSpecification(id=jid, tasks=[{"command": "true"}] * tasks, **job)
    decision = Decision(pool=POOL.key, verdicts=(Verdict(POOL.key, "chosen", reason="chosen"),))
    assert acct.admit(action, spec, POOL, decision) is None
    acct.placed(action)


def _usage(acct: Accountant, who: str = "ada", fed: str = "lab") -> float:
    return acct.book.usage(fed, who, acct.clock())


def test_a_running_job_is_charged_its_elapsed_time_capped_at_its_estimate():
    clock = Clock()
    acct = _accountant(clock)
    _place(acct, "j", 4, max_wall_time="2:00:00")  # 4 cores for 2 h: 8 core-hours at most
    assert _usage(acct) == 0.0
    clock.now += 0.5 * HOUR
    assert _usage(acct) == pytest.approx(2.0)
    assert acct.book.spent("lab", clock.now, lambda u: None)["ada"] == pytest.approx(
        1.6 * 0.25
    )  # 2 nodes x 0.4 x 2 h, a quarter of it
    clock.now += 10 * HOUR
    assert _usage(acct) == pytest.approx(8.0)


def test_a_finished_job_is_charged_its_measured_core_hours_and_cost_instead_of_its_estimate():
    clock, batch = Clock(), Batch()
    acct = _accountant(clock, batch)
    _place(acct, "j", 4, max_wall_time="2:00:00")
    clock.now += 3 * HOUR
    # each of the 4 tasks ran 15 minutes on one core: 1 core-hour, 1 slot-hour x 0.4 / 2 slots
    batch.done["j"] = Finished(tuple(TaskRun(T0 + 60 + i, T0 + 60 + i + 900) for i in range(4)))
    assert acct.reconcile() == 1
    assert _usage(acct) == pytest.approx(1.0)
    assert acct.book.spent("lab", clock.now, lambda u: None)["ada"] == pytest.approx(0.2)
    assert acct.book.open == {}
    assert acct.published()["spent"]["lab"] == {"ada": pytest.approx(0.2)}


def test_a_job_that_ran_longer_than_assumed_is_charged_what_it_ran():
    clock, batch = Clock(), Batch()
    acct = _accountant(clock, batch)
    _place(acct, "j", 1)  # no max_wall_time: assumed 1 h
    clock.now += 5 * HOUR
    assert _usage(acct) == pytest.approx(1.0)  # capped at the estimate while it runs
    batch.done["j"] = Finished((TaskRun(T0 + 10, T0 + 10 + 4 * HOUR),))
    acct.reconcile()
    assert _usage(acct) == pytest.approx(4.0)


def test_a_job_gone_from_batch_or_removed_is_charged_what_it_ran_so_far():
    clock, batch = Clock(), Batch()
    acct = _accountant(clock, batch)
    _place(acct, "gone", 2, max_wall_time="4:00:00")
    _place(acct, "cut", 2, max_wall_time="4:00:00")
    clock.now += HOUR
    batch.done["gone"] = Finished(None)
    acct.reconcile()
    acct.removed(SimpleNamespace(federation_id="lab", target_id="cut"))
    assert _usage(acct) == pytest.approx(4.0)  # 2 cores x 1 h, twice
    assert acct.book.open == {}
    clock.now += 10 * HOUR
    assert _usage(acct) < 4.0  # no longer running: it only decays


def test_reconciliation_asks_a_bounded_number_of_jobs_per_step_least_recently_asked_first():
    clock, batch = Clock(), Batch()
    acct = _accountant(clock, batch)
    for i in range(10):
        _place(acct, f"j{i}", 1)
    acct.reconcile(limit=4)
    acct.reconcile(limit=4)
    assert len(batch.asked) == 8 and len(set(batch.asked)) == 8
    clock.now += 60
    acct.reconcile(limit=4)
    assert batch.asked[8:] == ["j8", "j9", "j0", "j1"]


def test_usage_is_kept_per_federation():
    clock = Clock()
    acct = _accountant(clock)
    _place(acct, "big", 2, who="ada", fed="lab")
    clock.now += HOUR
    assert _usage(acct, "ada", "lab") == pytest.approx(2.0)
    assert _usage(acct, "ada", "other") == 0.0
    # in "other", ada's usage in "lab" does not count against her
    groups = [ReadyGroup("ada", 0, T0, 1), ReadyGroup("bob", 0, T0 + 1, 1)]
    assert acct.order.choose(groups, clock.now, "other").submitter == "ada"
    assert acct.order.choose(groups, clock.now, "lab").submitter == "bob"
    published = acct.published()
    assert usage_of(published, "lab") == {"ada": pytest.approx(2.0)} and usage_of(published, "other") == {}


def test_usage_and_spend_survive_a_failover_and_the_new_leader_finishes_the_reconciliation():
    clock, batch = Clock(), Batch()
    info: dict = {}
    leader = _accountant(clock, batch, info, quotas={"users": {"ada": {"tasks": 2}}})
    _place(leader, "done", 1)
    _place(leader, "runs", 1)
    clock.now += 0.5 * HOUR
    batch.done["done"] = Finished((TaskRun(T0 + 1, T0 + 1 + 0.25 * HOUR),))
    leader.reconcile()
    assert usage_of(info["accounting"], "lab")["ada"] == pytest.approx(0.25 + 0.5)
    assert spent_of(info["accounting"], "lab")["ada"] == pytest.approx(0.4 / 2 * 0.75)

    batch2 = Batch()
    standby = _accountant(clock, batch2, quotas={"users": {"ada": {"tasks": 2}}})
    store = SimpleNamespace(list_proxies=lambda: [ProxyRecord("p1", info=dict(info), heartbeat_at=None)])
    standby.lead(store)
    assert _usage(standby) == pytest.approx(0.75)
    # "runs" is held with its job id: the new leader asks Batch about it, and it finished
    action = SimpleNamespace(id="lab/more", submitter="ada", target_id="more", federation_id="lab", kind="job")
    spec = JobSpecification(id="more", tasks=[{"command": "true"}] * 2)
    decision = Decision(pool=POOL.key, verdicts=(Verdict(POOL.key, "chosen", reason="chosen"),))
    assert standby.admit(action, spec, POOL, decision).reason == "quota: user ada has 1 of 2 tasks"
    assert batch2.asked == ["runs"]
    batch2.done["runs"] = Finished((TaskRun(T0 + 2, T0 + 2 + 0.1 * HOUR),))
    clock.now += 60
    assert standby.reconcile() == 1
    assert standby.admit(action, spec, POOL, decision) is None
    assert _usage(standby) == pytest.approx(0.25 + 0.1, rel=1e-3)


def test_open_placements_beyond_the_published_ones_come_back_as_held_work_and_settled_usage(monkeypatch):
    import batchfed_lab.accounting.accountant as accountant

    monkeypatch.setattr(accountant, "PUBLISHED_OPEN", 2)
    clock = Clock()
    info: dict = {}
    leader = _accountant(clock, info=info, quotas={"users": {"ada": {"tasks": 3}}})
    for i in range(3):
        _place(leader, f"j{i}", 1)
        clock.now += 60
    clock.now += 0.5 * HOUR
    leader.publish()
    record = info["accounting"]
    assert [row[1] for row in record["open"]] == ["j2", "j1"]  # the newest, with their job ids
    standby = _accountant(clock, Batch(), quotas={"users": {"ada": {"tasks": 3}}})
    standby.restore(record)
    assert standby.holdings()["lab"]["ada"].tasks == 3
    assert _usage(standby) == pytest.approx(_usage(leader))
    action = SimpleNamespace(id="lab/more", submitter="ada", target_id="more", federation_id="lab", kind="job")
    spec = JobSpecification(id="more", tasks=[{"command": "true"}])
    decision = Decision(pool=POOL.key, verdicts=(Verdict(POOL.key, "chosen", reason="chosen"),))
    assert standby.admit(action, spec, POOL, decision).reason == "quota: user ada has 3 of 3 tasks"


def test_the_claim_order_counts_a_placement_at_its_estimate_from_the_moment_it_is_granted():
    """Usage is what ran, but the claim order weighs what each user was granted: a burst of
    placements follows the shares at once, and an early finish gives the rest back."""
    clock, batch = Clock(), Batch()
    acct = _accountant(clock, batch)
    _place(acct, "j", 2)  # 2 cores, 1 h assumed
    assert _usage(acct) == 0.0  # nothing ran yet...
    groups = [ReadyGroup("ada", 0, T0, 1), ReadyGroup("bob", 0, T0 + 1, 1)]
    assert acct.order.choose(groups, clock.now, "lab").submitter == "bob"  # ...but ada was granted 2 core-hours
    assert acct.book.committed("lab", "ada", clock.now) == pytest.approx(2.0)
    clock.now += 60
    batch.done["j"] = Finished((TaskRun(T0 + 1, T0 + 31),))
    acct.reconcile()
    assert acct.book.committed("lab", "ada", clock.now) == pytest.approx(30 / HOUR, rel=1e-3)  # one task ran 30 s on one core


def test_a_quota_wait_asks_batch_about_a_bounded_number_of_held_jobs():
    clock, batch = Clock(), Batch()
    acct = _accountant(clock, batch, quotas={"users": {"ada": {"tasks": 40}}})
    for i in range(40):
        _place(acct, f"j{i}", 1)
    action = SimpleNamespace(id="lab/more", submitter="ada", target_id="more", federation_id="lab", kind="job")
    spec = JobSpecification(id="more", tasks=[{"command": "true"}])
    decision = Decision(pool=POOL.key, verdicts=(Verdict(POOL.key, "chosen", reason="chosen"),))
    assert acct.admit(action, spec, POOL, decision) is not None
    assert len(batch.asked) == 16  # the worker deciding waits for these calls: a few, not all


def test_a_job_moved_within_its_account_is_charged_what_ran_under_its_derived_batch_id():
    clock, batch = Clock(), Batch()
    acct = _accountant(clock, batch)
    _place(acct, "j", 1, max_wall_time="4:00:00")  # left behind, terminated: ran 1 h there
    action = SimpleNamespace(id="lab/j-move", submitter="ada", target_id="j", federation_id="lab", kind="job")
    spec = JobSpecification(id="j", tasks=[{"command": "true"}], max_wall_time="4:00:00")
    decision = Decision(pool=POOL.key, verdicts=(Verdict(POOL.key, "chosen", reason="chosen"),))
    assert acct.admit(action, spec, POOL, decision) is None
    acct.placed(action, "j-moved-1")  # the move: on another pool of the same account
    clock.now += 3 * HOUR
    batch.done["j"] = Finished((TaskRun(T0, T0 + HOUR),))
    acct.reconcile()
    assert sorted(batch.asked) == ["j", "j-moved-1"]  # each Batch job asked about by its own id
    assert list(acct.book.open) == ["lab/j-move"]  # the moved job still runs: still held
    batch.done["j-moved-1"] = Finished((TaskRun(T0 + HOUR, T0 + 3 * HOUR),))
    clock.now += 2 * HOUR  # past the time between two questions about one job
    acct.reconcile()
    assert acct.book.open == {} and _usage(acct) == pytest.approx(3.0, rel=0.01)  # 1 h there, 2 h here
