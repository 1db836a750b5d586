"""The store's rules, shared by every backend: id checks, JSON encoding and limits,
the action state machine (pure functions), and the flat document form of a record.

Backends only persist what these functions decide; nothing here does I/O.
"""

from __future__ import annotations

import dataclasses
import json
import re
import unicodedata
import uuid
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from ..config.loading import short_value
from ..errors import ClaimLostError, ConflictError, InvalidIdError, PayloadTooLargeError, StoreError
from .records import (
    ACTIVE_STATES,
    Action,
    ActionKind,
    ActionMethod,
    ActionState,
    Counts,
    Federation,
    Location,
    PoolMember,
    ProxyRecord,
    epoch,
    utc,
)

# ---------------------------------------------------------------------------- limits
MAX_FEDERATION_ID = 63
MAX_TARGET_ID = 64  # Batch job / job schedule / pool ids are at most 64 characters
MAX_POOL_ID = 64
MAX_SERVICE_URL = 512
MAX_NAME = 256  # worker ids, lease holders, proxy ids
MAX_PAYLOAD_BYTES = 16 * 1024 * 1024
MAX_JSON_FIELD_BYTES = 1024 * 1024  # verdicts, progress, counters
MAX_TEXT = 4000  # reason / error texts are cut (marked) beyond this; payloads never are

_FEDERATION_ID = re.compile(r"[a-z0-9-]{1,63}")
_LEASE_NAME = _FEDERATION_ID


def _say(value: Any) -> str:
    return short_value(value, 80)


# ---------------------------------------------------------------------------- ids
def federation_id(value: Any) -> str:
    """Lower-case the id (like the original) and insist on ``[a-z0-9-]{1,63}``."""
    if not isinstance(value, str):
        raise InvalidIdError(f"federation id {_say(value)}: must be a string")
    folded = value.lower() if value.isascii() else value
    if not _FEDERATION_ID.fullmatch(folded):
        raise InvalidIdError(f"federation id {_say(value)}: use 1-{MAX_FEDERATION_ID} characters of a-z, 0-9 and '-'")
    return folded


def _text_id(value: Any, what: str, limit: int) -> str:
    if not isinstance(value, str):
        raise InvalidIdError(f"{what} {_say(value)}: must be a string")
    if not value:
        raise InvalidIdError(f"{what} '': must not be empty")
    if len(value) > limit:
        raise InvalidIdError(f"{what} {_say(value)}: {len(value)} characters, at most {limit}")
    if not (value.isascii() and value.isprintable()):  # printable ASCII has neither: skip the look-ups
        for i, ch in enumerate(value):
            cat = unicodedata.category(ch)
            if cat in ("Cc", "Cs"):  # control characters and lone surrogates cannot be stored or shown safely
                raise InvalidIdError(f"{what} {_say(value)}: character U+{ord(ch):04X} at position {i} is not allowed")
    if value != value.strip():
        raise InvalidIdError(f"{what} {_say(value)}: must not start or end with white space")
    return value


def target_id(value: Any, what: str = "job id") -> str:
    return _text_id(value, what, MAX_TARGET_ID)


def target_key(value: str) -> str:
    """FIFO/location key of a job id: Batch ids are case-insensitive, so fold case."""
    return value.lower()


def pool_id(value: Any) -> str:
    return _text_id(value, "pool id", MAX_POOL_ID)


def service_url(value: Any) -> str:
    """A Batch service URL without trailing slash."""
    text = _text_id(value, "batch service url", MAX_SERVICE_URL).rstrip("/")
    if not re.fullmatch(r"https?://[^\s/]+(/\S*)?", text):
        raise InvalidIdError(f"batch service url {_say(value)}: must look like https://<account>.<region>.batch.azure.com")
    return text


def pool_key(url: str, pool: str) -> str:
    """Store-wide identity of a pool: the service URL and pool id, case-folded."""
    return f"{url.lower()}|{pool.lower()}"


def action_id(value: Any) -> str:
    try:
        return str(uuid.UUID(str(value)))
    except (ValueError, TypeError, AttributeError):
        raise InvalidIdError(f"action id {_say(value)}: not a UUID") from None


