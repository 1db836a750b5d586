"""What a dispatcher pass does because time passed: pool timers (a resize's allocation delay,
the autoscale interval, preempted nodes coming back, drained nodes leaving), job schedules, and
jobs' maxWallClockTime. Each returns how soon it needs the next pass."""

from __future__ import annotations

import math
import time

from .._util import iso_now, now, parse_duration, parse_iso
from ..model import Pool
from .pools import Pools
from .schedules import Schedules

TICK_SECONDS = 1.0  # the longest a pass waits, and how often every pool is looked at


class Timers(Pools, Schedules):
    def _tick(self) -> float:
        """Do what is due; return seconds until something else will be."""
        mono = time.monotonic()
        pools = self._restless_pools(mono)
        wait = min(TICK_SECONDS, max(0.0, self._next_sweep - mono))  # the next sweep is a timer too
        for pool in pools:
            wait = min(wait, self._tick_pool(pool, mono))
        return min(wait, self._tick_schedules(), self._expire_timed_jobs())

    def _restless_pools(self, mono: float) -> list[Pool]:
        """The pools to look at in this pass: the restless ones, or all of them once a second
        (a safety net for a change that forgot to call :meth:`watch`)."""
        if mono >= self._next_sweep:
            self._next_sweep = mono + TICK_SECONDS
            return [pool for acct in self.accounts.values() for pool in acct.pools.values()]
        pools = []
        for name, key in list(self._restless):
            pool = self.accounts[name].pools.get(key) if name in self.accounts else None
            if pool is None:
                self._restless.discard((name, key))  # deleted
            else:
                pools.append(pool)
        return pools

    def _tick_pool(self, pool: Pool, mono: float) -> float:
        wait = math.inf
        changed = gone = preempted = False
        for node in pool.nodes:
            if node.preempted_until is not None:
                if node.preempted_until <= mono:
                    node.preempted_until = None
                    node.state_time = iso_now()
                    self.begin_start_task(pool, node)  # a returned node is a fresh VM
                    changed = True
                else:
                    wait = min(wait, node.preempted_until - mono)
                    preempted = True
            if node.leaving and not node.runs:
                gone = True
        if pool.formula is not None and pool.next_autoscale is not None:
            if pool.next_autoscale <= mono:
                self.autoscale_now(pool)
            wait = min(wait, max(0.0, (pool.next_autoscale or mono) - mono))
        if pool.resize is not None:
            if pool.resize["due"] <= mono:
                self._apply_resize(pool)
            else:
                wait = min(wait, pool.resize["due"] - mono)
        if gone:  # drained nodes leave the pool
            for node in [n for n in pool.nodes if n.leaving and not n.runs]:
                self.release_node(node)
            pool.nodes[:] = [n for n in pool.nodes if not (n.leaving and not n.runs)]
            changed = True
        self.refresh_pool_counts(pool)
        if changed:
            self.save_pool(pool)
        # quiet once nothing is pending: no timer, no preempted or draining node
        if preempted or pool.resize is not None or pool.formula is not None or any(n.leaving for n in pool.nodes):
            self._restless.add((pool.account, pool.key))
        else:
            self._restless.discard((pool.account, pool.key))
        return wait

    def _tick_schedules(self) -> float:
        wait = math.inf
        for acct in self.accounts.values():
            for sched in list(acct.schedules.values()):
                nxt = self.schedule_tick(sched)
                if nxt is not None:
                    wait = min(wait, nxt)
        return wait

    def _expire_timed_jobs(self) -> float:
        """Terminate the jobs past their maxWallClockTime (reason MaxWallClockTimeExpiry)."""
        wait = math.inf
        wall = now()
        for job in list(self._timed_jobs):
            if job.state != "active":
                self._timed_jobs.discard(job)
                continue
            limit = (job.doc.get("constraints") or {}).get("maxWallClockTime")
            if limit:
                age = (wall - parse_iso(job.doc["creationTime"])).total_seconds()
                left = parse_duration(limit, "constraints.maxWallClockTime") - age
                if left <= 0:
                    self.terminate_job(job, "MaxWallClockTimeExpiry")
                    continue
                wait = min(wait, left)
        return wait
