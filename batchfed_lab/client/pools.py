"""The pools of a federation (membership, live capacity, blackouts) and the pools of one
Batch account, in a federation or not (list, create, delete, resize)."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError, NotFoundError
from ..results import PoolChange, PoolOperation
from ..scheduler.types import PoolSnapshot
from ..store import PoolMember
from .base import ClientBase
from .inputs import a_pool, pool_configs

if TYPE_CHECKING:
    import pandas as pd

    from ..batch import BatchAccount

log = logging.getLogger("batchfed.client")


class PoolsMixin(ClientBase):
    """Pools of a federation and of a Batch account."""

    def default_service_url(self, account: str = "local") -> str:
        """The embedded localbatch URL of ``account`` (localbatch must be running)."""
        from .. import localbatch

        return localbatch.account_url(account, self.workspace)

    def add_pools(
        self,
        federation_id: str,
        *,
        pool_config: Any = None,
        pool_ids: Sequence[str] = (),
        batch_service_url: str | None = None,
        account: str | None = None,
        create: bool = False,
    ) -> PoolChange:
        """Add pools by pool.yaml (one or a list; their ids) or by ids + a service URL.

        Account and region come from the URL (Azure) or from the pool itself (localbatch's
        location). ``account`` names a localbatch account instead of a URL (default
        ``local``). ``create`` first creates, from their pool.yaml, the pools the account
        does not have yet. All or none: a missing or duplicate pool adds nothing.
        """
        self.store.get_federation(federation_id)  # unknown federation: clear error first
        configs = pool_configs(pool_config)
        ids = list(pool_ids)
        if configs and ids:
            raise ConfigError("give either pool configs or pool ids, not both")
        if configs:
            ids = [c.pool_specification.id for c in configs]
        if not ids:
            raise ConfigError("no pool given: use --pool-config or one or more --pool-id")
        if create and not configs:
            raise ConfigError("creating pools needs their pool.yaml (--pool-config)")
        acct = self._pool_account(batch_service_url, account)
        if create:
            have = {p.lower() for p in acct.snapshot_pools(ids, active_tasks=False)}
            for c in configs:
                if c.pool_specification.id.lower() not in have:
                    acct.create_pool(c.pool_specification, exists_ok=True)
        snaps = acct.snapshot_pools(ids, active_tasks=False)
        found = {k.lower(): v for k, v in snaps.items()}
        members = []
        for pid in ids:
            snap = found.get(pid.lower())
            if snap is None:
                hint = "; add --create to create it from its pool.yaml" if configs else ""
                raise NotFoundError(f"pool '{pid}' does not exist at {acct.service_url}{hint}")
            members.append(
                PoolMember(federation_id, acct.service_url, snap.pool_id, account=acct.account, location=snap.facts.location)
            )
        return PoolChange(tuple(self.store.add_pools(federation_id, members)))

    def remove_pools(
        self, federation_id: str, pool_ids: Sequence[str] = (), *, all: bool = False, batch_service_url: str | None = None
    ) -> PoolChange:
        """Remove pools (by id, optionally of one service URL) or ``all`` of them. Warns when
        jobs still live on a removed pool (their Batch jobs are not touched)."""
        if all and pool_ids:
            raise ConfigError("--all cannot be combined with pool ids")
        if not all and not pool_ids:
            raise ConfigError("name the pools to remove (--pool-id), or use --all")
        members = self.store.list_pools(federation_id)
        chosen: list[PoolMember] = []
        if all:
            chosen = members
        for pid in pool_ids:
            want_url = None if batch_service_url is None else batch_service_url.rstrip("/").lower()
            match = [
                m
                for m in members
                if m.pool_id.lower() == pid.lower() and (want_url is None or m.batch_service_url.lower() == want_url)
            ]
            if not match:
                raise NotFoundError(f"pool '{pid}' is not in federation '{federation_id}'")
            chosen += match
        keys = {(m.batch_service_url.lower(), m.pool_id.lower()) for m in chosen}
        live: dict[str, list[str]] = {}
        for loc in self.store.get_locations(federation_id):
            if loc.terminated_at is None and (loc.batch_service_url.lower(), loc.pool_id.lower()) in keys:
                live.setdefault(loc.pool_id, []).append(loc.job_id)
        removed = self.store.remove_pools(federation_id, None if all else [(m.batch_service_url, m.pool_id) for m in chosen])
        warnings = tuple(
            f"pool {pool} still runs job(s) of {federation_id}: {', '.join(sorted(jobs))}" for pool, jobs in sorted(live.items())
        )
        for w in warnings:
            log.info(w)
        return PoolChange(tuple(removed), warnings)

    def pools(self, federation_id: str) -> list[PoolMember]:
        """The pool members of a federation (no Batch call)."""
        return self.store.list_pools(federation_id)

    def blackouts(self) -> dict[str, float]:
        """Pools in their post-placement blackout, as the leading proxy last reported them:
        pool key → epoch seconds. Empty when no proxy publishes them."""
        now = time.time()
        out: dict[str, float] = {}
        for rec in self.store.list_proxies():
            for key, until in ((rec.info or {}).get("blackouts") or {}).items():
                if isinstance(until, (int, float)) and until > now:
                    out[key] = max(until, out.get(key, 0.0))
        return out

    def pool_snapshots(self, federation_id: str, *, active_tasks: bool = True) -> list[PoolSnapshot]:
        """Live capacity of every pool of the federation (a few calls per account, whatever
        the number of pools), with the proxy's blackouts when it publishes them."""
        from dataclasses import replace

        from ..proxy import live_snapshots

        snaps = live_snapshots(self.store.list_pools(federation_id), self.account, active_tasks=active_tasks)
        blackouts = self.blackouts()
        if blackouts:
            snaps = [replace(s, blackout_until=blackouts[s.key]) if s.key in blackouts else s for s in snaps]
        return snaps

    def pools_frame(self, federation_id: str) -> pd.DataFrame:
        """Pools with live capacity (see :func:`batchfed_lab.frames.pools_frame`)."""
        from ..frames import pools_frame

        fed = self.store.get_federation(federation_id)
        return pools_frame(fed.id, self.pool_snapshots(fed.id))

    # -- the pools of one Batch account, in a federation or not ------------------------
    def _pool_account(self, batch_service_url: str | None, account: str | None) -> BatchAccount:
        """An Azure Batch account by URL, or a localbatch account by name (default ``local``)."""
        if batch_service_url and account:
            raise ConfigError("give either a batch service URL or a localbatch account, not both")
        return self.account(batch_service_url or self.default_service_url(account or "local"))

    def account_pools(self, *, batch_service_url: str | None = None, account: str | None = None) -> list[PoolSnapshot]:
        """Every pool of a Batch account with its nodes and backlog, sorted by id."""
        return self._pool_account(batch_service_url, account).list_pools(active_tasks=True)

    def create_pool(
        self, pool_config: Any, *, batch_service_url: str | None = None, account: str | None = None, exists_ok: bool = False
    ) -> PoolOperation:
        """Create the pool a pool.yaml describes; ``changed`` is False when it existed (``exists_ok``)."""
        spec = a_pool(pool_config).pool_specification
        acct = self._pool_account(batch_service_url, account)
        return PoolOperation(spec.id, acct.service_url, acct.create_pool(spec, exists_ok=exists_ok))

    def delete_pool(self, pool_config: Any, *, batch_service_url: str | None = None, account: str | None = None) -> PoolOperation:
        """Start deleting the pool a pool.yaml names; ``changed`` is False when it is gone already."""
        spec = a_pool(pool_config).pool_specification
        acct = self._pool_account(batch_service_url, account)
        return PoolOperation(spec.id, acct.service_url, acct.delete_pool(spec.id))

    def resize_pool(
        self,
        pool_config: Any,
        *,
        batch_service_url: str | None = None,
        account: str | None = None,
        dedicated: int | None = None,
        low_priority: int | None = None,
    ) -> PoolOperation:
        """Start resizing the pool a pool.yaml names to its ``vm_count`` (or the given targets)."""
        if min(dedicated or 0, low_priority or 0) < 0:
            raise ConfigError("node counts cannot be negative")
        spec = a_pool(pool_config).pool_specification
        dedicated = spec.vm_count.dedicated if dedicated is None else dedicated
        low_priority = spec.vm_count.low_priority if low_priority is None else low_priority
        acct = self._pool_account(batch_service_url, account)
        acct.resize_pool(spec.id, dedicated=dedicated, low_priority=low_priority)
        return PoolOperation(spec.id, acct.service_url, True, dedicated, low_priority)
