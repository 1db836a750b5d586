"""Capacity snapshots: an account's pools as the scheduler sees them (:class:`PoolSnapshot`).

The proxy refreshes capacity with :meth:`SnapshotOperations.snapshot_pools` for every account
of its federations, so the calls stay few and are counted (see the method), and the listings
are read as JSON (:meth:`~.connection.BatchConnection._rest`): models for a listing of many
pools cost ten times the calls. The translation of what they return is :mod:`.pools`'.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from azure.core.exceptions import AzureError, HttpResponseError

from ..errors import BatchNotFoundError
from ..scheduler.types import PoolSnapshot
from .connection import BatchConnection
from .errors import batch_call, error_code, translate
from .jobs import job_info
from .pools import POOL_SELECT, snapshot

__all__ = ["SnapshotOperations"]


class SnapshotOperations(BatchConnection):
    """Pool snapshots of one account: facts, node counts and (optionally) active tasks."""

    def _active_task_counts(self, pool_ids: Iterable[str]) -> dict[str, int]:
        """Active tasks per pool: one ``list_jobs`` (active jobs of the account, grouped here by
        pool) + one ``get_job_task_counts`` per active job on those pools, up to 8 at once:
        the listing costs the same whatever the number of pools."""
        wanted = {p.lower(): 0 for p in pool_ids}
        if not wanted:
            return {}
        with batch_call(self._what("list active jobs")):
            jobs = list(self._client.list_jobs(filter="state eq 'active'", select=["id", "state", "poolInfo", "executionInfo"]))
        targets: list[tuple[str, str]] = []
        for job in jobs:
            info = job_info(job)
            if info.state == "active" and info.pool_id and info.pool_id.lower() in wanted:
                targets.append((info.id, info.pool_id.lower()))

        def active(job_id: str) -> int:
            try:
                return self._client.get_job_task_counts(job_id).task_counts.active or 0
            except HttpResponseError as exc:
                if error_code(exc) == "JobNotFound":  # deleted since the listing
                    return 0
                raise translate(exc, self._what(f"task counts of job '{job_id}'")) from exc
            except AzureError as exc:
                raise translate(exc, self._what(f"task counts of job '{job_id}'")) from exc

        if len(targets) > 1:
            with ThreadPoolExecutor(max_workers=min(8, len(targets)), thread_name_prefix="batchfed-counts") as ex:
                values = list(ex.map(active, [j for j, _ in targets]))
        else:
            values = [active(j) for j, _ in targets]
        for (_, pool), n in zip(targets, values):
            wanted[pool] += n
        return wanted

    def snapshot_pools(
        self,
        pool_ids: Iterable[str] | None = None,
        *,
        active_tasks: bool = True,
        overrides: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> dict[str, PoolSnapshot]:
        """Snapshots of ``pool_ids`` (all pools when None), keyed by pool id as the service spells it.

        Calls: one ``list_pools`` ($select), one account-level ``list_pool_node_counts`` (Azure
        pages it by 10 pools), and with ``active_tasks`` the active-job listing of
        :meth:`_active_task_counts`. Pools the service does not know are absent from the result.
        ``overrides`` maps pool id → ``vm_size_override`` (wins over the pool's metadata).
        """
        wanted = None if pool_ids is None else {p.lower() for p in pool_ids}
        # read as JSON (see .pools): models for a listing of many pools cost ten times the calls
        what = self._what("list pools")
        with batch_call(what):
            listing = self._pages("/pools", what, {"$select": ",".join(POOL_SELECT)})
            pools = [p for p in listing if p.get("id") and (wanted is None or p["id"].lower() in wanted)]
        if not pools:
            return {}
        what = self._what("list pool node counts")
        with batch_call(what):
            counts = {(nc.get("poolId") or "").lower(): nc for nc in self._pages("/nodecounts", what)}
        active = self._active_task_counts(p["id"] for p in pools) if active_tasks else {}
        lowered = {k.lower(): v for k, v in (overrides or {}).items()}
        out: dict[str, PoolSnapshot] = {}
        for p in pools:
            key = p["id"].lower()
            out[p["id"]] = snapshot(
                p,
                counts.get(key),
                active.get(key) if active_tasks else None,
                service_url=self.service_url,
                account=self.account,
                region=self.region,
                override=lowered.get(key),
            )
        return out

    def snapshot_pool(self, pool_id: str, **kwargs: Any) -> PoolSnapshot:
        found = self.snapshot_pools([pool_id], **kwargs)
        for pid, snap in found.items():
            if pid.lower() == pool_id.lower():
                return snap
        raise BatchNotFoundError(self._what(f"pool '{pool_id}': PoolNotFound"), code="PoolNotFound", status=404)

    def list_pools(self, *, active_tasks: bool = False) -> list[PoolSnapshot]:
        """Every pool of the account as a snapshot, sorted by id."""
        snaps = self.snapshot_pools(None, active_tasks=active_tasks)
        return [snaps[k] for k in sorted(snaps, key=str.lower)]
