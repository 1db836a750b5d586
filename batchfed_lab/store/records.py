"""Records the store hands out and accepts: plain frozen dataclasses, JSON-friendly.

Times are timezone-aware UTC ``datetime`` objects; the backends keep them as float
epoch seconds (sortable, indexable, exact to the microsecond).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import datetime, timezone
from enum import Enum
from typing import Any, overload

__all__ = [
    "ACTIVE_STATES",
    "TERMINAL_STATES",
    "Action",
    "ActionKind",
    "ActionMethod",
    "ActionState",
    "Claim",
    "Counts",
    "DestroyReport",
    "Federation",
    "Lease",
    "Location",
    "Marks",
    "NewAction",
    "PoolMember",
    "ProxyRecord",
]


class ActionKind(str, Enum):
    JOB = "job"
    JOB_SCHEDULE = "job_schedule"

    def __str__(self) -> str:
        return self.value


class ActionMethod(str, Enum):
    ADD = "add"
    TERMINATE = "terminate"
    DELETE = "delete"

    def __str__(self) -> str:
        return self.value


class ActionState(str, Enum):
    """``queued → placed`` (add) or ``done`` (terminate/delete); ``blocked`` keeps its
    place and is retried; ``failed`` and ``zapped`` end it without effect."""

    QUEUED = "queued"
    PLACED = "placed"
    DONE = "done"
    BLOCKED = "blocked"
    FAILED = "failed"
    ZAPPED = "zapped"

    def __str__(self) -> str:
        return self.value


ACTIVE_STATES = frozenset({ActionState.QUEUED, ActionState.BLOCKED})
TERMINAL_STATES = frozenset({ActionState.PLACED, ActionState.DONE, ActionState.FAILED, ActionState.ZAPPED})


@overload
def utc(ts: float) -> datetime: ...
@overload
def utc(ts: None) -> None: ...
@overload
def utc(ts: float | None) -> datetime | None: ...
def utc(ts: float | None) -> datetime | None:
    """Epoch seconds → aware UTC datetime (None stays None)."""
    return None if ts is None else datetime.fromtimestamp(ts, tz=timezone.utc)


@overload
def epoch(dt: datetime) -> float: ...
@overload
def epoch(dt: None) -> None: ...
@overload
def epoch(dt: datetime | None) -> float | None: ...
def epoch(dt: datetime | None) -> float | None:
    """Aware (or naive-as-UTC) datetime → epoch seconds."""
    if dt is None:
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return dt.timestamp()


@dataclass(frozen=True, slots=True)
class Federation:
    id: str
    unique_job_ids: bool
    created_at: datetime


@dataclass(frozen=True, slots=True)
class PoolMember:
    """One pool of a federation. ``(batch_service_url, pool_id)`` is unique store-wide."""

    federation_id: str
    batch_service_url: str
    pool_id: str
    account: str | None = None
    location: str | None = None
    added_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class NewAction:
    """What a client enqueues. ``id`` is generated (uuid4) unless given. ``priority``
    (-1000…1000, higher first) orders the federation's queue across job ids. There is no
    submitter here on purpose: the store records its own credential's identity."""

    kind: ActionKind | str
    method: ActionMethod | str
    target_id: str
    payload: dict[str, Any] = field(default_factory=dict)
    id: str | None = None
    priority: int = 0


