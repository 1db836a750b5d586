"""Quotas: per-user and per-federation caps on concurrent cores, nodes or tasks (running +
placed, not finished). A placement that would exceed one waits with a verdict naming it."""

from __future__ import annotations

from types import SimpleNamespace

from factories import make_pool

from batchfed_lab.accounting.accountant import Accountant
from batchfed_lab.accounting.demand import Demand
from batchfed_lab.accounting.quota import quota_verdict
from batchfed_lab.config.accounting import Accounting, Quotas
from batchfed_lab.config.jobs import JobSpecification
from batchfed_lab.scheduler.types import Decision, Verdict

HOUR = 3600.0


def test_the_verdict_names_the_user_the_held_amount_and_the_cap():
    quotas = Quotas(users={"ada": {"cores": 64}})
    held = Demand(cores=64, nodes=16, tasks=64)
    assert quota_verdict("ada", "lab", Demand(cores=1), held, Demand(), quotas) == "quota: user ada has 64 of 64 cores"
    assert quota_verdict("ada", "lab", Demand(cores=1), Demand(cores=63), Demand(), quotas) is None
    assert quota_verdict("bob", "lab", Demand(cores=1), held, Demand(), quotas) is None  # no cap for bob


def test_the_default_user_and_the_federation_caps_apply():
    quotas = Quotas(default_user={"tasks": 10}, federation={"nodes": 4})
    assert quota_verdict("cy", "lab", Demand(tasks=2), Demand(tasks=9), Demand(), quotas) == "quota: user cy has 9 of 10 tasks"
    assert (
        quota_verdict("cy", "lab", Demand(nodes=1), Demand(), Demand(nodes=4), quotas) == "quota: federation lab has 4 of 4 nodes"
    )


class Clock:
    now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def _job(tasks: int, jid: str = "j", **kw) -> JobSpecification:
    return JobSpecification(id=jid, tasks=[{"command": "true"}] * tasks, **kw)


def _place(acct: Accountant, pool, aid: str, tasks: int, who: str = "ada", fed: str = "lab") -> Decision | None:
    action = SimpleNamespace(id=aid, submitter=who, target_id=aid, federation_id=fed)
    decision = Decision(pool=pool.key, verdicts=(Verdict(pool.key, "chosen", reason="chosen"),))
    wait = acct.admit(action, _job(tasks, aid), pool, decision)
    if wait is None:
        acct.placed(action)
    return wait


def test_a_placement_over_quota_waits_with_the_verdict_and_goes_once_work_ends():
    clock = Clock()
    acct = Accountant(Accounting(quotas={"users": {"ada": {"cores": 4}}}), clock=clock)
    pool = make_pool(vm_size="standard_d2_v3", slots=2)  # one core per slot
    assert _place(acct, pool, "a1", 3) is None
    wait = _place(acct, pool, "a2", 2)
    assert wait is not None and not wait.placed
    assert wait.reason == "quota: user ada has 3 of 4 cores"
    (v,) = wait.verdicts
    assert (v.status, v.constraint, v.reason) == ("skipped", "quota", wait.reason)
    assert _place(acct, pool, "b1", 4, who="bob") is None  # another user's cap is their own
    clock.now += 1.5 * HOUR  # a1 held for its assumed hour
    assert _place(acct, pool, "a2", 2) is None


def test_work_is_released_when_its_job_is_removed():
    clock = Clock()
    acct = Accountant(Accounting(quotas={"federation": {"tasks": 2}}), clock=clock)
    pool = make_pool()
    assert _place(acct, pool, "a1", 2) is None
    assert _place(acct, pool, "b1", 1, who="bob").reason == "quota: federation lab has 2 of 2 tasks"
    acct.removed(SimpleNamespace(federation_id="lab", target_id="a1"))
    assert _place(acct, pool, "b1", 1, who="bob") is None


