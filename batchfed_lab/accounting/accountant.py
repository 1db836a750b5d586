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
from .budget import budget_verdict, month_of
from .cost import job_cost
from .demand import Demand, charged_hours, job_demand
from .fairshare import UNKNOWN_USER, FairShareOrder, Shares, UsageLedger
from .prices import default_prices
from .priority import Aging
from .published import last_published
from .quota import quota_verdict, waiting

HOUR = 3600.0
#: an admitted placement counts against quotas and budgets until it is written, or this long
#: (a placement that failed meanwhile is never written: its admission lapses)
PENDING_SECONDS = 600.0
#: how often Batch is asked, at most, whether one held job has finished
REAP_SECONDS = 10.0


@dataclass(frozen=True, slots=True)
class Pending:
    """An admitted placement: charged, and held against quotas, once it is written."""

    federation_id: str
    target_id: str
    user: str
    demand: Demand
    core_hours: float
    hours: float
    cost: float
    at: float
    service_url: str | None = None  # where the job runs (None: a job schedule)


@dataclass(frozen=True, slots=True)
class Held:
    """Placed work counted against quotas until its job is removed or its hours pass."""

    federation_id: str
    target_id: str
    user: str
    demand: Demand
    until: float
    service_url: str | None = None


def shares_of(cfg: Accounting) -> Shares:
    fs = cfg.fair_share
    return Shares(users=dict(fs.shares), groups={g: (v.share, v.members) for g, v in fs.groups.items()})


