"""The leader watches what it placed and queues a *move* when a job's replacement rules fire.

Each step reads, per federation, the live job locations (one store read), the queued actions
(one read: a job whose move, terminate or delete is pending, or whose action a worker holds,
is left alone; a move goes ahead of later task groups) and the pool snapshots the capacity
cache holds anyway. Only the jobs that could move are looked at more closely, one task
listing each: those on a pool in trouble (gone, nodes lost or failing their start task), on
a pool with low-priority nodes (preemptions), or whose rules watch exit codes or stalls. A
placement found finished is never read again. No call per task, none per healthy job that
asked for nothing.

When :func:`~batchfed_lab.scheduler.replacement.judge` says move, the job is re-queued under
its own id (:meth:`Store.enqueue_move`) with the move record; the action id is derived from
the placement it leaves, so a crash and a second look queue the same move once. The move
itself — terminate on the old pool, read which tasks finished, place the rest — is carried
out like any add (:mod:`.move_prep`).
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from ..config.replacement import ReplacementRules
from ..errors import BatchfedError, BatchNotFoundError
from ..scheduler.replacement import Judgement, Observation, PoolCondition, TaskState, judge, stall_candidate
from ..scheduler.types import PoolSnapshot, pool_key
from ..store.base import Store
from ..store.records import Action, ActionKind, ActionMethod, Location
from ..store.rules import MOVE_KEY, target_key
from .payload import parse_add

if TYPE_CHECKING:
    from .processor import ActionProcessor

log = logging.getLogger("batchfed.proxy")

MEMORY_BOUND = 200_000  # finished placements and payloads remembered, at most
_MOVES = uuid.UUID("6f1d3c52-3b1e-4d7e-9a57-1f0c2a9e5b11")  # names move decisions (uuid5)


def move_action_id(federation_id: str, job_id: str, key: str, unique_id: str) -> str:
    """The id of the move that leaves the placement ``unique_id`` of a job on pool ``key``."""
    return str(uuid.uuid5(_MOVES, f"{federation_id}|{target_key(job_id)}|{key}|{unique_id}"))


class MoveWatch:
    """One :meth:`step` looks at every live placement of the watched federations."""

    def __init__(
        self,
        store: Store,
        processor: ActionProcessor,
        account_for: Callable[[str], Any],
        clock: Callable[[], float] = time.time,
        max_looks: int = 200,
    ):
        self.store, self.processor, self.account_for, self.clock = store, processor, account_for, clock
        self.max_looks = max_looks  # task listings per step at most
        self._finished: set[tuple[str, str, str]] = set()  # (federation, job key, unique id): done
        self._payloads: dict[tuple[str, str], dict[str, Any]] = {}  # (federation, action id) → payload
        self._lock = threading.Lock()
        self._turn: dict[str, int] = {}  # federation → where the next step starts looking

    def step(self, federations: Iterable[str]) -> int:
        """Look once; how many moves were queued."""
        if len(self._finished) + len(self._payloads) > MEMORY_BOUND:  # a long-lived proxy: read again
            with self._lock:
                self._finished.clear()
                self._payloads.clear()
        queued = 0
        for fid in list(federations):
            try:
                queued += self._step_federation(fid)
            except BatchfedError as exc:
                log.warning("watching the placements of %s failed: %s", fid, exc)
        return queued

    def _step_federation(self, fid: str) -> int:
        live = [loc for loc in self.store.get_locations(fid, kind=ActionKind.JOB) if loc.terminated_at is None and loc.unique_ids]
        live = [loc for loc in live if (fid, target_key(loc.job_id), loc.unique_ids[-1]) not in self._finished]
        if not live:
            return 0
        now = self.clock()
        # a move goes ahead of its job's later task groups (the store puts it there), but not
        # past a move already queued, a terminate or delete, or an action a worker holds now
        pending = {target_key(a.target_id) for a in self.store.list_queued(fid) if _holds_moves_back(a, now)}
        _, members = self.processor._federation(fid)
        snaps = {s.key: s for s in self.processor.capacity.snapshots(members)}
        queued = looks = 0
        start = self._turn.get(fid, 0) % len(live)  # round robin: beyond max_looks, the next step goes on
        for n, loc in enumerate(live[start:] + live[:start]):
            if looks >= self.max_looks:
                self._turn[fid] = start + n
                break
            if target_key(loc.job_id) in pending:
                continue
            try:
                moved, looked = self._look(fid, loc, snaps)
            except BatchfedError as exc:
                log.warning("job %s on %s: not judged now: %s", loc.job_id, loc.pool_id, exc)
                continue
            queued += moved
            looks += looked
        return queued

    def _payload(self, fid: str, action_id: str) -> dict[str, Any]:
        with self._lock:
            hit = self._payloads.get((fid, action_id))
        if hit is None:
            hit = self.store.get_action(fid, action_id).payload
            with self._lock:
                self._payloads[(fid, action_id)] = hit
        return hit

    def _look(self, fid: str, loc: Location, snaps: dict[str, PoolSnapshot]) -> tuple[int, int]:
        """(moves queued, task listings made) for one placement."""
        payload = self._payload(fid, loc.unique_ids[-1])
        rules = parse_add(payload, f"action {loc.unique_ids[-1]}").job.federation_constraints.replacement
        key = pool_key(loc.batch_service_url, loc.pool_id)
        snap = snaps.get(key)
        pool = PoolCondition.of(snap, loc.pool_id)
        history = payload.get(MOVE_KEY) or {}
        placed_at = loc.addition_timestamps[-1].timestamp() if loc.addition_timestamps else self.clock()
        bare = Observation(loc.job_id, pool, (TaskState("?", "active"),), self.clock() - placed_at)
        if not self._worth_a_look(bare, snap, rules):
            return 0, 0
        tasks = self._tasks(loc)
        if tasks is None:
            self._finished.add((fid, target_key(loc.job_id), loc.unique_ids[-1]))
            return 0, 1
        obs = Observation(
            loc.job_id,
            pool,
            tasks,
            bare.placed_for,
            tuple(history.get("kinds") or ()),
            int(history.get("preemptions") or 0),
        )
        verdict = judge(obs, rules)
        if verdict.outcome == "none" and all(t.state == "completed" for t in tasks):
            self._finished.add((fid, target_key(loc.job_id), loc.unique_ids[-1]))
        if not verdict.moves:
            return 0, 1
        move = move_payload(payload, loc, key, verdict, list(loc.unique_ids), self.clock())
        if verdict.kind != "pool_gone" and self.processor.dry_decision(fid, move).pool is None:
            # leave a job where it still has a chance rather than stop it for a move that waits:
            # only a gone pool is left whatever comes next
            log.info("job %s: %s, but no other pool can take it now: stays", loc.job_id, verdict.text)
            return 0, 1
        self._queue(fid, loc, key, move, verdict)
        return 1, 1

    @staticmethod
    def _worth_a_look(bare: Observation, snap: PoolSnapshot | None, rules: ReplacementRules) -> bool:
        """Whether the tasks are worth listing: the pool is in trouble, or a rule watches tasks."""
        if judge(bare, rules).outcome != "none":
            return True
        if rules.exit_code.move or stall_candidate(bare, rules):
            return True
        low = snap is not None and (snap.facts.target_low_priority > 0 or snap.low_priority.total > 0)
        return rules.preempted.move and low

    def _tasks(self, loc: Location) -> tuple[TaskState, ...] | None:
        """The placed job's tasks on its pool; None when the job is gone from Batch."""
        try:
            listed = self.account_for(loc.batch_service_url).list_tasks(loc.batch_id)
        except BatchNotFoundError:
            return None
        return tuple(TaskState(t.id, t.state, t.exit_code, t.failure_code, t.requeue_count) for t in listed)

    def _queue(self, fid: str, loc: Location, key: str, move: dict[str, Any], verdict: Judgement) -> None:
        aid = move_action_id(fid, loc.job_id, key, loc.unique_ids[-1])
        owner = self.store.get_action(fid, loc.unique_ids[-1])  # the work stays its submitter's
        self.store.enqueue_move(fid, loc.job_id, move, action_id=aid, owner=owner)
        self.processor.counters.add("moves")
        log.info("job %s: %s; move %s queued", loc.job_id, verdict.text, aid)


