"""Claims and the claimed action's changes on the Azure store: ETag-conditional writes of the
action and its FIFO record in one transaction. Placing and claiming the next action, or
changing an action and its job's location, are two steps here (no transaction spans them)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from azure.core.exceptions import HttpResponseError

from ...errors import ClaimLostError, NotFoundError, StoreError
from .. import rules
from ..primitives import Located, LocationChange, LocationKey, Transition
from ..records import TERMINAL_STATES, Action, Claim
from .entities import Again, etag_of, h, position_key, replace_if, unpack
from .journal import ActionJournal

log = logging.getLogger(__name__)

READY_FOR = 1.0  # seconds a listing of a federation's ready heads is handed out before it is read again


class ReadyHeads:
    """The ready FIFO records of one federation from one range query, handed out one by one
    to this process's claimers, readiest first: each to one claimer, so the workers of a
    proxy never race each other for the same head. A listing is read again when it is used
    up or older than ``READY_FOR`` seconds; one that began after a claimer arrived answers
    that claimer too, even when empty (claimers finishing together make one query). A record
    another process changed since fails the claim's condition, and the caller clears them."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.records: list[Any] = []  # readiest last
        self.listed_at = 0.0  # time.monotonic() when the last listing began
        self.taken: set[str] = set()  # handed out, claim not finished: a new listing may show them unchanged

    def take(self, now: float, listing: Callable[[], list[Any]]) -> Any | None:
        arrived = time.monotonic()
        with self.lock:  # one listing at a time: claimers arriving meanwhile take from its answer
            if self.listed_at < arrived and (not self.records or arrived - self.listed_at > READY_FOR):
                began = time.monotonic()
                rows = [r for r in listing() if r["RowKey"] not in self.taken]
                self.records = sorted(rows, key=lambda r: (r["ready_at"], r["RowKey"]), reverse=True)
                self.listed_at = began
            if not self.records or self.records[-1]["ready_at"] > now:  # listed by a claimer whose clock ran ahead
                return None
            record = self.records.pop()
            self.taken.add(record["RowKey"])
            return record

    def finished(self, record: Any) -> None:
        with self.lock:
            self.taken.discard(record["RowKey"])

    def clear(self) -> None:
        with self.lock:
            self.records = []


