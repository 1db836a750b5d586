"""The store interface. :class:`Store` owns the rules (validation, limits, the action
state machine, waiting); a backend only implements the ``_``-prefixed primitives of
:class:`~.primitives.StorePrimitives`, each of which must be atomic on its own.

Typical proxy loop::

    marks = store.change_marks()
    while running:
        while (claim := store.claim(fed, worker, ttl=60)) is not None:
            ...  # record_progress / mark_placed / mark_done / mark_blocked / mark_failed / release
        wake = store.next_ready_at(fed)          # a blocked head's retry time, if any
        marks = store.wait_for_change(marks, timeout=seconds_until(wake, cap=5))

Capture ``marks`` *before* claiming so nothing enqueued in between can be missed.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, ClassVar

from ..errors import ClaimLostError, ConflictError, NotFoundError, StoreError
from . import rules
from .control import ProxyControl
from .coordination import Coordination
from .identity import Submitter, os_submitter
from .locations import JobLocations
from .ordering import HeadOrder, group_ready
from .primitives import Located, Transition
from .records import (
    ACTIVE_STATES,
    Action,
    ActionKind,
    ActionMethod,
    ActionState,
    Claim,
    Counts,
    DestroyReport,
    Federation,
    LocationUpdate,
    NewAction,
    PoolMember,
    utc,
)

CRASHPOINT_ENV = "BATCHFED_STORE_CRASHPOINT"
DEFAULT_CLAIM_TTL = 60.0


class Store(JobLocations, ProxyControl, Coordination):
    """Federation metadata + action queue. Thread-safe; one instance per process is enough.

    A backend subclasses this and provides, each atomically (see :mod:`.primitives`):

    * federations and pools: ``_create_federation``, ``_get_federation``, ``_list_federations``,
      ``_destroy_federation``, ``_add_pools``, ``_remove_pools``, ``_list_pools``, ``_find_pool``;
    * actions: ``_enqueue``, ``_get_action``, ``_head``, ``_list_actions``, ``_counts``,
      ``_in_use``, ``_zap``, ``_claim_token``, ``_next_ready``;
    * claims: ``_claim`` (which also honours the suspend flag), ``_mutate_claimed``,
      ``_mutate_claimed_and_locate`` and ``_placed_then_claim`` (one transaction where the
      backend has them, else two ordered steps);
    * locations: ``_change_location``, ``_get_locations`` (the public side: :class:`JobLocations`);
    * leader lease: ``_lease_acquire``, ``_lease_renew``, ``_lease_release``, ``_lease_get``;
    * proxies, flags, signals: ``_put_proxy``, ``_get_proxy``, ``_list_proxies``, ``_remove_proxy``,
      ``_set_flag``, ``_get_flag``, ``_marks``, ``_poll_changed``;

    and may set the class attributes below.
    """

    backend: ClassVar[str] = "?"
    #: ``_placed_then_claim`` is one write, not two steps (worth a read to use)
    claims_with_placement: ClassVar[bool] = False
    #: which ready head a claim takes (see :mod:`.ordering`); None: the readiest
    head_order: HeadOrder | None = None

    def __init__(self, *, clock: Callable[[], float] | None = None, max_payload_bytes: int = rules.MAX_PAYLOAD_BYTES):
        self._clock = clock or time.time
        self.max_payload_bytes = max_payload_bytes
        self._init_signals()
        self._crash_at = _parse_crashpoint(os.environ.get(CRASHPOINT_ENV))
        self._closed = False
        self._submitter: Submitter | None = None

    # ------------------------------------------------------------------ plumbing
    def now(self) -> float:
        return self._clock()

    def close(self) -> None:
        """Release connections; the store must not be used afterwards."""
        self._closed = True

    @property
    def submitter(self) -> Submitter:
        """Whose credential this store uses: recorded on every action it enqueues."""
        if self._submitter is None:
            self._submitter = self._identity()
        return self._submitter

    def _pick_fifo(self, ready: Sequence[Mapping[str, Any]], now: float, fid: str | None = None) -> Mapping[str, Any]:
        """For backends that read every ready FIFO record (``ready_at``, ``submitter``,
        ``priority``, ``RowKey``): the one the claim order picks."""

        def oldest(records: Iterable[Mapping[str, Any]]) -> Mapping[str, Any]:
            return min(records, key=lambda r: (r["ready_at"], r["RowKey"]))

        if self.head_order is None:
            return oldest(ready)
        pick = self.head_order.choose(
            group_ready((r.get("submitter"), int(r.get("priority") or 0), r["ready_at"]) for r in ready), now, fid
        )
        return oldest(r for r in ready if (r.get("submitter"), int(r.get("priority") or 0)) == (pick.submitter, pick.priority))

    def _identity(self) -> Submitter:
        """The backend's identity of its credential (default: the OS user)."""
        return os_submitter()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _crashpoint(self, name: str) -> None:
        """Test hook: ``BATCHFED_STORE_CRASHPOINT=name[:n]`` kills the process at the n-th pass."""
        if self._crash_at and self._crash_at[0] == name:
            self._crash_at[1] -= 1
            if self._crash_at[1] <= 0:
                os._exit(86)

    # ------------------------------------------------------------------ federations
    def create_federation(self, federation_id: str, *, unique_job_ids: bool = True, force: bool = False) -> Federation:
        """Create a federation. Exists already → ConflictError, unless ``force`` (then only
        its own record, i.e. the unique-job-ids flag, is replaced; pools and actions stay)."""
        fed = Federation(rules.federation_id(federation_id), bool(unique_job_ids), utc(self.now()))
        created = self._create_federation(fed, force)
        self._notify_local()
        return created

    def get_federation(self, federation_id: str) -> Federation:
        fid = rules.federation_id(federation_id)
        fed = self._get_federation(fid)
        if fed is None:
            raise NotFoundError(f"federation {fid!r} does not exist")
        return fed

    def list_federations(self) -> list[Federation]:
        return sorted(self._list_federations(), key=lambda f: f.id)

    def destroy_federation(self, federation_id: str) -> DestroyReport:
        """Remove the federation and every record of it: pools, actions in any state,
        locations, payloads, its queue. Batch jobs are never touched."""
        fid = rules.federation_id(federation_id)
        report = self._destroy_federation(fid)
        if report is None:
            raise NotFoundError(f"federation {fid!r} does not exist")
        self._notify_local()
        return report

    # ------------------------------------------------------------------ pools
    def add_pool(
        self, federation_id: str, batch_service_url: str, pool_id: str, *, account: str | None = None, location: str | None = None
    ) -> PoolMember:
        return self.add_pools(
            federation_id,
            [{"batch_service_url": batch_service_url, "pool_id": pool_id, "account": account, "location": location}],
        )[0]

    def add_pools(self, federation_id: str, pools: Iterable[PoolMember | Mapping[str, Any]]) -> list[PoolMember]:
        """Add pools, all or none. A pool already in this or another federation → ConflictError."""
        fid = rules.federation_id(federation_id)
        now = utc(self.now())
        members: dict[str, PoolMember] = {}
        for item in pools:
            spec = (
                item
                if isinstance(item, Mapping)
                else {
                    "batch_service_url": item.batch_service_url,
                    "pool_id": item.pool_id,
                    "account": item.account,
                    "location": item.location,
                }
            )
            url, pid = rules.service_url(spec["batch_service_url"]), rules.pool_id(spec["pool_id"])
            key = rules.pool_key(url, pid)
            if key in members:
                raise ConflictError(f"pool {pid!r} at {url} is listed twice")
            members[key] = PoolMember(fid, url, pid, spec.get("account"), spec.get("location"), now)
        if not members:
            return []
        added = self._add_pools(fid, list(members.values()))
        self._notify_local()
        return added

    def remove_pools(self, federation_id: str, pools: Iterable[tuple[str, str]] | None = None) -> list[PoolMember]:
        """Remove the given ``(batch_service_url, pool_id)`` pools, all or none (an unknown
        one → NotFoundError), or every pool of the federation when ``pools`` is None."""
        fid = rules.federation_id(federation_id)
        keys = None
        if pools is not None:
            keys = [rules.pool_key(rules.service_url(u), rules.pool_id(p)) for u, p in pools]
        removed = self._remove_pools(fid, keys)
        self._notify_local()
        return removed

    def list_pools(self, federation_id: str | None = None) -> list[PoolMember]:
        fid = None if federation_id is None else rules.federation_id(federation_id)
        return sorted(self._list_pools(fid), key=lambda p: (p.federation_id, p.batch_service_url.lower(), p.pool_id.lower()))

    def find_pool(self, batch_service_url: str, pool_id: str) -> PoolMember | None:
        """The membership of a pool in whichever federation holds it, if any."""
        key = rules.pool_key(rules.service_url(batch_service_url), rules.pool_id(pool_id))
        return self._find_pool(key)

    # ------------------------------------------------------------------ actions
    def enqueue(
        self,
        federation_id: str,
        actions: Sequence[NewAction],
        *,
        moving: bool = False,
        ahead: bool = False,
        owner: Action | None = None,
    ) -> list[Action]:
        """Append actions, all or none, each at the end of its target's FIFO.

        In a unique-job-ids federation an ``add`` of a job id that is located or has
        active actions is refused (ConflictError), checked atomically with the append
        on SQLite; a job schedule id in use is refused in every federation. ``owner`` is
        for moves only: the stored action whose submitter the new ones keep.
        """
        fid = rules.federation_id(federation_id)
        now = self.now()
        who = self.submitter if owner is None else Submitter(owner.submitter or "", owner.submitter_id or "")
        built: list[Action] = []
        texts: list[str] = []
        seen: set[str] = set()
        for new in actions:
            action, text = self._built(fid, new, now, who)
            if action.id in seen:
                raise ConflictError(f"action id {action.id} is listed twice")
            seen.add(action.id)
            built.append(action)
            texts.append(text)
        if not built:
            return []
        if not moving and any(rules.MOVE_KEY in a.payload for a in built):
            raise StoreError(f"a payload may not carry '{rules.MOVE_KEY}': only the proxy moves placed jobs")
        for new, a in zip(actions, built):
            if new.id is not None and self._get_action(fid, a.id) is not None:  # e.g. a client retrying
                raise ConflictError(f"action id {a.id} exists already in federation {fid!r}")
        adds = [a for a in built if a.method is ActionMethod.ADD]
        keys = [rules.target_key(a.target_id) for a in adds]
        for a, key in zip(adds, keys):
            if keys.count(key) > 1 and (a.kind is ActionKind.JOB_SCHEDULE or self._unique_hint(fid)):
                raise ConflictError(f"{a.kind.value} id {a.target_id!r} is added twice in one submission")
        done = [self._enqueue_ahead(fid, built[0], texts[0], now)] if ahead else self._enqueue(fid, built, texts, now)
        self._notify_local()
        return done

    def _built(self, fid: str, new: NewAction, now: float, who: Submitter) -> tuple[Action, str]:
        """One validated queued action, and its payload as the text the backend stores."""
        target = rules.target_id(new.target_id, "job schedule id" if new.kind == ActionKind.JOB_SCHEDULE else "job id")
        payload = rules.json_object(new.payload, f"payload of {target!r}")
        text = rules.dump_json(payload, f"payload of {new.method} {new.kind} {target!r}", self.max_payload_bytes)
        action = Action(
            id=rules.action_id(new.id) if new.id is not None else str(uuid.uuid4()),
            federation_id=fid,
            kind=rules.kind(new.kind),
            method=rules.method(new.method),
            target_id=target,
            position=-1,
            state=ActionState.QUEUED,
            payload=payload,
            enqueued_at=utc(now),
            submitter=who.name or None,
            submitter_id=who.id or None,
            priority=rules.priority(new.priority, f"{rules.kind(new.kind).value.replace('_', ' ')} {target!r}"),
        )
        return action, text

    def enqueue_move(
        self, federation_id: str, job_id: str, payload: Mapping[str, Any], *, action_id: str, owner: Action | None = None
    ) -> Action:
        """Re-queue a placed job (a *move*, see :mod:`batchfed_lab.proxy.moves`), whether or
        not its id is in use, ahead of the job's later actions: just before its first queued
        or blocked action that no worker holds (at the end of its FIFO when there is none);
        the FIFO order of the others is kept. ``action_id`` names the move decision: a retry
        of the same decision returns the action queued the first time. ``owner``, the action
        that placed the job, lends the move its submitter and priority: the work stays theirs,
        though the proxy's credential queues it."""
        if rules.MOVE_KEY not in payload:
            raise StoreError(f"a move's payload carries '{rules.MOVE_KEY}'")
        priority = owner.priority if owner is not None else 0
        move = NewAction("job", "add", job_id, dict(payload), id=action_id, priority=priority)
        try:
            return self.enqueue(federation_id, [move], moving=True, ahead=True, owner=owner)[0]
        except ConflictError:
            return self.get_action(federation_id, action_id)  # queued by an earlier attempt

    def list_moves(self, federation_id: str, job_id: str | None = None) -> list[Action]:
        """The moves of a job (or of every job of the federation), in FIFO order per job."""
        return [a for a in self.list_actions(federation_id, target_id=job_id) if rules.MOVE_KEY in a.payload]

    def _unique_hint(self, fid: str) -> bool:
        fed = self._get_federation(fid)
        return True if fed is None else fed.unique_job_ids

    def get_action(self, federation_id: str, action_id: str) -> Action:
        fid, aid = rules.federation_id(federation_id), rules.action_id(action_id)
        action = self._get_action(fid, aid)
        if action is None:
            raise NotFoundError(f"action {aid} does not exist in federation {fid!r}")
        return action

    def head(self, federation_id: str, target_id: str) -> Action | None:
        """The first active (queued or blocked) action of a target, or None."""
        fid, tkey = rules.federation_id(federation_id), rules.target_key(rules.target_id(target_id))
        return self._head(fid, tkey)

    def list_actions(
        self,
        federation_id: str,
        *,
        target_id: str | None = None,
        states: Iterable[ActionState | str] | None = None,
        limit: int | None = None,
    ) -> list[Action]:
        """Actions ordered by target id, then FIFO position (so each job's are in order)."""
        fid = rules.federation_id(federation_id)
        tkey = None if target_id is None else rules.target_key(rules.target_id(target_id))
        return self._list_actions(fid, tkey, rules.states(states), limit)

    def list_queued(self, federation_id: str, target_id: str | None = None) -> list[Action]:
        """Active (queued or blocked) actions in FIFO order per target."""
        return self.list_actions(federation_id, target_id=target_id, states=ACTIVE_STATES)

    def counts(self, federation_id: str) -> Counts:
        return self._counts(rules.federation_id(federation_id))

    def job_id_in_use(self, federation_id: str, job_id: str) -> bool:
        """Is the id located (on any pool, terminated or not) or has it active actions?"""
        fid, key = rules.federation_id(federation_id), rules.target_key(rules.target_id(job_id))
        return self._in_use(fid, key)

    def claim(self, federation_id: str, worker: str, *, ttl: float = DEFAULT_CLAIM_TTL) -> Claim | None:
        """Claim the readiest head action of any target (oldest ready time first) that no
        live claim holds and whose ``next_attempt_at`` has come; None if there is none or
        the proxy is suspended.
        Counts an attempt. At-least-once: an unrenewed claim lapses after ``ttl``."""
        fid, who, secs = rules.federation_id(federation_id), rules.name(worker, "worker id"), rules.ttl(ttl)
        now = self.now()
        return self._claim(fid, who, str(uuid.uuid4()), now + secs, now)

    def claim_many(self, federation_id: str, worker: str, count: int, *, ttl: float = DEFAULT_CLAIM_TTL) -> list[Claim]:
        """Up to ``count`` claims at once, as ``count`` calls of :meth:`claim` would give them
        (readiest first, never two heads of one target), in one store write where the
        backend can: a proxy with many idle workers fills them without a round trip each."""
        fid, who, secs = rules.federation_id(federation_id), rules.name(worker, "worker id"), rules.ttl(ttl)
        now = self.now()
        return self._claim_many(fid, who, [str(uuid.uuid4()) for _ in range(max(0, count))], now + secs, now)

    def _claim_many(self, fid: str, worker: str, tokens: list[str], deadline: float, now: float) -> list[Claim]:
        """One :meth:`_claim` per token until one finds nothing; a backend may do better."""
        claims: list[Claim] = []
        for token in tokens:
            claim = self._claim(fid, worker, token, deadline, now)
            if claim is None:
                break
            claims.append(claim)
        return claims

    def renew_claim(self, claim: Claim, *, ttl: float = DEFAULT_CLAIM_TTL) -> Claim:
        """Extend a live claim to now + ttl (ClaimLostError if it lapsed or was lost)."""
        secs = rules.ttl(ttl)
        return self._keep_claimed(claim, lambda a, now: rules.t_renew(a, now + secs))

    def record_progress(self, claim: Claim, progress: Mapping[str, Any], *, location: LocationUpdate | None = None) -> Claim:
        """Merge ``progress`` (shallow) into the action's progress record under the claim.
        With ``location``, the claimed job's location is recorded in the same step (see
        :meth:`_mutate_claimed_and_locate`), as :meth:`record_location` would."""
        patch = rules.json_object(dict(progress), "progress")
        rules.dump_json(patch, "progress", rules.MAX_JSON_FIELD_BYTES)  # refuse before touching the store
        return self._keep_claimed(claim, rules.t_progress(patch), location=location)

    def mark_placed(
        self, claim: Claim, *, progress: Mapping[str, Any] | None = None, location: LocationUpdate | None = None
    ) -> Action:
        """An add action was placed: terminal; the target's next action becomes the head.
        With ``location``, the claimed job's location is recorded in the same step."""
        return self._step_claimed(claim, rules.t_placed(dict(progress or {})), location=location)

    def mark_placed_and_claim(
        self,
        claim: Claim,
        *,
        worker: str,
        progress: Mapping[str, Any] | None = None,
        location: LocationUpdate | None = None,
        ttl: float = DEFAULT_CLAIM_TTL,
    ) -> tuple[Action, Claim | None]:
        """:meth:`mark_placed`, then :meth:`claim` in the same federation for ``worker`` —
        in one transaction where the backend has them (SQLite): a busy worker's placement and
        its next claim cost one store write instead of two. Returns the placed action and the
        new claim (None when nothing is ready or the proxy is suspended)."""
        located = self._claimed_location(claim, location)
        who, secs = rules.name(worker, "worker id"), rules.ttl(ttl)
        fn = rules.t_placed(dict(progress or {}))
        now = self.now()
        placed, nxt = self._placed_then_claim(claim, fn, now, located, who, str(uuid.uuid4()), now + secs)
        self._notify_local()
        return placed, nxt

    def mark_done(self, claim: Claim, *, progress: Mapping[str, Any] | None = None) -> Action:
        """A terminate/delete action was carried out: terminal."""
        return self._step_claimed(claim, rules.t_done(dict(progress or {})))

    def mark_blocked(self, claim: Claim, reason: str, *, verdicts: list[Any] | None = None, retry_in: float = 5.0) -> Action:
        """No pool fits now: the action keeps its place (and holds back its target's later
        actions) with its reason and per-pool verdicts, claimable again after ``retry_in``."""
        return self._step_claimed(claim, rules.t_blocked(reason, verdicts, max(0.0, retry_in)))

    def mark_failed(self, claim: Claim, error: str) -> Action:
        """Give up on the action (terminal) with the error; the target's next action flows."""
        return self._step_claimed(claim, rules.t_failed(error))

    def release(self, claim: Claim, *, retry_in: float = 0.0, error: str | None = None) -> Action:
        """Give the claim back without changing the state; with ``error`` the error is
        recorded and counted (``errors``) so the caller can fail the action eventually."""
        return self._step_claimed(claim, rules.t_release(max(0.0, retry_in), error))

    def release_claims(self, worker: str) -> int:
        """Free every live claim held under ``worker`` (without changing the actions) and
        return how many. For a restarted proxy that reuses its id: its earlier run is
        dead, so those claims would otherwise block their job ids until they lapse."""
        who = rules.name(worker, "worker id")
        freed = 0
        for fed in self.list_federations():
            for a in self.list_actions(fed.id, states=ACTIVE_STATES):
                if a.claimed_by != who:
                    continue
                token = self._claim_token(fed.id, a.id)
                if token is None:
                    continue
                try:
                    self._step_claimed(Claim(a, token, who, rules.claimed_until(a)), rules.t_release(0.0, None))
                    freed += 1
                except ClaimLostError:  # lapsed meanwhile, or zapped: nothing to free
                    pass
        return freed

    def zap(self, federation_id: str, action_id: str) -> Action:
        """Drop a queued or blocked action for good (even while claimed: the claim is lost)."""
        fid, aid = rules.federation_id(federation_id), rules.action_id(action_id)
        action = self._zap(fid, aid, self.now())
        self._notify_local()
        return action

    def next_ready_at(self, federation_id: str) -> datetime | None:
        """The earliest time any head action of the federation becomes claimable."""
        return utc(self._next_ready(rules.federation_id(federation_id)))

    def _keep_claimed(self, claim: Claim, fn: Transition, *, location: LocationUpdate | None = None) -> Claim:
        """A step that keeps the claim (progress, renewal): it changes nothing a waiter waits
        for, so no wake-up for the proxy's own watcher several times per placement."""
        action, hint = self._mutate_located(claim, fn, self.now(), self._claimed_location(claim, location))
        return Claim(action, claim.token, claim.worker, rules.claimed_until(action), hint)

    def _step_claimed(self, claim: Claim, fn: Transition, *, location: LocationUpdate | None = None) -> Action:
        """A step that ends or hands back the claim; waiters are woken."""
        action, _hint = self._mutate_located(claim, fn, self.now(), self._claimed_location(claim, location))
        self._notify_local()
        return action

    def _claimed_location(self, claim: Claim, location: LocationUpdate | None) -> Located | None:
        """Check ``claim`` is one, and turn ``location`` into the change of the claimed job's location."""
        if not isinstance(claim, Claim):
            raise StoreError(f"expected a Claim, got {type(claim).__name__}")
        if location is None:
            return None
        a = claim.action
        return self._location_change(a.federation_id, a.target_id, a.kind, location)

    def _mutate_located(self, claim: Claim, fn: Transition, now: float, located: Located | None) -> tuple[Action, Any]:
        if located is None:
            return self._mutate_claimed(claim, fn, now)
        return self._mutate_claimed_and_locate(claim, fn, now, *located)


def _parse_crashpoint(value: str | None) -> list[Any] | None:
    if not value:
        return None
    name, _, n = value.partition(":")
    return [name, int(n or 1)]