def _holds_moves_back(a: Action, now: float) -> bool:
    held = a.claim_deadline is not None and a.claim_deadline.timestamp() > now
    return held or a.method is not ActionMethod.ADD or MOVE_KEY in a.payload


def move_payload(
    payload: dict[str, Any], loc: Location, key: str, verdict: Judgement, sources: list[str], now: float
) -> dict[str, Any]:
    """The add payload of a move: the job as last placed, with the move record (its history
    carried along: the pools left, the kinds and the preemptions of every earlier move)."""
    before = payload.get(MOVE_KEY) or {}
    assert verdict.kind is not None
    why = verdict.text.removeprefix("moved: ")
    job = _prefer_dedicated(payload["job"]) if verdict.prefer_dedicated else payload["job"]
    record = {
        "from": {
            "service_url": loc.batch_service_url,
            "pool_id": loc.pool_id,
            "batch_job_id": loc.batch_id,
            "key": key,
            "account": loc.account,
            "location": loc.location,
        },
        "kind": verdict.kind,
        "why": why,
        "at": now,
        "sources": sources,
        "left": {**(before.get("left") or {}), key: why},
        "kinds": [*(before.get("kinds") or []), verdict.kind],
        "preemptions": int(before.get("preemptions") or 0) + (verdict.events if verdict.kind == "preempted" else 0),
        "regions": list(verdict.regions) if verdict.regions else None,
        "prefer_dedicated": verdict.prefer_dedicated,
    }
    return {**payload, "job": job, MOVE_KEY: record}


def _prefer_dedicated(job: dict[str, Any]) -> dict[str, Any]:
    """The job, asking for dedicated nodes only (``prefer: dedicated`` after K preemptions)."""
    constraints = dict(job.get("federation_constraints") or {})
    pool = dict(constraints.get("pool") or {})
    pool["low_priority_nodes"] = {"allow": False, "exclusive": False}
    constraints["pool"] = pool
    return {**job, "federation_constraints": constraints}