def name(value: Any, what: str) -> str:
    """Worker ids, lease holders, proxy ids: printable text, at most 256 characters."""
    return _text_id(value, what, MAX_NAME)


def lease_name(value: Any) -> str:
    if not isinstance(value, str) or not _LEASE_NAME.fullmatch(value):
        raise InvalidIdError(f"lease name {_say(value)}: use 1-63 characters of a-z, 0-9 and '-'")
    return value


def holder(value: Any) -> str:
    text = name(value, "lease holder")
    if not text.isascii() or not text.isprintable():
        raise InvalidIdError(f"lease holder {_say(value)}: use printable ASCII characters")  # Azure metadata rule
    return text


def priority(value: Any, what: str) -> int:
    """A job priority: an integer from -1000 to 1000 (Batch's range)."""
    if isinstance(value, bool) or not isinstance(value, int) or not -1000 <= value <= 1000:
        raise StoreError(f"priority of {what}: {_say(value)} is not an integer from -1000 to 1000")
    return value


def kind(value: Any) -> ActionKind:
    try:
        return ActionKind(value)
    except ValueError:
        raise StoreError(f"action kind {_say(value)}: must be one of job, job_schedule") from None


def method(value: Any) -> ActionMethod:
    try:
        return ActionMethod(value)
    except ValueError:
        raise StoreError(f"action method {_say(value)}: must be one of add, terminate, delete") from None


def states(values: Any) -> frozenset[ActionState] | None:
    if values is None:
        return None
    if isinstance(values, (str, ActionState)):
        values = [values]
    try:
        return frozenset(ActionState(v) for v in values)
    except ValueError:
        raise StoreError(f"action states {_say(values)}: use {', '.join(s.value for s in ActionState)}") from None


def ttl(value: float, what: str = "ttl") -> float:
    if not isinstance(value, (int, float)) or not value > 0:
        raise StoreError(f"{what} {_say(value)}: must be a positive number of seconds")
    return float(value)


# ---------------------------------------------------------------------------- JSON
def dump_json(value: Any, what: str, limit: int | None = None) -> str:
    """Strict JSON text (no NaN, no objects); refuse, never truncate, above ``limit`` bytes."""
    try:
        text = json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    except (TypeError, ValueError) as exc:
        raise StoreError(f"{what} is not JSON: {exc}") from None
    except RecursionError:
        raise StoreError(f"{what} is not JSON: nested too deeply") from None
    if limit is not None:
        size = len(text.encode("utf-8"))
        if size > limit:
            raise PayloadTooLargeError(f"{what}: {size:,} bytes of JSON, the limit is {limit:,} bytes")
    return text


def load_json(text: str | None, default: Any = None) -> Any:
    return default if text is None else json.loads(text)


#: the key of the stand-in payload of a stored action whose payload text cannot be decoded
UNDECODABLE = "__undecodable__"


def load_payload(text: str | None) -> Any:
    """A stored payload, or — when the stored text is not JSON (a record written around the
    store, or damaged) — a stand-in ``{UNDECODABLE: why}`` that the proxy fails with its
    reason, so one bad record neither crashes a reader nor blocks its queue."""
    try:
        return load_json(text, {})
    except ValueError as exc:
        return {UNDECODABLE: " ".join(str(exc).split())[:200]}
    except RecursionError:
        return {UNDECODABLE: "nested too deeply"}


