"""Claims and the claimed action's changes on the Azure store: ETag-conditional writes of the
action and its FIFO record in one transaction. Placing and claiming the next action, or
changing an action and its job's location, are two steps here (no transaction spans them)."""

from __future__ import annotations

import logging
import time
from typing import Any

from ...errors import ClaimLostError, NotFoundError, StoreError
from .. import rules
from ..primitives import Located, LocationChange, LocationKey, Transition
from ..records import TERMINAL_STATES, Action, Claim
from .ahead import AheadEnqueue
from .entities import Again, etag_of, h, position_key, replace_if, unpack

log = logging.getLogger(__name__)


class ActionClaims(AheadEnqueue):
    """Claims, claimed changes and zaps, each an optimistic transaction in the federation's partition."""

    def _claim(self, fid: str, worker: str, token: str, deadline: float, now: float) -> Claim | None:
        if self.is_suspended():  # a read of its own: no transaction spans the flag and the FIFOs
            return None
        with self._azure(f"claim in federation {fid!r}"):
            if time.monotonic() - self._recovered.get(fid, 0.0) > 5.0:
                self._recover(fid)
            return self._optimistic(
                f"claim in federation {fid!r}", lambda: self._claim_once(fid, worker, token, deadline, now), gone_too=True
            )

    def _claim_once(self, fid: str, worker: str, token: str, deadline: float, now: float) -> Claim | None:
        ready = self._range("actions", fid, "T~", "ready_at le @now", now=now)
        if not ready:
            return None
        live = self._pick_fifo(ready, now)
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
        hint = {"a": results[0]["etag"], "t": {**live, "ready_at": deadline}, "t_etag": results[1]["etag"]}
        return Claim(claimed, token, worker, rules.claimed_until(claimed), hint)

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
        self._change_location(*where, change)
        return self._mutate_claimed(claim, fn, now)

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