def test_a_placement_over_budget_waits_with_what_is_left_and_the_jobs_estimate():
    from batchfed_lab.accounting.budget import budget_verdict
    from batchfed_lab.config.accounting import Budgets

    budgets = Budgets(users={"ada": 200}, groups={"lab": 50})
    spent = {"ada": 187.6}
    assert budget_verdict("ada", None, 18.0, spent, budgets) == "budget: ada has $12.40 of $200 left, this job ~ $18"
    assert budget_verdict("ada", None, 12.0, spent, budgets) is None
    assert budget_verdict("bob", "lab", 60.0, {}, budgets) == "budget: group lab has $50 of $50 left, this job ~ $60"
    assert budget_verdict("cy", None, 1e6, {}, budgets) is None  # no budget: no limit


def test_the_accountant_reserves_running_jobs_estimates_and_blocks_past_the_budget():
    from batchfed_lab.accounting.prices import PriceTable

    clock = Clock()
    acct = Accountant(Accounting(budgets={"users": {"ada": 1.0}}), clock=clock)
    acct.prices = PriceTable.from_rows([("standard_d2_v3", "westeurope", 0.4, 0.1)])
    pool = make_pool(vm_size="standard_d2_v3", slots=2)  # 2 cores: a 1-task job is half a node
    assert _place(acct, pool, "a1", 2) is None  # 1 node x 0.4 x 1 h
    assert _place(acct, pool, "a2", 2) is None
    wait = _place(acct, pool, "a3", 2)
    assert wait.reason == "budget: ada has $0.20 of $1 left, this job ~ $0.40"
    assert [v.constraint for v in wait.verdicts] == ["budget"]
    assert acct.published()["spent"] == {"lab": {"ada": 0.0}}  # spent: what ran so far (nothing yet)


def test_placements_admitted_at_once_count_against_the_quota_before_they_are_written():
    """Workers decide concurrently: an admitted, not yet written placement holds its demand."""
    clock = Clock()
    acct = Accountant(Accounting(quotas={"users": {"ada": {"tasks": 1}}}, budgets={"users": {"ada": 0.5}}), clock=clock)
    pool = make_pool()
    first = SimpleNamespace(id="a1", submitter="ada", target_id="a1", federation_id="lab")
    decision = Decision(pool=pool.key, verdicts=(Verdict(pool.key, "chosen", reason="chosen"),))
    assert acct.admit(first, _job(1, "a1"), pool, decision) is None
    second = SimpleNamespace(id="a2", submitter="ada", target_id="a2", federation_id="lab")
    assert acct.admit(second, _job(1, "a2"), pool, decision).reason == "quota: user ada has 1 of 1 tasks"
    assert acct.admit(first, _job(1, "a1"), pool, decision) is None  # a retry of the same action
    clock.now += 601  # the first was never written: its admission lapses
    assert acct.admit(second, _job(1, "a2"), pool, decision) is None


def test_work_whose_batch_job_finished_is_released_when_a_quota_would_block():
    """Placed-not-finished: when a cap would make a job wait, the proxy asks Batch whether the
    held jobs are done (at most every reap interval per job) and releases those that are."""
    from batchfed_lab.accounting.usage import Finished

    clock = Clock()
    done: set[str] = set()
    asked: list[str] = []

    def probe(service_url: str, job_id: str) -> Finished | None:
        asked.append(job_id)
        return Finished(()) if job_id in done else None

    acct = Accountant(Accounting(quotas={"users": {"ada": {"tasks": 1}}}), clock=clock, probe=probe)
    pool = make_pool()
    assert _place(acct, pool, "a1", 1) is None
    assert _place(acct, pool, "a2", 1).reason == "quota: user ada has 1 of 1 tasks"
    assert asked == ["a1"]
    assert _place(acct, pool, "a2", 1) is not None and asked == ["a1"]  # asked again only later
    done.add("a1")
    clock.now += 11
    assert _place(acct, pool, "a2", 1) is None and asked == ["a1", "a1"]
