"""``explain`` predicts what the proxy does (issue 20, point 12).

On random federations — pools in a few accounts, the job id already living on some of them,
federations with and without unique job ids — the pool ``Client.explain`` chooses is the
pool the proxy's decision for the same action chooses, and its verdicts are the same. Both
run in this process over one in-memory store and one set of pool snapshots: no Batch, no
proxy process. And the rule explain used to miss holds: in a federation without unique job
ids, a job id that lives on one pool of an account keeps every other pool of that account out.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from factories import make_pool
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from batchfed_lab.client import Client
from batchfed_lab.config import load_jobs
from batchfed_lab.proxy import add_payload
from batchfed_lab.proxy.payload import parse_add
from batchfed_lab.proxy.processor import ActionProcessor, ProcessingOptions
from batchfed_lab.scheduler.types import url_key
from batchfed_lab.store.records import Action, ActionKind, ActionMethod, ActionState, Claim, Federation, Location, PoolMember

FED = "fed"
JOB = "job-1"
ACCOUNTS = ["a1", "a2", "a3"]
LOCATIONS = ["westeurope", "eastus"]
UTC0 = datetime(2030, 1, 1, tzinfo=timezone.utc)


class MemoryStore:
    """The few reads explain and a decision make, from fixed records."""

    def __init__(self, unique_job_ids: bool, members: list[PoolMember], homes: list[tuple[str, str]]):
        self.federation = Federation(FED, unique_job_ids, UTC0)
        self.members = members
        self.homes = [Location(FED, JOB, ActionKind.JOB, url, pool) for url, pool in homes]

    def get_federation(self, fid: str) -> Federation:
        return self.federation

    def list_pools(self, fid: str) -> list[PoolMember]:
        return self.members

    def get_locations(self, fid: str, job_id: str | None = None, *, kind: Any = None) -> list[Location]:
        wanted = ActionKind(kind) if kind is not None else None
        return [loc for loc in self.homes if (job_id is None or loc.job_id == job_id) and wanted in (None, loc.kind)]

    def list_proxies(self) -> list[Any]:
        return []


class FixedCapacity:
    def __init__(self, snaps: list[Any]):
        self.snaps = snaps

    def snapshots(self, members: Any, *, active_tasks: bool = False) -> list[Any]:
        return list(self.snaps)


@st.composite
def federations(draw: Any) -> tuple[list[Any], list[tuple[str, str]]]:
    """Pools in up to three accounts, and the pools the job id already lives on (at most one
    per account: a Batch job id is unique per account)."""
    n = draw(st.integers(1, 8))
    snaps = [
        make_pool(
            f"p{i}",
            account=draw(st.sampled_from(ACCOUNTS)),
            location=draw(st.sampled_from(LOCATIONS)),
            idle=draw(st.integers(0, 4)),
            running=draw(st.integers(0, 2)),
            slots=draw(st.sampled_from([1, 2])),
        )
        for i in range(n)
    ]
    homes: dict[str, tuple[str, str]] = {}
    for s in snaps:
        if draw(st.integers(0, 3)) == 0:
            homes.setdefault(url_key(s.facts.service_url), (s.facts.service_url, s.pool_id))
    if draw(st.booleans()):  # a home on a pool the federation does not have (removed since)
        homes.setdefault("gone", ("http://127.0.0.1:1/accounts/a3", "removed"))
    return snaps, list(homes.values())


@st.composite
def jobs(draw: Any) -> Any:
    spec: dict[str, Any] = {"id": JOB, "tasks": [{"command": "echo"}] * draw(st.integers(1, 5))}
    if draw(st.booleans()):
        spec["federation_constraints"] = {"pool": {"location": draw(st.sampled_from(LOCATIONS))}}
    return load_jobs({"job_specifications": [spec]}).job_specifications[0]


def explain_choice(store: MemoryStore, snaps: list[Any], job: Any, policy: str) -> Any:
    client = Client.__new__(Client)
    client._store = store  # type: ignore[assignment]
    client.pool_snapshots = lambda fid, **kw: list(snaps)  # type: ignore[method-assign]
    (explanation,) = client.explain(FED, job, policy=policy)
    return explanation.decision


def proxy_choice(store: MemoryStore, snaps: list[Any], job: Any, policy: str) -> Any:
    proc = ActionProcessor(store, FixedCapacity(snaps), lambda url: None, ProcessingOptions(policy=policy))  # type: ignore[arg-type]
    payload = add_payload(job)
    a = Action("u1", FED, ActionKind.JOB, ActionMethod.ADD, JOB, 0, ActionState.QUEUED, UTC0, payload=payload)
    claim = Claim(a, "token", "w", UTC0)
    decision, _ = proc._decide(claim, parse_add(payload, "action u1"), set(), proc._job_homes(a))
    return decision


PROFILE = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROFILE
@given(federations(), jobs(), st.booleans(), st.sampled_from(["largest-fit", "best-fit"]))
def test_explain_chooses_what_the_proxy_places(fed: Any, job: Any, unique_job_ids: bool, policy: str) -> None:
    snaps, homes = fed
    members = [PoolMember(FED, s.facts.service_url, s.pool_id, s.facts.account, s.facts.location) for s in snaps]
    store = MemoryStore(unique_job_ids, members, homes)
    predicted = explain_choice(store, snaps, job, policy)
    placed = proxy_choice(store, snaps, job, policy)
    assert predicted.pool == placed.pool
    assert predicted.verdicts == placed.verdicts
    assert predicted.reason == placed.reason


def test_explain_keeps_out_the_pools_of_an_account_where_the_job_lives_elsewhere() -> None:
    """The issue's case: explain predicted ``nu-a``; the submission blocked, because the job id
    lives on ``nu-b`` of the same account (and ``nu-b`` is in the wrong region)."""
    snaps = [make_pool("nu-a", account="nu", idle=4), make_pool("nu-b", account="nu", location="eastus")]
    store = MemoryStore(False, [], [(snaps[1].facts.service_url, "nu-b")])
    spec = {"id": JOB, "tasks": [{"command": "echo"}], "federation_constraints": {"pool": {"location": "westeurope"}}}
    job = load_jobs({"job_specifications": [spec]}).job_specifications[0]
    predicted = explain_choice(store, snaps, job, "largest-fit")
    assert predicted.pool is None
    assert predicted.reason.startswith("no pool satisfies the constraints (2 of 2 excluded)")
    assert "job 'job-1' already lives on pool nu-b of this account" in predicted.reason
    assert proxy_choice(store, snaps, job, "largest-fit").reason == predicted.reason
