"""Usage and spend per federation that follow what really ran (pure, thread-safe).

A placement is charged nothing up front. While its job runs it counts its elapsed time —
its cores × the hours since it was placed, capped at its estimate (cores × max_wall_time,
else the assumed hours) — and the matching share of its estimated cost. When Batch says the
job finished, the proxy measures it (each task's run time × the cores it held, and the
matching cost) and :meth:`UsageBook.settle` replaces the running charge by that measure in
the federation's decayed ledger. A job that was removed through the federation, or is gone
from Batch, is settled at its running charge.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from .budget import month_of
from .demand import Demand
from .fairshare import UsageLedger

HOUR = 3600.0
#: a job started this long before its placement was written belongs to an earlier placement
#: of the same job id (clock skew between the proxy and Batch)
START_SLACK = 60.0
#: a placement Batch never reported finished is settled at its estimate this long after it
#: stopped counting against quotas (its job may have been removed outside the federation)
OPEN_AFTER_RELEASE = 7 * 24 * HOUR


@dataclass(frozen=True, slots=True)
class TaskRun:
    """What a task of a finished job ran: start and end (epoch seconds; end None: unknown)."""

    start: float | None
    end: float | None


@dataclass(frozen=True, slots=True)
class Finished:
    """Batch is done with a job: its tasks' runs (None: the job is gone, nothing to measure)."""

    runs: tuple[TaskRun, ...] | None


@dataclass(frozen=True, slots=True)
class Placement:
    """A placed action's job: held against quotas until ``until``, charged by elapsed time
    until its job finishes. ``slot_cores`` and ``slot_rate`` are one task slot's cores and
    price per hour on its pool; ``task_slots`` the slots a task takes on average."""

    federation_id: str
    target_id: str
    user: str
    demand: Demand
    placed_at: float
    hours: float
    cost: float
    until: float
    service_url: str | None = None
    slot_cores: float = 1.0
    slot_rate: float = 0.0
    task_slots: float = 1.0
    batch_job_id: str | None = None  # the job's id on Batch when a move derived another

    def fraction(self, at: float) -> float:
        """How much of its estimate has run by ``at`` (0…1)."""
        if self.hours <= 0:
            return 1.0
        return min(1.0, max(0.0, at - self.placed_at) / (self.hours * HOUR))

    def running_core_hours(self, at: float) -> float:
        return self.demand.cores * self.hours * self.fraction(at)

    def running_cost(self, at: float) -> float:
        return self.cost * self.fraction(at)

    def as_list(self, urls: dict[str, int]) -> list[Any]:
        url = -1 if self.service_url is None else urls.setdefault(self.service_url, len(urls))
        d = self.demand
        # one short row each: a heartbeat carries up to PUBLISHED_OPEN of them
        return [
            self.federation_id, self.target_id, self.user, url, d.cores, d.nodes, d.tasks, round(self.placed_at, 3),
            self.hours, round(self.cost, 6), round(self.until, 3), self.slot_cores, self.slot_rate, self.task_slots,
        ]  # fmt: skip

    @classmethod
    def from_list(cls, v: Sequence[Any], urls: Sequence[str]) -> Placement:
        fid, job, user, url, cores, nodes, tasks, placed_at, hours, cost, until, slot_cores, slot_rate, task_slots = v
        return cls(
            str(fid), str(job), str(user), Demand(float(cores), float(nodes), int(tasks)), float(placed_at),
            float(hours), float(cost), float(until), None if int(url) < 0 else str(urls[int(url)]),
            float(slot_cores), float(slot_rate), float(task_slots),
        )  # fmt: skip


def measure(runs: Iterable[TaskRun], group: Sequence[Placement], at: float) -> list[tuple[float, float]]:
    """(core-hours, cost) that each placement of one job id in ``group`` ran, once the job
    finished: each task's run time × the cores (and price) of the task slots it held, split
    among the placements in proportion to their estimates (a job id's task groups share one
    job). Tasks that started before the earliest of them belong to placements settled before."""
    since = min(p.placed_at for p in group) - START_SLACK
    weights = [p.demand.cores * p.hours for p in group]
    total = sum(weights)
    # the largest placement's slot stands for the job's (a job id runs on one pool)
    ref = group[max(range(len(group)), key=lambda i: weights[i])]
    seconds = sum(max(0.0, (r.end or at) - r.start) for r in runs if r.start is not None and r.start >= since)
    slot_hours = seconds / HOUR * ref.task_slots
    core_hours, cost = slot_hours * ref.slot_cores, slot_hours * ref.slot_rate
    shares = [w / total if total > 0 else 1.0 / len(group) for w in weights]
    return [(core_hours * f, cost * f) for f in shares]


