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
from .ahead import AheadEnqueue
from .entities import MAX_TX_OPS, Again, etag_of, h, lost_race, position_key, replace_if, unpack

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

    def take(
        self, now: float, listing: Callable[[], list[Any]], count: int = 1, pick: Callable[[list[Any]], Any] | None = None
    ) -> list[Any]:
        """Up to ``count`` records: the readiest first, or each the one ``pick`` (the store's
        claim order: priority, fair share) chooses among those ready."""
        arrived = time.monotonic()
        with self.lock:  # one listing at a time: claimers arriving meanwhile take from its answer
            if self.listed_at < arrived and (not self.records or arrived - self.listed_at > READY_FOR):
                began = time.monotonic()
                rows = [r for r in listing() if r["RowKey"] not in self.taken]
                self.records = sorted(rows, key=lambda r: (r["ready_at"], r["RowKey"]), reverse=True)
                self.listed_at = began
            taken: list[Any] = []
            # a record listed by a claimer whose clock ran ahead stays for later
            while self.records and len(taken) < count and self.records[-1]["ready_at"] <= now:
                if pick is None:
                    taken.append(self.records.pop())
                    continue
                chosen = pick([r for r in self.records if r["ready_at"] <= now])
                self.records.remove(chosen)
                taken.append(chosen)
            self.taken.update(r["RowKey"] for r in taken)
            return taken

    def finished(self, record: Any) -> None:
        with self.lock:
            self.taken.discard(record["RowKey"])

    def clear(self) -> None:
        with self.lock:
            self.records = []


def _head_rk(live: Any) -> str:
    """The row key of the head action of the FIFO record ``live``."""
    return f"A~{live['RowKey'][2:]}~{position_key(int(live['head_seq']))}"


def _claim(claimed: Action, token: str, worker: str, live: Any, deadline: float, results: list[Any]) -> Claim:
    """The claim, with what the next step of it needs to write without reading first."""
    hint = {"a": results[0]["etag"], "t": {**live, "ready_at": deadline}, "t_etag": results[1]["etag"]}
    return Claim(claimed, token, worker, rules.claimed_until(claimed), hint)


class ActionClaims(AheadEnqueue):
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
        taken = heads.take(now, self._listing(fid, now), pick=self._claim_order(fid, now))
        if not taken:
            return None
        live = taken[0]
        try:
            ent = self._get("actions", fid, _head_rk(live))
            if ent is None or ent["state"] not in ("queued", "blocked"):
                # zapped while not yet the head: skip the hole
                self._t["actions"].submit_transaction(self._advance_ops(fid, live, etag_of(live), now))
                raise Again
            ops, claimed = self._claim_ops(fid, live, ent, worker, token, deadline)
            results = self._t["actions"].submit_transaction(ops)
        except HttpResponseError:
            heads.clear()  # another writer moved the FIFOs on: read them afresh
            raise
        finally:
            heads.finished(live)
        return _claim(claimed, token, worker, live, deadline, results)

    def _claim_order(self, fid: str, now: float) -> Callable[[list[Any]], Any] | None:
        """How the next head is chosen among the ready ones: readiest first without a claim order."""
        if self.head_order is None:
            return None
        return lambda ready: self._pick_fifo(ready, now, fid)

    def _listing(self, fid: str, now: float) -> Callable[[], list[Any]]:
        return lambda: self._range("actions", fid, "T~", "ready_at le @now", now=now)

    def _claim_ops(self, fid: str, live: Any, ent: Any, worker: str, token: str, deadline: float) -> tuple[list[Any], Action]:
        """The two conditional writes that claim the head ``ent`` of the FIFO ``live``."""
        claimed = rules.t_claim(self._action(ent), worker, deadline)
        fields = {k: ent[k] for k in ent if k == "payload_ref" or k.split("__")[0] == "payload"}
        ops = [
            ("update", self._action_entity(fid, claimed, token, unpack(fields)), replace_if(etag_of(ent))),
            ("update", {**live, "ready_at": deadline}, replace_if(etag_of(live))),
        ]
        return ops, claimed

    def _claim_many(self, fid: str, worker: str, tokens: list[str], deadline: float, now: float) -> list[Claim]:
        """Several heads claimed in one transaction (their entities read 14 per query); a hole
        (a zapped head) or a lost race leaves the rest to one claim at a time."""
        if len(tokens) < 2 or self._claims_suspended():
            return super()._claim_many(fid, worker, tokens, deadline, now)  # (suspended: nothing)
        with self._azure(f"claim in federation {fid!r}"):
            if time.monotonic() - self._recovered.get(fid, 0.0) > 5.0:
                self._recover(fid)
            heads = self._ready_heads(fid)
            lives = heads.take(now, self._listing(fid, now), min(len(tokens), MAX_TX_OPS // 2), self._claim_order(fid, now))
            if not lives:
                return []
            claims: list[Claim] = []
            try:
                ents = self._rows("actions", fid, [_head_rk(live) for live in lives])
                if all(ents.get(_head_rk(live), {}).get("state") in ("queued", "blocked") for live in lives):
                    claims = self._claim_heads(fid, worker, tokens, deadline, lives, ents)
            except HttpResponseError as exc:
                if not (lost_race(exc) or exc.status_code == 404):
                    raise
                heads.clear()
            finally:
                for live in lives:
                    heads.finished(live)
        if claims and len(claims) == len(lives) < len(tokens):
            return claims  # every ready head listed is claimed
        return claims + super()._claim_many(fid, worker, tokens[len(claims) :], deadline, now)

    def _claim_heads(
        self, fid: str, worker: str, tokens: list[str], deadline: float, lives: list[Any], ents: dict[str, Any]
    ) -> list[Claim]:
        ops: list[Any] = []
        claimed: list[Action] = []
        for live, token in zip(lives, tokens):
            more, action = self._claim_ops(fid, live, ents[_head_rk(live)], worker, token, deadline)
            ops += more
            claimed.append(action)
        results = self._t["actions"].submit_transaction(ops)
        return [
            _claim(a, token, worker, live, deadline, results[2 * n : 2 * n + 2])
            for n, (a, token, live) in enumerate(zip(claimed, tokens, lives))
        ]

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
