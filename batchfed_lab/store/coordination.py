"""What proxies coordinate through, whatever the backend: the leader lease, the proxies'
status records and the suspend flag, and the change signals a waiting proxy wakes on. A mixin
of :class:`~.base.Store`; the backend provides the ``_``-prefixed primitives."""

from __future__ import annotations

import dataclasses
import threading
import time
from typing import ClassVar

from ..errors import ClaimLostError, StoreError
from . import rules
from .primitives import StorePrimitives
from .records import Lease, Marks, ProxyRecord, utc

DEFAULT_LEASE_TTL = 15.0


class Coordination(StorePrimitives):
    backend: ClassVar[str]
    #: seconds a lease may last on this backend (Azure blob leases: 15-60)
    lease_ttl_range: ClassVar[tuple[float, float]] = (0.05, 3600.0)
    #: how often ``wait_for_change`` looks at the backend while nothing happens locally
    poll_interval: float = 0.002

    def now(self) -> float:  # the store's clock (:meth:`Store.now`)
        raise NotImplementedError

    def _init_signals(self) -> None:
        self._local = threading.Condition()
        self._local_version = 0
        self._looked_at = 0.0  # time.monotonic() of the last look at the backend's marks

    def _notify_local(self) -> None:
        """Wake this process's waiters at once (other processes see the backend change)."""
        with self._local:
            self._local_version += 1
            self._local.notify_all()

    # ------------------------------------------------------------------ leader lease
    def _lease_args(self, name: str, holder: str, ttl: float | None = None) -> tuple[str, str, float]:
        secs = DEFAULT_LEASE_TTL if ttl is None else rules.ttl(ttl, "lease ttl")
        low, high = self.lease_ttl_range
        if not low <= secs <= high:
            raise StoreError(f"lease ttl {secs:g}s: the {self.backend} store supports {low:g}-{high:g} seconds")
        return rules.lease_name(name), rules.holder(holder), secs

    def acquire_lease(self, name: str, holder: str, *, ttl: float = DEFAULT_LEASE_TTL) -> Lease | None:
        """Take the lease if it is free or expired (or extend it if ``holder`` has it);
        None when someone else holds it."""
        return self._lease_acquire(*self._lease_args(name, holder, ttl), self.now())

    def renew_lease(self, name: str, holder: str, *, ttl: float = DEFAULT_LEASE_TTL) -> Lease:
        """Extend a lease ``holder`` has (also just after expiry if nobody took it over);
        ClaimLostError when it is someone else's or free."""
        lease = self._lease_renew(*self._lease_args(name, holder, ttl), self.now())
        if lease is None:
            raise ClaimLostError(f"lease {name!r} is no longer held by {holder!r}")
        return lease

    def release_lease(self, name: str, holder: str) -> bool:
        """Free the lease only if ``holder`` still has it; True when it did."""
        n, h, _ = self._lease_args(name, holder)
        return self._lease_release(n, h, self.now())

    def get_lease(self, name: str) -> Lease | None:
        """The live lease (holder and expiry), or None when free or expired."""
        return self._lease_get(rules.lease_name(name), self.now())

    # ------------------------------------------------------------------ proxies, suspend flag
    def heartbeat(self, record: ProxyRecord) -> ProxyRecord:
        """Write a proxy's status record with ``heartbeat_at`` = now."""
        pid = rules.name(record.proxy_id, "proxy id")
        rules.dump_json(record.counters, "proxy counters", rules.MAX_JSON_FIELD_BYTES)
        rules.dump_json(record.info, "proxy info", rules.MAX_JSON_FIELD_BYTES)
        rec = dataclasses.replace(record, proxy_id=pid, heartbeat_at=utc(self.now()))
        self._put_proxy(rec)
        return rec

    def get_proxy(self, proxy_id: str) -> ProxyRecord | None:
        return self._get_proxy(rules.name(proxy_id, "proxy id"))

    def list_proxies(self) -> list[ProxyRecord]:
        return sorted(self._list_proxies(), key=lambda r: r.proxy_id)

    def remove_proxy(self, proxy_id: str) -> bool:
        return self._remove_proxy(rules.name(proxy_id, "proxy id"))

    def set_suspended(self, suspended: bool) -> None:
        """The global suspend flag: a suspended proxy claims nothing (within a second: a
        backend may trust the flag it read that long, unless it saw the control mark move)."""
        self._set_flag("suspended", bool(suspended))
        self._notify_local()

    def is_suspended(self) -> bool:
        return bool(self._get_flag("suspended"))

    # ------------------------------------------------------------------ change signals
    def change_marks(self) -> Marks:
        """Cheap snapshot of what changed: federations/pools, actions, control flags."""
        return self._marks()

    def wait_for_change(self, since: Marks | None = None, *, timeout: float = 1.0) -> Marks:
        """Block until the marks differ from ``since`` (at once if they already do) or
        ``timeout`` passes; returns the current marks either way. The backend is looked at
        at most every ``poll_interval`` (this process's own changes are seen at once), so a
        busy process that keeps waking its watcher does not read the backend each time."""
        current = self._marks() if self._look_due() else self._local_marks()
        if since is None or current != since:
            return current
        deadline = time.monotonic() + max(0.0, timeout)
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return current
            with self._local:
                seen = self._local_version

                def moved(seen: int = seen) -> bool:
                    return self._local_version != seen

                self._local.wait_for(moved, timeout=min(self.poll_interval, remaining))
                local_change = self._local_version != seen
            if self._look_due():
                if self._poll_changed() or local_change:
                    current = self._marks()
            elif local_change:
                current = self._local_marks()
            if current != since:
                return current

    def _look_due(self) -> bool:
        """Is it time to look at the backend again (and count this as the look)?"""
        now = time.monotonic()
        if now - self._looked_at < self.poll_interval:
            return False
        self._looked_at = now
        return True

    def _local_marks(self) -> Marks:
        """The marks as this process knows them between looks at the backend (a backend
        whose marks are cheap to read reads them)."""
        return self._marks()