def json_object(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise StoreError(f"{what} must be a JSON object (dict), not {type(value).__name__}")
    return value


def cut(text: str | None) -> str | None:
    """Reason and error texts are diagnostics: keep them bounded, and say when cut."""
    if text is None:
        return None
    text = str(text)
    if len(text) <= MAX_TEXT:
        return text
    return text[:MAX_TEXT] + f"... [{len(text) - MAX_TEXT} more characters cut]"


# ---------------------------------------------------------------------------- state machine
def not_before(at: datetime, latest: float | None) -> datetime:
    """``at``, or the latest enqueue time already in the target's FIFO when that is later:
    the recorded times of one job id never go back along its FIFO, whatever the writers'
    clocks or the moment each of them read its clock before its turn came."""
    if latest is None or epoch(at) >= latest:
        return at
    return utc(float(latest))


def ready_at(a: Action) -> float | None:
    """When the action, as head of its FIFO, may next be claimed (None: never).

    A live claim holds it until the deadline; a blocked or released one waits for
    ``next_attempt_at``; a terminal one is never claimable again.
    """
    if a.state not in ACTIVE_STATES:
        return None
    if a.claimed_by is not None:
        return epoch(a.claim_deadline)
    return epoch(a.next_attempt_at) or epoch(a.enqueued_at)


def check_claim(a: Action, stored_token: str | None, token: str, now: float) -> None:
    """Refuse a claim that was taken over, released, zapped, finished or that lapsed."""
    if stored_token is None or stored_token != token:
        raise ClaimLostError(f"action {a.id} (job {a.target_id!r}): the claim is no longer held ({a.state.value})")
    deadline = epoch(a.claim_deadline)
    if deadline is None or deadline <= now:
        raise ClaimLostError(f"action {a.id} (job {a.target_id!r}): the claim lapsed at {a.claim_deadline}")


def t_claim(a: Action, worker: str, deadline: float) -> Action:
    return a.replace(claimed_by=worker, claim_deadline=utc(deadline), attempts=a.attempts + 1)


def claimed_until(a: Action) -> datetime:
    """The deadline of a claimed action (every claim step sets it; a cleared one means the
    claim is gone)."""
    if a.claim_deadline is None:
        raise ClaimLostError(f"action {a.id} (job {a.target_id!r}): the claim is no longer held ({a.state.value})")
    return a.claim_deadline


def t_renew(a: Action, deadline: float) -> Action:
    return a.replace(claim_deadline=utc(deadline))


def _unclaimed(a: Action, **changes: Any) -> Action:
    return a.replace(claimed_by=None, claim_deadline=None, **changes)


def merge_progress(a: Action, patch: dict[str, Any] | None) -> dict[str, Any]:
    if not patch:
        return a.progress
    merged = {**a.progress, **json_object(patch, "progress")}
    dump_json(merged, f"progress of action {a.id}", MAX_JSON_FIELD_BYTES)
    return merged


def t_progress(patch: dict[str, Any]) -> Callable[[Action, float], Action]:
    def fn(a: Action, now: float) -> Action:
        return a.replace(progress=merge_progress(a, patch))

    return fn


def t_placed(progress: dict[str, Any] | None) -> Callable[[Action, float], Action]:
    def fn(a: Action, now: float) -> Action:
        if a.method is not ActionMethod.ADD:
            raise ConflictError(f"action {a.id} is a {a.method.value} action: mark it done, not placed")
        return _unclaimed(
            a, state=ActionState.PLACED, placed_at=utc(now), finished_at=utc(now), progress=merge_progress(a, progress)
        )

    return fn


def t_done(progress: dict[str, Any] | None) -> Callable[[Action, float], Action]:
    def fn(a: Action, now: float) -> Action:
        if a.method is ActionMethod.ADD:
            raise ConflictError(f"action {a.id} is an add action: mark it placed, not done")
        return _unclaimed(a, state=ActionState.DONE, finished_at=utc(now), progress=merge_progress(a, progress))

    return fn


def t_blocked(reason: str, verdicts: list[Any] | None, retry_in: float) -> Callable[[Action, float], Action]:
    if verdicts is not None and not isinstance(verdicts, list):
        raise StoreError(f"verdicts must be a JSON list, not {type(verdicts).__name__}")
    dump_json(verdicts, "verdicts", MAX_JSON_FIELD_BYTES)

    def fn(a: Action, now: float) -> Action:
        return _unclaimed(
            a, state=ActionState.BLOCKED, reason=cut(reason), verdicts=verdicts, next_attempt_at=utc(now + retry_in)
        )

    return fn


def t_failed(error: str) -> Callable[[Action, float], Action]:
    def fn(a: Action, now: float) -> Action:
        return _unclaimed(a, state=ActionState.FAILED, error=cut(error), finished_at=utc(now))

    return fn


def t_release(retry_in: float, error: str | None) -> Callable[[Action, float], Action]:
    def fn(a: Action, now: float) -> Action:
        if error is None:
            return _unclaimed(a, next_attempt_at=utc(now + retry_in))
        return _unclaimed(a, next_attempt_at=utc(now + retry_in), error=cut(error), errors=a.errors + 1)

    return fn


def t_zap(a: Action, now: float) -> Action:
    if a.state not in ACTIVE_STATES:
        raise ConflictError(f"action {a.id} is {a.state.value}: only queued or blocked actions can be zapped")
    return _unclaimed(a, state=ActionState.ZAPPED, finished_at=utc(now))


#: the payload key of a move (re-placement): only ``Store.enqueue_move`` writes it
MOVE_KEY = "move"


def needs_unique_check(action: Action, fed: Federation) -> bool:
    """Adds of job schedules are always unique; adds of jobs only in unique federations; a
    move re-places a job id that is located by design."""
    if MOVE_KEY in action.payload:
        return False
    return action.method is ActionMethod.ADD and (action.kind is ActionKind.JOB_SCHEDULE or fed.unique_job_ids)


def in_use_error(action: Action) -> ConflictError:
    return ConflictError(
        f"{action.kind.value} id {action.target_id!r} already exists or is queued in federation "
        f"{action.federation_id!r} (unique job ids)"
    )


def pool_taken(m: PoolMember, owner: str) -> ConflictError:
    where = "this federation" if owner == m.federation_id else f"federation {owner!r}"
    return ConflictError(f"pool {m.pool_id!r} at {m.batch_service_url} is already in {where}")


# ---------------------------------------------------------------------------- documents
def action_doc(a: Action, token: str | None, *, payload_text: str | None = None) -> dict[str, Any]:
    """Flat form of an action: JSON text for structured fields, epoch floats for times."""
    return {
        "id": a.id,
        "federation_id": a.federation_id,
        "target_key": target_key(a.target_id),
        "target_id": a.target_id,
        "kind": a.kind.value,
        "method": a.method.value,
        "seq": a.position,
        "state": a.state.value,
        "enqueued_at": epoch(a.enqueued_at),
        "payload": payload_text if payload_text is not None else dump_json(a.payload, "payload"),
        "reason": a.reason,
        "verdicts": None if a.verdicts is None else dump_json(a.verdicts, "verdicts"),
        "error": a.error,
        "attempts": a.attempts,
        "errors": a.errors,
        "next_attempt_at": epoch(a.next_attempt_at),
        "placed_at": epoch(a.placed_at),
        "finished_at": epoch(a.finished_at),
        "progress": dump_json(a.progress, "progress"),
        "claimed_by": a.claimed_by,
        "claim_deadline": epoch(a.claim_deadline),
        "claim_token": token,
        "submitter": a.submitter,
        "submitter_id": a.submitter_id,
        "priority": a.priority,
    }


ACTION_FIELDS = [
    "id",
    "federation_id",
    "target_key",
    "target_id",
    "kind",
    "method",
    "seq",
    "state",
    "enqueued_at",
    "payload",
    "reason",
    "verdicts",
    "error",
    "attempts",
    "errors",
    "next_attempt_at",
    "placed_at",
    "finished_at",
    "progress",
    "claimed_by",
    "claim_deadline",
    "claim_token",
    "submitter",
    "submitter_id",
    "priority",
]


def action_from_doc(d: dict[str, Any]) -> Action:
    return Action(
        id=d["id"],
        federation_id=d["federation_id"],
        kind=ActionKind(d["kind"]),
        method=ActionMethod(d["method"]),
        target_id=d["target_id"],
        position=int(d["seq"]),
        state=ActionState(d["state"]),
        enqueued_at=utc(d["enqueued_at"]),
        payload=load_payload(d.get("payload")),
        reason=d.get("reason"),
        verdicts=load_json(d.get("verdicts")),
        error=d.get("error"),
        attempts=int(d.get("attempts") or 0),
        errors=int(d.get("errors") or 0),
        next_attempt_at=utc(d.get("next_attempt_at")),
        placed_at=utc(d.get("placed_at")),
        finished_at=utc(d.get("finished_at")),
        progress=load_json(d.get("progress"), {}),
        claimed_by=d.get("claimed_by"),
        claim_deadline=utc(d.get("claim_deadline")),
        submitter=d.get("submitter") or None,
        submitter_id=d.get("submitter_id"),
        priority=int(d.get("priority") or 0),
    )


def location_doc(loc: Location) -> dict[str, Any]:
    return {
        "federation_id": loc.federation_id,
        "job_key": target_key(loc.job_id),
        "job_id": loc.job_id,
        "kind": loc.kind.value,
        "pool_key": pool_key(loc.batch_service_url, loc.pool_id),
        "batch_service_url": loc.batch_service_url,
        "pool_id": loc.pool_id,
        "account": loc.account,
        "location": loc.location,
        "unique_ids": dump_json(list(loc.unique_ids), "unique ids"),
        "addition_timestamps": dump_json([epoch(t) for t in loc.addition_timestamps], "addition timestamps"),
        "created_at": epoch(loc.created_at),
        "terminated_at": epoch(loc.terminated_at),
        "batch_job_id": loc.batch_job_id,
    }


LOCATION_FIELDS = [
    "federation_id",
    "job_key",
    "job_id",
    "kind",
    "pool_key",
    "batch_service_url",
    "pool_id",
    "account",
    "location",
    "unique_ids",
    "addition_timestamps",
    "created_at",
    "terminated_at",
    "batch_job_id",
]


def location_from_doc(d: dict[str, Any]) -> Location:
    return Location(
        federation_id=d["federation_id"],
        job_id=d["job_id"],
        kind=ActionKind(d["kind"]),
        batch_service_url=d["batch_service_url"],
        pool_id=d["pool_id"],
        account=d.get("account"),
        location=d.get("location"),
        unique_ids=tuple(load_json(d.get("unique_ids"), [])),
        addition_timestamps=tuple(utc(float(t)) for t in load_json(d.get("addition_timestamps"), [])),
        created_at=utc(d.get("created_at")),
        terminated_at=utc(d.get("terminated_at")),
        batch_job_id=d.get("batch_job_id") or None,
    )


def add_unique_id(loc: Location, unique_id: str | None, at: float) -> Location:
    """Record that ``unique_id`` was served here (idempotent: a retried add adds nothing)."""
    if unique_id is None or unique_id in loc.unique_ids:
        return loc
    return dataclasses.replace(
        loc, unique_ids=(*loc.unique_ids, unique_id), addition_timestamps=(*loc.addition_timestamps, utc(at))
    )


def proxy_doc(rec: ProxyRecord) -> dict[str, Any]:
    return {
        "proxy_id": rec.proxy_id,
        "pid": rec.pid,
        "host": rec.host,
        "version": rec.version,
        "role": rec.role,
        "counters": dump_json(rec.counters, "counters"),
        "info": dump_json(rec.info, "info"),
        "started_at": epoch(rec.started_at),
        "heartbeat_at": epoch(rec.heartbeat_at),
    }


def proxy_from_doc(d: Mapping[str, Any]) -> ProxyRecord:
    return ProxyRecord(
        proxy_id=d["proxy_id"],
        pid=d.get("pid"),
        host=d.get("host"),
        version=d.get("version"),
        role=d.get("role"),
        counters=load_json(d.get("counters"), {}),
        info=load_json(d.get("info"), {}),
        started_at=utc(d.get("started_at")),
        heartbeat_at=utc(d.get("heartbeat_at")),
    )


def counts_from(states: Mapping[str, int], claimed: int, located_jobs: int) -> Counts:
    """Counts from the number of actions per state value, live claims and located job ids."""
    return Counts(**{s.value: int(states.get(s.value, 0)) for s in ActionState}, claimed=claimed, located_jobs=located_jobs)
