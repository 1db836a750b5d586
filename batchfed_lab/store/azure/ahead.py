"""A move ahead of its job's later actions on the Azure store (``Store.enqueue_move``).

FIFO positions are contiguous RowKeys, so the move takes the position of the first active
action no claim holds and every entity from there shifts one on: each position from there is
replaced by its predecessor's content (ETag-conditional), one is created at the end, the id
index follows, and the FIFO record counts one more — one entity-group transaction, every
entity touched once. Appending is the fallback when nothing waits (or more than one
transaction's worth would shift). The claim path is untouched: a claimed head is never
shifted, and its cached FIFO ETag merely goes stale (its next write reads afresh).
"""

from __future__ import annotations

from typing import Any

from .. import rules
from ..records import Action
from .actions import _claim_order_of
from .entities import MAX_TX_OPS, REPLACE, etag_of, h, position_key, replace_if
from .journal import ActionJournal

_FIXED_OPS = 3  # the move's index entry, the created last position, the FIFO record


class AheadEnqueue(ActionJournal):
    def _enqueue_ahead(self, fid: str, action: Action, payload: str, now: float) -> Action:
        with self._azure(f"enqueue a move to federation {fid!r}"):
            self._recover(fid)  # a committed journal goes first, in order
            self._require_fed(fid)
            tk = h(rules.target_key(action.target_id))
            fields = self._payload_fields(fid, action, payload)
            placed = self._optimistic(
                f"enqueue a move of {action.target_id!r}", lambda: self._ahead_once(fid, tk, action, fields, now), gone_too=True
            )
            self._hint(fid, [placed.id])
            return placed

    def _ahead_once(self, fid: str, tk: str, action: Action, fields: dict[str, Any], now: float) -> Action:
        live, idle = self._fifo_state(fid, tk)
        shifted = [] if live is None else self._from_first_free(fid, tk, live, now)
        if not shifted or 2 * len(shifted) + _FIXED_OPS > MAX_TX_OPS:
            appended, placed = self._append_ops(fid, tk, live, idle, [(action, fields)])
            self._t["actions"].submit_transaction(appended)
            return placed[0]
        assert live is not None
        at = int(shifted[0]["seq"])
        move = action.replace(position=at)
        contents = [self._action_entity(fid, move, None, fields), *(dict(e) for e in shifted)]
        ops: list[Any] = []
        for n, content in enumerate(contents):
            seq = at + n
            content = {**content, "RowKey": self._a_rk(action.target_id, seq), "seq": seq}
            if n < len(shifted):
                ops.append(("update", content, replace_if(etag_of(shifted[n]))))
            else:
                ops.append(("create", content))
            ops.append(("upsert", {"PartitionKey": fid, "RowKey": f"U~{content['id']}", "t": tk, "seq": seq}, REPLACE))
        record = {**live, "next_seq": int(live["next_seq"]) + 1}
        if at == int(live["head_seq"]):  # the move is the head now: it opens the FIFO
            record = {k: v for k, v in record.items() if k not in ("submitter", "priority")}
            record.update({"ready_at": rules.ready_at(move), **_claim_order_of(move)})
        ops.append(("update", record, replace_if(etag_of(live))))
        self._t["actions"].submit_transaction(ops)
        return move

    def _from_first_free(self, fid: str, tk: str, live: Any, now: float) -> list[Any]:
        """The entities from the first active action that no claim holds to the FIFO's end
        (empty when there is none, or when a position is missing)."""
        head, nxt = int(live["head_seq"]), int(live["next_seq"])
        rows = self._range("actions", fid, f"A~{tk}~", "RowKey ge @start", start=f"A~{tk}~{position_key(head)}")
        rows = sorted(rows, key=lambda e: int(e["seq"]))
        for n, e in enumerate(rows):
            held = e.get("claim_deadline") is not None and float(e["claim_deadline"]) > now
            if e["state"] in ("queued", "blocked") and not held:
                tail = rows[n:]
                return tail if [int(x["seq"]) for x in tail] == list(range(int(e["seq"]), nxt)) else []
        return []
