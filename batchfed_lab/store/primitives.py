"""What a store backend provides: the ``_``-prefixed primitives :class:`~.base.Store` builds on.

Arguments arrive validated and normalised (ids checked, keys folded, JSON encoded); each
primitive must be atomic on its own, and raise the store's errors (``batchfed_lab.errors``),
never an SDK's.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any

from .records import (
    Action,
    ActionKind,
    ActionState,
    Claim,
    Counts,
    DestroyReport,
    Federation,
    Lease,
    Location,
    Marks,
    PoolMember,
    ProxyRecord,
)

Transition = Callable[[Action, float], Action]
LocationChange = Callable[[Location | None, float], Location | None]
LocationKey = tuple[str, str, ActionKind, str, str]  # federation, job id, kind, service URL, pool id
Located = tuple[LocationKey, LocationChange]  # a claimed job's location and its change


class StorePrimitives(ABC):
    """The backend half of a store; see :class:`~.base.Store` for the list by concern."""

    # ------------------------------------------------------------------ federations, pools
    @abstractmethod
    def _create_federation(self, fed: Federation, force: bool) -> Federation:
        """Create, or with ``force`` replace its own record (ConflictError if it exists otherwise)."""

    @abstractmethod
    def _get_federation(self, fid: str) -> Federation | None: ...
    @abstractmethod
    def _list_federations(self) -> list[Federation]: ...
    @abstractmethod
    def _destroy_federation(self, fid: str) -> DestroyReport | None:
        """Remove every record of the federation; None when it does not exist."""

    @abstractmethod
    def _add_pools(self, fid: str, members: list[PoolMember]) -> list[PoolMember]:
        """All or none; a pool held by any federation → ConflictError (``rules.pool_taken``)."""

    @abstractmethod
    def _remove_pools(self, fid: str, keys: list[str] | None) -> list[PoolMember]: ...
    @abstractmethod
    def _list_pools(self, fid: str | None) -> list[PoolMember]: ...
    @abstractmethod
    def _find_pool(self, key: str) -> PoolMember | None: ...

    # ------------------------------------------------------------------ actions
    @abstractmethod
    def _enqueue(self, fid: str, actions: list[Action], payloads: list[str], now: float) -> list[Action]:
        """Assign FIFO positions and store all actions atomically; refuse an add whose
        target is in use when ``rules.needs_unique_check`` says so; NotFoundError without the federation."""

    @abstractmethod
    def _enqueue_ahead(self, fid: str, action: Action, payload: str, now: float) -> Action:
        """Store ``action`` atomically just before the first active action of its target that
        no unexpired claim holds, the positions from there on one further (their order kept);
        at the end of the FIFO when there is none. NotFoundError without the federation."""

    @abstractmethod
    def _get_action(self, fid: str, aid: str) -> Action | None: ...
    @abstractmethod
    def _head(self, fid: str, tkey: str) -> Action | None: ...
    @abstractmethod
    def _list_actions(
        self, fid: str, tkey: str | None, states: frozenset[ActionState] | None, limit: int | None
    ) -> list[Action]: ...
    @abstractmethod
    def _counts(self, fid: str) -> Counts: ...
    @abstractmethod
    def _in_use(self, fid: str, tkey: str) -> bool: ...
    @abstractmethod
    def _zap(self, fid: str, aid: str, now: float) -> Action: ...
    @abstractmethod
    def _claim_token(self, fid: str, aid: str) -> str | None: ...
    @abstractmethod
    def _next_ready(self, fid: str) -> float | None: ...

    # ------------------------------------------------------------------ claims
    @abstractmethod
    def _claim(self, fid: str, worker: str, token: str, deadline: float, now: float) -> Claim | None:
        """Atomically pick a head with ready time <= now, apply ``rules.t_claim`` and store the
        token; None when nothing is ready or the store is suspended (``_get_flag("suspended")``)."""

    @abstractmethod
    def _mutate_claimed(self, claim: Claim, fn: Transition, now: float) -> tuple[Action, Any]:
        """Atomically: load the action, ``rules.check_claim``, apply ``fn``, store it, and move
        the target's head on if the action ended. Returns (action, new hint)."""

    @abstractmethod
    def _mutate_claimed_and_locate(
        self, claim: Claim, fn: Transition, now: float, where: LocationKey, change: LocationChange
    ) -> tuple[Action, Any]:
        """:meth:`_mutate_claimed` and :meth:`_change_location` as one step: one transaction, or
        the location first, so a crash between the two leaves a location that the retry records
        again (idempotent) — never a journal step whose location is missing."""

    @abstractmethod
    def _placed_then_claim(
        self,
        claim: Claim,
        fn: Transition,
        now: float,
        located: Located | None,
        worker: str,
        token: str,
        deadline: float,
    ) -> tuple[Action, Claim | None]:
        """The change of a claimed action (and its location), then a :meth:`_claim` for ``worker``.
        Once the change is written, a failed claim must not undo it: (placed, None) then."""

    # ------------------------------------------------------------------ locations
    @abstractmethod
    def _change_location(self, fid: str, job: str, kind: ActionKind, url: str, pid: str, fn: LocationChange) -> Location | None:
        """Atomic read-modify-write of one location: ``fn(old, now)`` → new (stored) or None
        (deleted). NotFoundError if the federation does not exist."""

    @abstractmethod
    def _get_locations(self, fid: str, job_key: str | None) -> list[Location]: ...

    # ------------------------------------------------------------------ leader lease
    @abstractmethod
    def _lease_acquire(self, name: str, holder: str, ttl: float, now: float) -> Lease | None: ...
    @abstractmethod
    def _lease_renew(self, name: str, holder: str, ttl: float, now: float) -> Lease | None: ...
    @abstractmethod
    def _lease_release(self, name: str, holder: str, now: float) -> bool: ...
    @abstractmethod
    def _lease_get(self, name: str, now: float) -> Lease | None: ...

    # ------------------------------------------------------------------ proxies, flags, signals
    @abstractmethod
    def _put_proxy(self, rec: ProxyRecord) -> None: ...
    @abstractmethod
    def _get_proxy(self, proxy_id: str) -> ProxyRecord | None: ...
    @abstractmethod
    def _list_proxies(self) -> list[ProxyRecord]: ...
    @abstractmethod
    def _remove_proxy(self, proxy_id: str) -> bool: ...
    @abstractmethod
    def _set_flag(self, name: str, value: bool) -> None: ...
    @abstractmethod
    def _get_flag(self, name: str) -> bool: ...
    @abstractmethod
    def _marks(self) -> Marks: ...
    @abstractmethod
    def _poll_changed(self) -> bool:
        """Cheap look at the backend: might the marks have changed since the last look?"""