class Accountant:
    def __init__(
        self,
        cfg: Accounting,
        *,
        clock: Callable[[], float] = time.time,
        info: dict[str, Any] | None = None,
        finished: Callable[[str, str], bool] | None = None,
    ):
        """``finished(service_url, job_id)``: whether Batch has finished a placed job (the
        proxy's; without it, held work is released by removal or when its hours pass)."""
        self.cfg = cfg
        self.finished = finished
        self._asked: dict[str, float] = {}  # action id → when Batch was last asked about its job
        self.clock = clock
        self.shares = shares_of(cfg)
        self.ledger = UsageLedger(cfg.fair_share.half_life_hours * HOUR)
        self.order = FairShareOrder(self.shares, self.ledger, Aging(cfg.priority_aging_seconds), enabled=cfg.fair_share.enabled)
        self.info = info if info is not None else {}
        self._lock = threading.Lock()
        self._pending: dict[str, Pending] = {}
        self._held: dict[str, Held] = {}  # action id → what its placement holds
        self._spent: dict[str, dict[str, float]] = {}  # month → user or group:NAME → estimated spend
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
            self._reap(fid, user)  # Batch calls: outside the lock
        with self._lock:
            reason = self._quota(fid, user, demand)
            if reason is not None:
                return waiting(decision, chosen.key, reason, "quota")
            cost = job_cost(demand, chosen.facts, self.prices.price_of(chosen.facts), decision.node_kind, hours=hours) or 0.0
            reason = budget_verdict(user, self.shares.group_of(user), cost, self._committed(), self.cfg.budgets)
            if reason is not None:
                return waiting(decision, chosen.key, reason, "budget")
            url = chosen.facts.service_url if str(getattr(action, "kind", "job")) == "job" else None
            self._pending[action.id] = Pending(
                fid, action.target_id, user, demand, demand.cores * hours, hours, cost, self.clock(), url
            )
        return None

    def _quota(self, fid: str, user: str, demand: Demand) -> str | None:
        held_user, held_fed = self._holdings(fid, user)
        return quota_verdict(user, fid, demand, held_user, held_fed, self.cfg.quotas)

    def _reap(self, fid: str, user: str) -> None:
        """Release the held jobs Batch says are finished (each asked at most every
        ``REAP_SECONDS``): work counts while it runs or is placed and not finished."""
        if self.finished is None:
            return
        now = self.clock()
        with self._lock:
            ask = [
                (aid, h.service_url, h.target_id)
                for aid, h in self._held.items()
                if h.federation_id == fid and h.service_url and now - self._asked.get(aid, -REAP_SECONDS) >= REAP_SECONDS
            ]
            self._asked.update({aid: now for aid, _, _ in ask})
        done = [aid for aid, url, job_id in ask if url and self.finished(url, job_id)]
        with self._lock:
            for aid in done:
                self._held.pop(aid, None)
                self._asked.pop(aid, None)

    def placed(self, action: Any) -> None:
        """The placement is written: charge its user and hold its demand."""
        now = self.clock()
        with self._lock:
            p = self._pending.pop(action.id, None)
            if p is not None:
                self._held[action.id] = Held(p.federation_id, p.target_id, p.user, p.demand, now + p.hours * HOUR, p.service_url)
                self._spend(p.user, p.cost, now)
        if p is None:  # a retry that found its pool in the journal: charged by the earlier run, if at all
            return
        self.ledger.charge(p.user, p.core_hours, at=now)
        self.publish()

    def _spend(self, user: str, cost: float, at: float) -> None:
        month = self._spent.setdefault(month_of(at), {})
        group = self.shares.group_of(user)
        for key in [user] + ([f"group:{group}"] if group else []):
            month[key] = round(month.get(key, 0.0) + cost, 6)

    def removed(self, action: Any) -> None:
        """A terminate or delete of the job id was carried out: its work no longer counts."""
        with self._lock:
            for aid in [
                k for k, h in self._held.items() if (h.federation_id, h.target_id) == (action.federation_id, action.target_id)
            ]:
                del self._held[aid]
        self.publish()

    def _holdings(self, fid: str, user: str) -> tuple[Demand, Demand]:
        """(the user's, the federation's) held demand now; forgets work whose hours passed."""
        now = self.clock()
        for aid in [k for k, h in self._held.items() if h.until <= now]:
            del self._held[aid]
        for aid in [k for k, p in self._pending.items() if p.at + PENDING_SECONDS <= now]:
            del self._pending[aid]
        mine, everyone = Demand(), Demand()
        work: list[Held | Pending] = [*self._held.values(), *self._pending.values()]
        for h in work:
            if h.federation_id == fid:
                everyone = everyone + h.demand
                if h.user == user:
                    mine = mine + h.demand
        return mine, everyone

    def _committed(self) -> dict[str, float]:
        """This month's estimated spend per user and group:NAME, admitted placements included."""
        spent = dict(self._spent.get(month_of(self.clock()), {}))
        for p in self._pending.values():
            group = self.shares.group_of(p.user)
            for key in [p.user] + ([f"group:{group}"] if group else []):
                spent[key] = spent.get(key, 0.0) + p.cost
        return spent

    def holdings(self) -> dict[str, dict[str, Demand]]:
        """Federation → user → held demand, now."""
        out: dict[str, dict[str, Demand]] = {}
        with self._lock:
            self._holdings("", "")
            for h in self._held.values():
                per = out.setdefault(h.federation_id, {})
                per[h.user] = per.get(h.user, Demand()) + h.demand
        return out

    # ------------------------------------------------------------------ persistence
    def published(self) -> dict[str, Any]:
        now = self.clock()
        held = {f: {u: [d.cores, d.nodes, d.tasks] for u, d in per.items()} for f, per in self.holdings().items()}
        return {
            "as_of": now,
            "usage": {u: round(v, 6) for u, v in self.ledger.snapshot(now).items()},
            "held": held,
            "spent": {m: dict(v) for m, v in self._spent.items() if m >= month_of(now)},
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
        """Take back what an earlier leader published (its heartbeat's ``accounting``)."""
        if not record:
            return
        at = float(record.get("as_of") or self.clock())
        for user, value in dict(record.get("usage") or {}).items():
            self.ledger.charge(str(user), float(value), at=at)
        for month, spent in dict(record.get("spent") or {}).items():
            self._spent[str(month)] = {str(k): float(v) for k, v in dict(spent).items()}
        # held work comes back as one entry per (federation, user), held for the assumed hours:
        # its job ids are not published, so a removal cannot release it before
        until = self.clock() + self.cfg.fair_share.assumed_job_hours * HOUR
        for fid, per in dict(record.get("held") or {}).items():
            for user, (cores, nodes, tasks) in dict(per).items():
                self._held[f"restored:{fid}:{user}"] = Held(fid, "", user, Demand(cores, nodes, int(tasks)), until)
        self.publish()

    def lead(self, store: Any) -> None:
        """This proxy became the leader: start from what the latest leader published (a
        standby's own view is as old as its start)."""
        record = last_published(store)
        if record is None:
            return
        with self._lock:
            self.ledger = UsageLedger(self.ledger.half_life)
            self.order.ledger = self.ledger
            self._spent, self._held, self._pending = {}, {}, {}
        self.restore(record)
