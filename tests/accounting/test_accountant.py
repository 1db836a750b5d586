"""The proxy's accountant: a placement charges its submitter the job's estimated core-hours
(cores on the chosen pool × max_wall_time, else the assumed hours) once it is written, and the
usage survives a restart through what the accountant publishes."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from factories import make_pool

from batchfed_lab.accounting.accountant import Accountant
from batchfed_lab.accounting.demand import Demand, job_demand
from batchfed_lab.config.accounting import Accounting
from batchfed_lab.config.jobs import JobSpecification
from batchfed_lab.scheduler.types import Decision

HOUR = 3600.0


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def _job(tasks: int = 2, **kw) -> JobSpecification:
    return JobSpecification(id="j", tasks=[{"command": "true"}] * tasks, **kw)


def _action(who: str = "ada", aid: str = "a1") -> SimpleNamespace:
    return SimpleNamespace(id=aid, submitter=who, target_id="j", federation_id="lab")


def test_a_jobs_demand_is_its_slots_in_cores_nodes_and_tasks():
    pool = make_pool(vm_size="standard_d4_v3", slots=2)  # 4 cores, 2 slots per node
    assert job_demand(_job(3), pool.facts) == Demand(cores=6.0, nodes=2, tasks=3)
    unknown = make_pool(size=None)
    assert job_demand(_job(3), unknown.facts) == Demand(cores=3.0, nodes=3, tasks=3)


def test_a_placement_is_charged_once_written_as_it_runs_up_to_its_wall_time():
    clock = Clock()
    acct = Accountant(Accounting(), clock=clock)
    pool = make_pool(vm_size="standard_d4_v3", slots=4)
    assert acct.admit(_action(), _job(4, max_wall_time="2:00:00"), pool, Decision(pool=pool.key)) is None
    clock.now += 3 * HOUR
    assert acct.book.usage("lab", "ada", clock.now) == 0.0  # not placed yet
    acct.placed(_action())
    clock.now += 3 * HOUR
    assert acct.book.usage("lab", "ada", clock.now) == pytest.approx(4 * 1 * 2.0)
    acct.placed(_action())  # the same placement again (a retry): charged once
    assert acct.book.usage("lab", "ada", clock.now) == pytest.approx(8.0)
    acct.admit(_action("bob", "b1"), _job(1), pool, Decision(pool=pool.key))
    acct.placed(_action("bob", "b1"))
    clock.now += 3 * HOUR
    assert acct.book.usage("lab", "bob", clock.now) == pytest.approx(1.0)  # assumed 1 h


def test_usage_survives_a_restart_through_the_published_record():
    clock = Clock()
    info: dict = {}
    first = Accountant(Accounting(), clock=clock, info=info)
    pool = make_pool()
    first.admit(_action(), _job(2), pool, Decision(pool=pool.key))
    first.placed(_action())
    first.removed(SimpleNamespace(federation_id="lab", target_id="j"))  # settled: nothing ran
    clock.now += 2 * HOUR
    first.admit(_action(aid="a2"), _job(2), pool, Decision(pool=pool.key))
    first.placed(_action(aid="a2"))
    clock.now += HOUR
    first.removed(SimpleNamespace(federation_id="lab", target_id="j"))  # settled: 2 cores x 1 h
    assert info["accounting"]["usage"] == {"lab": {"ada": pytest.approx(4.0)}}
    clock.now += 168 * HOUR  # one half-life later
    second = Accountant(Accounting(), clock=clock)
    second.restore(info["accounting"])
    assert second.book.usage("lab", "ada", clock.now) == pytest.approx(2.0)


def test_a_new_leader_starts_from_what_the_last_leader_published():
    from batchfed_lab.store.records import ProxyRecord

    clock = Clock()
    leader_info: dict = {}
    leader = Accountant(Accounting(quotas={"users": {"ada": {"tasks": 2}}}), clock=clock, info=leader_info)
    standby = Accountant(Accounting(quotas={"users": {"ada": {"tasks": 2}}}), clock=clock)
    pool = make_pool()
    leader.admit(_action(), _job(2), pool, Decision(pool=pool.key))
    leader.placed(_action())
    clock.now += 0.5 * HOUR
    leader.publish()
    store = SimpleNamespace(list_proxies=lambda: [ProxyRecord("p1", info=dict(leader_info), heartbeat_at=None)])
    standby.lead(store)
    assert standby.book.usage("lab", "ada", clock.now) == pytest.approx(2.0)  # half its assumed hour so far
    again = standby.admit(_action("ada", "a2"), _job(1), pool, Decision(pool=pool.key))
    assert again is not None and again.reason == "quota: user ada has 2 of 2 tasks"
