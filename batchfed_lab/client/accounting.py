"""A shared federation's accounts: estimated cost from task run times, and the fair-share
view of its users, from the store and what the leading proxy publishes."""

from __future__ import annotations

import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from ..accounting.cost import pool_burn_rate, task_cost
from ..accounting.fairshare import UNKNOWN_USER, Shares, UsageLedger, factors
from ..accounting.prices import default_prices
from ..accounting.published import committed_of, held_of, last_published, spent_of, usage_of
from ..errors import ConfigError
from ..scheduler.types import PoolSnapshot, pool_key, url_key
from ..store import ActionKind, ActionState
from ..store.records import Location
from .pools import PoolsMixin

if TYPE_CHECKING:
    import pandas as pd

    from ..batch import TaskInfo


class AccountingMixin(PoolsMixin):
    _job_states: dict[tuple[str, str], str]  # (service URL, job id) → state, from the last listings

    def _owners(self, federation_id: str) -> dict[str, str | None]:
        return {a.id: a.submitter for a in self.store.list_actions(federation_id, states=[ActionState.PLACED])}

    def _placed_jobs(self, federation_id: str) -> list[tuple[Location, str]]:
        """(location, Batch job id) of every placed job, and of every job the placed job
        schedules' recurrences created: one job listing per account, whatever the number."""
        locations = self.store.get_locations(federation_id)
        listings = {url: self.account(url).list_jobs() for url in sorted({loc.batch_service_url for loc in locations})}
        out: list[tuple[Location, str]] = []
        for loc in locations:
            # a job id may live on several pools of one account (federations without unique ids)
            there = [j for j in listings[loc.batch_service_url] if (j.pool_id or loc.pool_id).lower() == loc.pool_id.lower()]
            if loc.kind is ActionKind.JOB_SCHEDULE:
                prefix = f"{loc.job_id.lower()}:"  # Batch names a recurrence's job <schedule>:job-N
                out.extend((loc, j.id) for j in there if j.id.lower().startswith(prefix))
            elif any(j.id.lower() == loc.batch_id.lower() for j in there):
                out.append((loc, loc.batch_id))  # a move within an account derived another id
        self._job_states = {(url_key(u), j.id.lower()): j.state for u, there in listings.items() for j in there}
        return out

    def _task_lists(self, jobs: list[tuple[Location, str]]) -> dict[tuple[str, str], list[TaskInfo]]:
        """The tasks of each job: one task listing per job (8 at a time); a completed job's
        tasks no longer change, so they are read once per client."""
        cache: dict[tuple[str, str], list[TaskInfo]] = self.__dict__.setdefault("_finished_tasks", {})
        keys = {(url_key(loc.batch_service_url), job_id.lower()): (loc.batch_service_url, job_id) for loc, job_id in jobs}
        todo = [k for k in keys if k not in cache]

        def read(key: tuple[str, str]) -> list[TaskInfo]:
            url, job_id = keys[key]
            return self.account(url).list_tasks(job_id)

        with ThreadPoolExecutor(max_workers=8, thread_name_prefix="batchfed-cost") as pool:
            found = dict(zip(todo, pool.map(read, todo)))
        for key, tasks in found.items():
            if self._job_states.get(key) == "completed":
                cache[key] = tasks
        return {k: cache[k] if k in cache else found[k] for k in keys}

    def cost_rows(self, federation_id: str) -> list[dict[str, Any]]:
        """One record per task of every placed job (and of the jobs of placed job schedules),
        with its estimated cost (see :meth:`cost_frame`)."""
        self.store.get_federation(federation_id)
        prices, now = default_prices(), time.time()
        snaps = {s.key: s for s in self.pool_snapshots(federation_id, active_tasks=False)}
        owners = self._owners(federation_id)
        jobs = self._placed_jobs(federation_id)
        tasks = self._task_lists(jobs)
        rows = []
        for loc, job_id in jobs:
            snap = snaps.get(pool_key(loc.batch_service_url, loc.pool_id))
            facts = None if snap is None else snap.facts
            price = None if facts is None else prices.price_of(facts)
            kind = (
                "low_priority" if facts is not None and facts.target_dedicated == 0 and facts.target_low_priority else "dedicated"
            )
            rate = None if price is None else price.rate(kind)
            slots = facts.task_slots_per_node if facts is not None else 1
            where = {
                "job_id": loc.job_id if loc.kind is ActionKind.JOB else job_id,
                "submitter": next((owners[u] for u in loc.unique_ids if owners.get(u)), None),
                "pool_id": loc.pool_id,
                "location": loc.location,
                "vm_size": None if facts is None else facts.vm_size,
            }
            for t in tasks[(url_key(loc.batch_service_url), job_id.lower())]:
                end = t.end_time.timestamp() if t.end_time else now
                run = max(0.0, end - t.start_time.timestamp()) if t.start_time else 0.0
                cost = None if rate is None else task_cost(seconds=run, node_rate=rate, slots_per_node=slots)
                rows.append(
                    {**where, "task_id": t.id, "state": t.state, "node_kind": kind, "run_s": run, "price_per_hour": rate}
                    | {"est_cost": cost}
                )
        return rows

    def cost_frame(self, federation_id: str, by: str | None = None) -> pd.DataFrame:
        """Estimated cost from task run times and node prices, per task or by ``user``,
        ``job`` or ``pool`` (see :func:`batchfed_lab.frames.cost_frame`). Estimates, not a bill."""
        from ..frames import COST_BY, cost_frame

        if by is not None and by not in COST_BY:
            raise ConfigError(f"--by: {by!r} is not one of {', '.join(COST_BY)}")
        return cost_frame(self.cost_rows(federation_id), by, as_of=default_prices().as_of)

    def burn_rate(self, snapshots: Iterable[PoolSnapshot]) -> float | None:
        """What the pools' allocated nodes cost per hour now: an ESTIMATE from list prices
        (None when no pool has a price)."""
        prices = default_prices()
        rates = [r for s in snapshots if (r := pool_burn_rate(s, prices.price_of(s.facts))) is not None]
        return sum(rates) if rates else None

    def share_rows(self, federation_id: str) -> list[dict[str, Any]]:
        """One record per user with queued or placed work or usage (see :meth:`share_frame`)."""
        self.store.get_federation(federation_id)
        record = last_published(self.store) or {}
        cfg = record.get("shares") or {}
        groups = {g: (float(v.get("share", 1)), tuple(v.get("members") or ())) for g, v in (cfg.get("groups") or {}).items()}
        shares = Shares(users=dict(cfg.get("shares") or {}), groups=groups)
        now = float(record.get("as_of") or time.time())
        ran = usage_of(record, federation_id)
        # the factor is the claim order's: usage plus the unrun rest of running placements
        committed = UsageLedger(3600.0, {u: (v, now) for u, v in committed_of(record, federation_id).items()})
        work: dict[str, dict[str, int]] = {}
        for a in self.store.list_actions(federation_id):
            counts = work.setdefault(a.submitter or UNKNOWN_USER, {"queued": 0, "blocked": 0, "placed": 0})
            if a.state.value in counts:
                counts[a.state.value] += 1
        users = sorted(set(work) | set(ran))
        fs = factors(users, committed, shares, now)
        total_usage = sum(ran.get(u, 0.0) for u in fs) or 0.0
        total_shares = sum(shares.of(u) for u in fs) or 1.0
        held = held_of(record, federation_id)
        spent = spent_of(record, federation_id)
        budgets = (record.get("budgets") or {}).get("users") or {}
        return [
            {
                "user": u,
                "group": shares.group_of(u),
                "shares": shares.of(u),
                "norm_shares": shares.of(u) / total_shares,
                "usage": ran.get(u, 0.0),
                "norm_usage": ran.get(u, 0.0) / total_usage if total_usage else 0.0,
                "fair_share": fs[u],
                **work.get(u, {"queued": 0, "blocked": 0, "placed": 0}),
                "held_cores": held[u].cores if u in held else 0.0,
                "spent": spent.get(u, 0.0),
                "budget": budgets.get(u),
            }
            for u in users
        ]

    def share_frame(self, federation_id: str) -> pd.DataFrame:
        """``%fed share`` (like Slurm's sshare): users, shares, recent usage, fair-share
        factor, queued and running work (see :func:`batchfed_lab.frames.share_frame`)."""
        from ..frames import share_frame

        return share_frame(self.share_rows(federation_id))