@dataclass(frozen=True, slots=True)
class Action:
    """One queued directive and everything the proxy recorded about it.

    ``position`` orders the actions of one (federation, target id); only the first
    active one (the head) can be claimed. ``attempts`` counts claims (deliveries),
    ``errors`` counts releases that carried an error. ``progress`` is the proxy's
    crash-safety journal ("intent"), merged under its claim. ``submitter`` (a name) and
    ``submitter_id`` (an Entra ID object id, or ``os:<uid>@<host>``) say whose credential
    enqueued it; ``priority`` orders the federation's queue across job ids.
    """

    id: str
    federation_id: str
    kind: ActionKind
    method: ActionMethod
    target_id: str
    position: int
    state: ActionState
    enqueued_at: datetime
    payload: dict[str, Any] = field(default_factory=dict, repr=False)
    reason: str | None = None
    verdicts: list[Any] | None = field(default=None, repr=False)
    error: str | None = None
    attempts: int = 0
    errors: int = 0
    next_attempt_at: datetime | None = None
    placed_at: datetime | None = None
    finished_at: datetime | None = None
    progress: dict[str, Any] = field(default_factory=dict, repr=False)
    claimed_by: str | None = None
    claim_deadline: datetime | None = None
    submitter: str | None = None
    submitter_id: str | None = None
    priority: int = 0

    @property
    def active(self) -> bool:
        return self.state in ACTIVE_STATES

    def replace(self, **changes: Any) -> Action:
        return dataclasses.replace(self, **changes)


@dataclass(frozen=True, slots=True)
class Claim:
    """A worker's exclusive, expiring right to change one action.

    Pass it back to the store's claim operations; they refuse it (ClaimLostError)
    once the deadline has passed or the action was re-claimed or zapped.
    """

    action: Action
    token: str = field(repr=False)
    worker: str
    deadline: datetime
    # backend-private concurrency hints (e.g. Azure ETags); never required for correctness
    hint: Any = field(default=None, repr=False, compare=False)

    @property
    def federation_id(self) -> str:
        return self.action.federation_id

    @property
    def action_id(self) -> str:
        return self.action.id


@dataclass(frozen=True, slots=True)
class Location:
    """Where a federation job (or job schedule) id lives: one record per pool."""

    federation_id: str
    job_id: str
    kind: ActionKind
    batch_service_url: str
    pool_id: str
    account: str | None = None
    location: str | None = None
    unique_ids: tuple[str, ...] = ()
    addition_timestamps: tuple[datetime, ...] = ()
    created_at: datetime | None = None
    terminated_at: datetime | None = None
    # the id of the Batch job there when it is not ``job_id``: a move to another pool of an
    # account that still holds the job it left (Batch job ids are unique per account)
    batch_job_id: str | None = None

    @property
    def batch_id(self) -> str:
        """The id of the job on Batch (the federation's id unless a move derived another)."""
        return self.batch_job_id or self.job_id


@dataclass(frozen=True, slots=True)
class LocationUpdate:
    """Where a claimed action's job (or job schedule) lives, to record with a step of the
    action (``record_progress`` / ``mark_placed`` ``location=``): its pool, and, once served,
    the action's unique id and time."""

    batch_service_url: str
    pool_id: str
    account: str | None = None
    location: str | None = None
    unique_id: str | None = None
    at: datetime | None = None
    batch_job_id: str | None = None  # see Location.batch_job_id


@dataclass(frozen=True, slots=True)
class Lease:
    name: str
    holder: str
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class ProxyRecord:
    """Heartbeat/status of one proxy instance."""

    proxy_id: str
    pid: int | None = None
    host: str | None = None
    version: str | None = None
    role: str | None = None
    counters: dict[str, Any] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)
    started_at: datetime | None = None
    heartbeat_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Counts:
    """Actions of a federation by state, plus how many are claimed right now and
    how many distinct job ids have a location."""

    queued: int = 0
    placed: int = 0
    done: int = 0
    blocked: int = 0
    failed: int = 0
    zapped: int = 0
    claimed: int = 0
    located_jobs: int = 0

    def as_dict(self) -> dict[str, int]:
        return dataclasses.asdict(self)


@dataclass(frozen=True, slots=True)
class DestroyReport:
    """What a destroy removed (so a surface can warn about queued or located work)."""

    federation_id: str
    pools: int = 0
    active_actions: int = 0
    actions: int = 0
    locations: int = 0


@dataclass(frozen=True, slots=True)
class Marks:
    """Opaque change marks; compare with ``==``. See ``Store.wait_for_change``."""

    federations: Any = 0
    actions: Any = 0
    control: Any = 0
