"""The proxy's accountant: the claim order (fair share + priority aging), and the placement
gate (quotas, budgets) with the usage ledger they share. It holds state but does no I/O: the
proxy installs it (``store.head_order``, ``processor.gate``) and publishes :meth:`published`
in its heartbeat, from which a new leader and ``%fed share`` read it back."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ..config.accounting import Accounting
from ..config.jobs import JobSpecification
from ..scheduler.types import Decision, PoolSnapshot
from .budget import budget_verdict
from .cost import job_cost
from .demand import Demand, charged_hours, job_demand
from .fairshare import UNKNOWN_USER, FairShareOrder, Shares, UsageLedger
from .prices import default_prices
from .priority import Aging
from .published import last_published
from .quota import quota_verdict, waiting
from .usage import OPEN_AFTER_RELEASE, Finished, Placement, UsageBook, keys_of, measure

HOUR = 3600.0
#: an admitted placement counts against quotas and budgets until it is written, or this long
#: (a placement that failed meanwhile is never written: its admission lapses)
PENDING_SECONDS = 600.0
#: how often Batch is asked, at most, whether one placed job has finished
REAP_SECONDS = 10.0
#: jobs asked about per reconciliation step (the proxy runs one every few seconds)
RECONCILE_JOBS = 16
#: open placements published with job ids (a new leader asks Batch about those); the rest
#: are published as held work per user, and their running usage as settled
PUBLISHED_OPEN = 1000


@dataclass(frozen=True, slots=True)
class Pending:
    """An admitted placement: charged, and held against quotas, once it is written."""

    federation_id: str
    target_id: str
    user: str
    demand: Demand
    hours: float
    cost: float
    at: float
    service_url: str | None = None  # where the job runs (None: a job schedule)
    slot_cores: float = 1.0
    slot_rate: float = 0.0
    task_slots: float = 1.0


def shares_of(cfg: Accounting) -> Shares:
    fs = cfg.fair_share
    return Shares(users=dict(fs.shares), groups={g: (v.share, v.members) for g, v in fs.groups.items()})


#: ``probe(service_url, job_id)``: a :class:`Finished` when Batch is done with the job, else None
Probe = Callable[[str, str], "Finished | None"]


class Accountant:
    def __init__(
        self,
        cfg: Accounting,
        *,
        clock: Callable[[], float] = time.time,
        info: dict[str, Any] | None = None,
        probe: Probe | None = None,
    ):
        """``probe``: asks Batch whether a placed job finished, with its tasks' run times (the
        proxy's; without it, placements are settled when removed, or at their estimate)."""
        self.cfg = cfg
        self.probe = probe
        self._asked: dict[tuple[str, str, str], float] = {}  # (federation, url, job) → when Batch was last asked
        self.clock = clock
        self.shares = shares_of(cfg)
        self.book = UsageBook(cfg.fair_share.half_life_hours * HOUR)
        self.order = FairShareOrder(
            self.shares, UsageLedger(self.book.half_life), Aging(cfg.priority_aging_seconds),
            enabled=cfg.fair_share.enabled, per_federation=self.book,
        )  # fmt: skip
        self.info = info if info is not None else {}
        self._lock = threading.Lock()
        self._pending: dict[str, Pending] = {}
        self.prices = default_prices(cfg.prices)

    # ------------------------------------------------------------------ placement gate
    def admit(self, action: Any, job: JobSpecification, chosen: PoolSnapshot, decision: Decision) -> Decision | None:
        """None: the placement may go ahead (and is charged once placed); else a blocked
        decision whose reason names the quota or budget it would exceed."""
        user, fid = action.submitter or UNKNOWN_USER, action.federation_id
        demand = job_demand(job, chosen.facts)
        hours = charged_hours(job, self.cfg.fair_share.assumed_job_hours)
        with self._lock:
            self._pending.pop(action.id, None)  # a new attempt of the same action replaces the last
            over = self._quota(fid, user, demand) is not None
        if over:
            self._reap(fid)  # Batch calls: outside the lock
        with self._lock:
            reason = self._quota(fid, user, demand)
            if reason is not None:
                return waiting(decision, chosen.key, reason, "quota")
            price = self.prices.price_of(chosen.facts)
            cost = job_cost(demand, chosen.facts, price, decision.node_kind, hours=hours) or 0.0
            reason = budget_verdict(user, self.shares.group_of(user), cost, self._committed(fid), self.cfg.budgets)
            if reason is not None:
                return waiting(decision, chosen.key, reason, "budget")
            url = chosen.facts.service_url if str(getattr(action, "kind", "job")) == "job" else None
            slots = sum(t.num_instances for t in job.task_definitions)
            per_node = max(1, chosen.facts.task_slots_per_node)
            self._pending[action.id] = Pending(
                fid, action.target_id, user, demand, hours, cost, self.clock(), url,
                slot_cores=demand.cores / slots if slots else 1.0,
                slot_rate=0.0 if price is None else price.rate(decision.node_kind) / per_node,
                task_slots=slots / max(1, len(job.task_definitions)),
            )  # fmt: skip
        return None

    def _quota(self, fid: str, user: str, demand: Demand) -> str | None:
        held_user, held_fed = self._holdings(fid, user)
        return quota_verdict(user, fid, demand, held_user, held_fed, self.cfg.quotas)

    def placed(self, action: Any, batch_job_id: str | None = None) -> None:
        """The placement is written: its job counts against quotas and is charged as it runs;
        ``batch_job_id``: the job's id on Batch when not its own (a move within an account)."""
        now = self.clock()
        with self._lock:
            p = self._pending.pop(action.id, None)
        if p is None:  # a retry that found its pool in the journal: counted by the earlier run, if at all
            return
        self.book.add(
            action.id,
            Placement(
                p.federation_id, p.target_id, p.user, p.demand, now, p.hours, p.cost, now + p.hours * HOUR,
                p.service_url, p.slot_cores, p.slot_rate, p.task_slots, batch_job_id,
            ),
        )  # fmt: skip
        self.publish()

    def removed(self, action: Any) -> None:
        """A terminate or delete of the job id was carried out: its work no longer counts,
        and what it ran so far is what it is charged."""
        now = self.clock()
        for aid, p in list(self.book.open.items()):
            if (p.federation_id, p.target_id) == (action.federation_id, action.target_id):
                self.book.settle_running(aid, now, self._keys(p.user))
        self.publish()

    def _keys(self, user: str) -> list[str]:
        return keys_of(user, self.shares.group_of(user))

    # ------------------------------------------------------------------ what really ran
    def _reap(self, fid: str, limit: int = RECONCILE_JOBS) -> None:
        """A cap would block in ``fid``: settle the held jobs Batch says are finished (at most
        ``limit``, least recently asked first: the caller holds up the other decisions)."""
        now = self.clock()
        held = [k for k, ps in self._jobs(now).items() if k[0] == fid and any(p.until > now for _, p in ps)]
        self._ask(sorted(held, key=lambda k: self._asked.get(k, 0.0))[:limit], now)

    def reconcile(self, limit: int = RECONCILE_JOBS) -> int:
        """One step of following what really ran (the proxy's leader runs it every few
        seconds): ask Batch about at most ``limit`` open jobs, least recently asked first, and
        settle those that finished at their measure. Returns how many were settled."""
        now = self.clock()
        for aid, p in list(self.book.open.items()):
            if p.until + OPEN_AFTER_RELEASE <= now:  # Batch never said it finished: its estimate
                self.book.settle(aid, p.demand.cores * p.hours, p.cost, now, self._keys(p.user))
        jobs = sorted(self._jobs(now), key=lambda k: self._asked.get(k, 0.0))
        settled = self._ask(jobs[:limit], now)
        self.publish()
        return settled

    def _jobs(self, now: float) -> dict[tuple[str, str, str], list[tuple[str, Placement]]]:
        """Open placements grouped by job — (federation, service URL, job id) — that may be
        asked about now (each job at most every ``REAP_SECONDS``)."""
        out: dict[tuple[str, str, str], list[tuple[str, Placement]]] = {}
        for aid, p in list(self.book.open.items()):
            if p.service_url is None:
                continue
            key = (p.federation_id, p.service_url, (p.batch_job_id or p.target_id).lower())
            if now - self._asked.get(key, -REAP_SECONDS) >= REAP_SECONDS:
                out.setdefault(key, []).append((aid, p))
        return out

    def _ask(self, jobs: list[tuple[str, str, str]], now: float) -> int:
        if self.probe is None or not jobs:
            return 0
        groups = self._jobs(now)
        settled = 0
        for key in jobs:
            group = groups.get(key)
            if not group:
                continue
            self._asked[key] = now
            first = group[0][1]
            found = self.probe(key[1], first.batch_job_id or first.target_id)
            if found is None:
                continue
            if found.runs is None:  # gone: what ran cannot be read any more
                for aid, p in group:
                    self.book.settle_running(aid, now, self._keys(p.user))
            else:
                for (aid, p), (core_hours, cost) in zip(group, measure(found.runs, [p for _, p in group], now)):
                    self.book.settle(aid, core_hours, cost, now, self._keys(p.user))
            self._asked.pop(key, None)
            settled += len(group)
        return settled

    # ------------------------------------------------------------------ holdings
    def _holdings(self, fid: str, user: str) -> tuple[Demand, Demand]:
        """(the user's, the federation's) held demand now."""
        now = self.clock()
        for aid in [k for k, p in self._pending.items() if p.at + PENDING_SECONDS <= now]:
            del self._pending[aid]
        mine, everyone = Demand(), Demand()
        work: list[tuple[str, str, Demand]] = [
            (p.federation_id, p.user, p.demand) for p in list(self.book.open.values()) if p.until > now
        ]
        work += [(p.federation_id, p.user, p.demand) for p in self._pending.values()]
        for f, u, d in work:
            if f == fid:
                everyone = everyone + d
                if u == user:
                    mine = mine + d
        return mine, everyone

    def _committed(self, fid: str) -> dict[str, float]:
        """This month's spend per user and group:NAME as budgets count it: settled, each
        open placement's whole estimate, and admitted placements."""
        spent = self.book.reserved(fid, self.clock(), self.shares.group_of)
        for p in self._pending.values():
            if p.federation_id == fid:
                for key in self._keys(p.user):
                    spent[key] = spent.get(key, 0.0) + p.cost
        return spent

    def holdings(self) -> dict[str, dict[str, Demand]]:
        """Federation → user → held demand, now."""
        now = self.clock()
        out: dict[str, dict[str, Demand]] = {}
        for p in list(self.book.open.values()):
            if p.until > now:
                per = out.setdefault(p.federation_id, {})
                per[p.user] = per.get(p.user, Demand()) + p.demand
        return out

    # ------------------------------------------------------------------ persistence
    def published(self) -> dict[str, Any]:
        """Per federation: usage (settled, decayed), this month's spend, held work per user;
        and the open placements with their job ids (the newest ``PUBLISHED_OPEN``)."""
        now = self.clock()
        opened = sorted(self.book.open.values(), key=lambda p: p.placed_at, reverse=True)
        shown, rest = opened[:PUBLISHED_OPEN], opened[PUBLISHED_OPEN:]
        usage = self.book.settled_snapshot(now)
        for p in rest:  # published without job ids: their running usage as if settled
            per = usage.setdefault(p.federation_id, {})
            per[p.user] = round(per.get(p.user, 0.0) + p.running_core_hours(now), 6)
        urls: dict[str, int] = {}
        return {
            "version": 2,
            "as_of": now,
            "usage": usage,
            "open": [p.as_list(urls) for p in shown],
            "urls": list(urls),
            "held": {f: {u: [d.cores, d.nodes, d.tasks] for u, d in per.items()} for f, per in self.holdings().items()},
            "spent": {f: self.book.spent(f, now, self.shares.group_of) for f in self.book.federations()},
            "spent_settled": self.book.spent_snapshot(now),
            "quotas": self.cfg.quotas.model_dump(mode="json", exclude_defaults=True),
            "shares": self.cfg.fair_share.model_dump(
                mode="json", include={"shares", "groups", "half_life_hours", "assumed_job_hours", "enabled"}
            ),
            "budgets": self.cfg.budgets.model_dump(mode="json"),
            "prices": {"as_of": self.prices.as_of, "source": self.prices.source},
        }

    def publish(self) -> None:
        self.info["accounting"] = self.published()  # one assignment: a heartbeat copying info sees old or new

    def restore(self, record: Mapping[str, Any] | None) -> None:
        """Take back what an earlier leader published (its heartbeat's ``accounting``): its
        open placements come back with their job ids, so the next reconciliation steps ask
        Batch which of them still run; held work published without job ids is held for the
        assumed hours."""
        if not record or record.get("version") != 2:
            return  # an older record (proxy-wide usage): start afresh
        at = float(record.get("as_of") or self.clock())
        for fid, per in dict(record.get("usage") or {}).items():
            for user, value in dict(per).items():
                self.book.ledger(str(fid)).charge(str(user), float(value), at=at)
        self.book.restore_spent(dict(record.get("spent_settled") or {}))
        urls = [str(u) for u in record.get("urls") or []]
        shown: dict[tuple[str, str], Demand] = {}
        for i, row in enumerate(record.get("open") or []):
            p = Placement.from_list(row, urls)
            self.book.add(f"restored:{i}:{p.federation_id}:{p.target_id}", p)
            if p.until > at:  # as the record's held work was counted
                key = (p.federation_id, p.user)
                shown[key] = shown.get(key, Demand()) + p.demand
        until = self.clock() + self.cfg.fair_share.assumed_job_hours * HOUR
        for fid, per in dict(record.get("held") or {}).items():
            for user, (cores, nodes, tasks) in dict(per).items():
                rest = Demand(float(cores), float(nodes), int(tasks)) - shown.get((fid, user), Demand())
                if rest.tasks or rest.cores > 1e-6 or rest.nodes > 1e-6:  # beyond the published placements: no job id
                    self.book.add(f"restored:{fid}:{user}", Placement(fid, "", user, rest, at, 0.0, 0.0, until))
        self.publish()

    def lead(self, store: Any) -> None:
        """This proxy became the leader: start from what the latest leader published (a
        standby's own view is as old as its start)."""
        record = last_published(store)
        if record is None:
            return
        with self._lock:
            self.book = UsageBook(self.book.half_life)
            self.order.per_federation = self.book
            self._pending, self._asked = {}, {}
        self.restore(record)