class ActionClaims(ActionJournal):
    """Claims, claimed changes and zaps, each an optimistic transaction in the federation's partition."""

    def __init__(self, *args: Any, **kwargs: Any):
        self._ready: dict[str, ReadyHeads] = {}
        self._ready_lock = threading.Lock()
        super().__init__(*args, **kwargs)

    def _claim(self, fid: str, worker: str, token: str, deadline: float, now: float) -> Claim | None:
        if self._claims_suspended():  # no transaction spans the flag and the FIFOs
            return None
        with self._azure(f"claim in federation {fid!r}"):
            if time.monotonic() - self._recovered.get(fid, 0.0) > 5.0:
                self._recover(fid)
            return self._optimistic(
                f"claim in federation {fid!r}", lambda: self._claim_once(fid, worker, token, deadline, now), gone_too=True
            )

    def _claim_once(self, fid: str, worker: str, token: str, deadline: float, now: float) -> Claim | None:
        heads = self._ready_heads(fid)
        live = heads.take(now, lambda: self._range("actions", fid, "T~", "ready_at le @now", now=now))
        if live is None:
            return None
        try:
            ent = self._get("actions", fid, f"A~{live['RowKey'][2:]}~{position_key(int(live['head_seq']))}")
            if ent is None or ent["state"] not in ("queued", "blocked"):
                # zapped while not yet the head: skip the hole
                self._t["actions"].submit_transaction(self._advance_ops(fid, live, etag_of(live), now))
                raise Again
            claimed = rules.t_claim(self._action(ent), worker, deadline)
            fields = {k: ent[k] for k in ent if k == "payload_ref" or k.split("__")[0] == "payload"}
            results = self._t["actions"].submit_transaction(
                [
                    ("update", self._action_entity(fid, claimed, token, unpack(fields)), replace_if(etag_of(ent))),
                    ("update", {**live, "ready_at": deadline}, replace_if(etag_of(live))),
                ]
            )
        except HttpResponseError:
            heads.clear()  # another writer moved the FIFOs on: read them afresh
            raise
        finally:
            heads.finished(live)
        hint = {"a": results[0]["etag"], "t": {**live, "ready_at": deadline}, "t_etag": results[1]["etag"]}
        return Claim(claimed, token, worker, rules.claimed_until(claimed), hint)

    def _ready_heads(self, fid: str) -> ReadyHeads:
        with self._ready_lock:
            return self._ready.setdefault(fid, ReadyHeads())

    def _mutate_claimed(self, claim: Claim, fn: Transition, now: float) -> tuple[Action, Any]:
        fid, a0 = claim.federation_id, claim.action
        a_rk, t_rk = self._a_rk(a0.target_id, a0.position), f"T~{h(rules.target_key(a0.target_id))}"
        hints = [claim.hint]  # used once: after a lost race everything is read afresh

        def attempt() -> tuple[Action, Any]:
            hint = hints.pop() if hints else None
            if hint is not None:  # fast path: trust our last write; a stale ETag makes the write fail
                old, stored, a_etag = a0, claim.token, hint["a"]
                live, t_etag = hint["t"], hint["t_etag"]
            else:
                ent = self._get("actions", fid, a_rk)
                if ent is None:
                    raise ClaimLostError(f"action {a0.id}: no longer exists (federation destroyed?)")
                old, stored, a_etag = self._action(ent), ent.get("claim_token"), etag_of(ent)
                live = self._get("actions", fid, t_rk)
                t_etag = None if live is None else etag_of(live)
            try:
                rules.check_claim(old, stored, claim.token, now)
            except ClaimLostError:
                if hint is None:
                    raise
                raise Again from None  # judge on the stored record, so the reason given is the real one
            new = fn(old, now)
            ops: list[Any] = [
                ("update", self._action_entity(fid, new, claim.token if new.claimed_by else None), replace_if(a_etag))
            ]
            if live is not None and int(live["head_seq"]) == a0.position:
                if new.state in TERMINAL_STATES:
                    ops += self._advance_ops(fid, live, t_etag, now)
                elif rules.ready_at(new) != live.get("ready_at"):
                    live = {**live, "ready_at": rules.ready_at(new)}
                    ops.append(("update", live, replace_if(t_etag)))
            results = self._t["actions"].submit_transaction(ops)
            if new.claimed_by is None:
                return new, None
            return new, {"a": results[0]["etag"], "t": live, "t_etag": results[1]["etag"] if len(ops) > 1 else t_etag}

        with self._azure(f"update action {a0.id}"):
            return self._optimistic(f"action {a0.id}", attempt, lost=ClaimLostError, gone_too=True)

    def _zap(self, fid: str, aid: str, now: float) -> Action:
        def attempt() -> Action:
            index = self._get("actions", fid, f"U~{aid}")
            ent = None if index is None else self._get("actions", fid, f"A~{index['t']}~{position_key(int(index['seq']))}")
            if index is None or ent is None:
                raise NotFoundError(f"action {aid} does not exist in federation {fid!r}")
            new = rules.t_zap(self._action(ent), now)
            ops: list[Any] = [("update", self._action_entity(fid, new, None), replace_if(etag_of(ent)))]
            live = self._get("actions", fid, f"T~{index['t']}")
            if live is not None and int(live["head_seq"]) == new.position:
                ops += self._advance_ops(fid, live, etag_of(live), now)
            self._t["actions"].submit_transaction(ops)
            return new

        with self._azure(f"zap action {aid}"):
            zapped = self._optimistic(f"zap action {aid}", attempt, gone_too=True)
            self._hint(fid, [aid])
        return zapped

    def _mutate_claimed_and_locate(
        self, claim: Claim, fn: Transition, now: float, where: LocationKey, change: LocationChange
    ) -> tuple[Action, Any]:
        # the location first: a crash between the two leaves a location that the retry records
        # again (idempotent), never a journal step whose location is missing
        fid = claim.federation_id
        rk = self._locate_claimed(*where, change)
        try:
            return self._mutate_claimed(claim, fn, now)
        except ClaimLostError as exc:
            if self._undo_if_destroyed(fid, rk):
                raise NotFoundError(f"federation {fid!r} does not exist (destroyed meanwhile)") from exc
            raise

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
        placed = self._mutate_located(claim, fn, now, located)[0]
        try:  # the placement is written: the claim is a bonus, its failure not the placement's
            return placed, self._claim(claim.federation_id, worker, token, deadline, now)
        except StoreError as exc:
            log.warning("placed action %s; claiming the next one with it failed: %s", placed.id, exc)
            return placed, None
