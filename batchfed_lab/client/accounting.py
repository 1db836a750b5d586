"""A shared federation's accounts: estimated cost from task run times, and the fair-share
view of its users, from the store and what the leading proxy publishes."""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from ..accounting.budget import month_of
from ..accounting.cost import pool_burn_rate, task_cost
from ..accounting.fairshare import UNKNOWN_USER, Shares, UsageLedger, factors
from ..accounting.prices import default_prices
from ..accounting.published import held_of, last_published
from ..errors import ConfigError
from ..scheduler.types import PoolSnapshot, pool_key
from ..store import ActionKind, ActionState
from .pools import PoolsMixin

if TYPE_CHECKING:
    import pandas as pd


class AccountingMixin(PoolsMixin):
    def _owners(self, federation_id: str) -> dict[str, str | None]:
        return {a.id: a.submitter for a in self.store.list_actions(federation_id, states=[ActionState.PLACED])}

    def cost_rows(self, federation_id: str) -> list[dict[str, Any]]:
        """One record per task of every placed job, with its estimated cost (see :meth:`cost_frame`)."""
        self.store.get_federation(federation_id)
        prices, now = default_prices(), time.time()
        snaps = {s.key: s for s in self.pool_snapshots(federation_id, active_tasks=False)}
        owners = self._owners(federation_id)
        rows = []
        for loc in self.store.get_locations(federation_id, kind=ActionKind.JOB):
            snap = snaps.get(pool_key(loc.batch_service_url, loc.pool_id))
            facts = None if snap is None else snap.facts
            price = None if facts is None else prices.price_of(facts)
            kind = (
                "low_priority" if facts is not None and facts.target_dedicated == 0 and facts.target_low_priority else "dedicated"
            )
            rate = None if price is None else price.rate(kind)
            who = next((owners[u] for u in loc.unique_ids if owners.get(u)), None)
            for t in self.account(loc.batch_service_url).list_tasks(loc.batch_id):
                end = t.end_time.timestamp() if t.end_time else now
                run = max(0.0, end - t.start_time.timestamp()) if t.start_time else 0.0
                slots = facts.task_slots_per_node if facts is not None else 1
                rows.append(
                    {
                        "job_id": loc.job_id,
                        "submitter": who,
                        "pool_id": loc.pool_id,
                        "location": loc.location,
                        "vm_size": None if facts is None else facts.vm_size,
                        "task_id": t.id,
                        "state": t.state,
                        "node_kind": kind,
                        "run_s": run,
                        "price_per_hour": rate,
                        "est_cost": None if rate is None else task_cost(seconds=run, node_rate=rate, slots_per_node=slots),
                    }
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
        ledger = UsageLedger(
            3600.0 * float(cfg.get("half_life_hours") or 168),
            {u: (float(v), now) for u, v in (record.get("usage") or {}).items()},
        )
        work: dict[str, dict[str, int]] = {}
        for a in self.store.list_actions(federation_id):
            counts = work.setdefault(a.submitter or UNKNOWN_USER, {"queued": 0, "blocked": 0, "placed": 0})
            if a.state.value in counts:
                counts[a.state.value] += 1
        users = sorted(set(work) | set(ledger.users()))
        fs = factors(users, ledger, shares, now)
        total_usage = sum(ledger.usage(u, now) for u in fs) or 0.0
        total_shares = sum(shares.of(u) for u in fs) or 1.0
        held = held_of(record, federation_id)
        spent = (record.get("spent") or {}).get(month_of(now)) or {}
        budgets = (record.get("budgets") or {}).get("users") or {}
        return [
            {
                "user": u,
                "group": shares.group_of(u),
                "shares": shares.of(u),
                "norm_shares": shares.of(u) / total_shares,
                "usage": ledger.usage(u, now),
                "norm_usage": ledger.usage(u, now) / total_usage if total_usage else 0.0,
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