class UsageBook:
    """Per federation: the decayed ledger of settled usage, the spend per month, and the open
    placements (charged by elapsed time) — everything fair share, budgets and ``share`` read."""

    def __init__(self, half_life: float):
        self.half_life = half_life
        self._lock = threading.Lock()
        self._ledgers: dict[str, UsageLedger] = {}
        self._spent: dict[str, dict[str, dict[str, float]]] = {}  # federation → month → user or group:NAME → spend
        self.open: dict[str, Placement] = {}  # action id → placement not settled yet

    def ledger(self, fid: str) -> UsageLedger:
        with self._lock:
            found = self._ledgers.get(fid)
            if found is None:
                found = self._ledgers[fid] = UsageLedger(self.half_life)
            return found

    def federations(self) -> list[str]:
        with self._lock:
            return sorted(set(self._ledgers) | {p.federation_id for p in self.open.values()})

    def of(self, fid: str) -> FederationUsage:
        """One federation's usage as the claim order weighs it (:meth:`committed`)."""
        return FederationUsage(self, fid)

    # ------------------------------------------------------------------ changes
    def add(self, action_id: str, placement: Placement) -> None:
        with self._lock:
            self.open[action_id] = placement

    def settle(self, action_id: str, core_hours: float, cost: float, at: float, keys: Sequence[str]) -> None:
        """Replace an open placement's running charge by what it measured (``keys``: whom
        its spend counts for: the user, and ``group:NAME`` of their group)."""
        with self._lock:
            p = self.open.pop(action_id, None)
        if p is None:
            return
        self.ledger(p.federation_id).charge(p.user, core_hours, at=at)
        self.spend(p.federation_id, keys, cost, at)

    def settle_running(self, action_id: str, at: float, keys: Sequence[str]) -> None:
        """Settle at the running charge (what ran cannot be measured: removed, or gone)."""
        p = self.open.get(action_id)
        if p is not None:
            self.settle(action_id, p.running_core_hours(at), p.running_cost(at), at, keys)

    def spend(self, fid: str, keys: Sequence[str], cost: float, at: float) -> None:
        with self._lock:
            month = self._spent.setdefault(fid, {}).setdefault(month_of(at), {})
            for key in keys:
                month[key] = round(month.get(key, 0.0) + cost, 6)

    def release(self, action_id: str, until: float) -> None:
        """Stop counting a placement against quotas (it stays open until settled)."""
        with self._lock:
            p = self.open.get(action_id)
            if p is not None and p.until > until:
                self.open[action_id] = replace(p, until=until)

    # ------------------------------------------------------------------ reads
    def usage(self, fid: str, user: str, at: float) -> float:
        """Settled decayed usage plus what the user's open placements have run so far."""
        running = sum(p.running_core_hours(at) for p in self._open_of(fid) if p.user == user)
        return self.ledger(fid).usage(user, at) + running

    def committed(self, fid: str, user: str, at: float) -> float:
        """What the claim order weighs: settled usage plus each open placement's whole
        estimate — work counts as soon as it is granted, so a burst of placements follows
        the shares at once; what a job did not use is given back when it is settled."""
        granted = sum(max(p.demand.cores * p.hours, p.running_core_hours(at)) for p in self._open_of(fid) if p.user == user)
        return self.ledger(fid).usage(user, at) + granted

    def users(self, fid: str) -> list[str]:
        return sorted(set(self.ledger(fid).users()) | {p.user for p in self._open_of(fid)})

    def spent(self, fid: str, at: float, group_of: Any) -> dict[str, float]:
        """This month's spend per user and group:NAME: settled, plus open placements so far."""
        with self._lock:
            out = dict(self._spent.get(fid, {}).get(month_of(at), {}))
        for p in self._open_of(fid):
            for key in keys_of(p.user, group_of(p.user)):
                out[key] = out.get(key, 0.0) + p.running_cost(at)
        return out

    def reserved(self, fid: str, at: float, group_of: Any) -> dict[str, float]:
        """What budgets count: settled spend plus each open placement's whole estimate (it
        may run that long), as Slurm's GrpTRESMins counts running jobs' time limits."""
        with self._lock:
            out = dict(self._spent.get(fid, {}).get(month_of(at), {}))
        for p in self._open_of(fid):
            for key in keys_of(p.user, group_of(p.user)):
                out[key] = out.get(key, 0.0) + max(p.cost, p.running_cost(at))
        return out

    def _open_of(self, fid: str) -> list[Placement]:
        with self._lock:
            return [p for p in self.open.values() if p.federation_id == fid]

    # ------------------------------------------------------------------ persistence
    def settled_snapshot(self, at: float) -> dict[str, dict[str, float]]:
        with self._lock:
            ledgers = dict(self._ledgers)
        return {fid: {u: round(v, 6) for u, v in led.snapshot(at).items()} for fid, led in ledgers.items()}

    def spent_snapshot(self, at: float) -> dict[str, dict[str, dict[str, float]]]:
        with self._lock:
            return {fid: {m: dict(v) for m, v in months.items() if m >= month_of(at)} for fid, months in self._spent.items()}

    def restore_spent(self, spent: Mapping[str, Any]) -> None:
        with self._lock:
            for fid, months in spent.items():
                if isinstance(months, Mapping):
                    self._spent[str(fid)] = {
                        str(m): {str(k): float(v) for k, v in dict(per).items()} for m, per in months.items()
                    }


def keys_of(user: str, group: str | None) -> list[str]:
    """Whom a user's spend counts for: the user, and their group."""
    return [user] + ([f"group:{group}"] if group else [])


class FederationUsage:
    """One federation's committed usage, as fair share reads a ledger (``usage``, ``users``)."""

    def __init__(self, book: UsageBook, fid: str):
        self.book, self.fid = book, fid

    def usage(self, user: str, at: float) -> float:
        return self.book.committed(self.fid, user, at)

    def users(self) -> list[str]:
        return self.book.users(self.fid)
