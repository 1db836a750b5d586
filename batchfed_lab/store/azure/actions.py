"""Action entities of the Azure store and their FIFO records (table ``actions``), and the
reads of them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .. import rules
from ..records import Action, ActionState, Counts, epoch
from ..rules import counts_from
from .entities import (
    INLINE_CHARS,
    REPLACE,
    delete_if,
    etag_of,
    h,
    pack,
    position_key,
    replace_if,
    unpack,
)
from .locations import LocationRecords

FIFO_QUERY = 7  # targets per query of FIFO records: Azure Tables allow 15 comparisons in a filter


def _last_at(live: Mapping[str, Any]) -> dict[str, Any]:
    """The latest enqueue time a FIFO record carries on to its idle record (none on older ones)."""
    return {"last_at": live["last_at"]} if live.get("last_at") is not None else {}


def _claim_order_of(a: Action) -> dict[str, Any]:
    """What a claim order groups a FIFO by: its head action's submitter and priority."""
    return {"priority": a.priority} if a.submitter is None else {"submitter": a.submitter, "priority": a.priority}


class ActionTables(LocationRecords):
    """Action entities (one per FIFO position, large payloads in blobs), FIFO records, reads."""

    # ------------------------------------------------------------------ action entities
    def _action_entity(self, fid: str, a: Action, token: str | None, fields: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """The whole entity (writes REPLACE it, so cleared fields really go)."""
        doc = rules.action_doc(a, token, payload_text="")
        doc.update(fields if fields is not None else self._payload_fields(a.federation_id, a, None))
        return pack({"PartitionKey": fid, "RowKey": self._a_rk(a.target_id, a.position), **doc})

    @staticmethod
    def _a_rk(target: str, seq: int) -> str:
        return f"A~{h(rules.target_key(target))}~{position_key(seq)}"

    def _action(self, ent: Mapping[str, Any]) -> Action:
        doc = unpack(ent)
        if doc.get("payload_ref"):
            doc["payload"] = self._read_blob(doc["payload_ref"]) or "{}"
        return rules.action_from_doc(doc)

    def _payload_fields(self, fid: str, a: Action, text: str | None) -> dict[str, Any]:
        """Small payloads live in the entity; larger ones in a blob the entity points to
        (uploaded once at enqueue: ``text`` None means "already stored")."""
        stored = text is None
        if text is None:
            text = rules.dump_json(a.payload, "payload")
        if len(text) <= INLINE_CHARS:
            return {"payload": text}
        name = f"{fid}/payload/{a.id}.json"
        if not stored:
            self._put_blob(name, text)
        return {"payload": "", "payload_ref": name}

    # ------------------------------------------------------------------ FIFO records
    def _fifo_state(self, fid: str, tk: str) -> tuple[Any | None, Any | None]:
        """(live FIFO record, idle FIFO record) of a target hash."""
        return self._fifo_states(fid, [tk])[tk]

    def _fifo_states(self, fid: str, tks: list[str]) -> dict[str, tuple[Any | None, Any | None]]:
        """:meth:`_fifo_state` of several target hashes, ``FIFO_QUERY`` of them per query."""
        states: dict[str, tuple[Any | None, Any | None]] = {}
        for i in range(0, len(tks), FIFO_QUERY):
            part = tks[i : i + FIFO_QUERY]
            params: dict[str, str] = {}
            for n, tk in enumerate(part):
                params[f"t{n}"], params[f"i{n}"] = f"T~{tk}", f"I~{tk}"
            where = "PartitionKey eq @pk and ( " + " or ".join(f"RowKey eq @{k}" for k in params) + " )"
            found = {e["RowKey"]: e for e in self._query("actions", where, None, pk=fid, **params)}
            for tk in part:
                live = found.get(f"T~{tk}")
                states[tk] = live, (None if live is not None else found.get(f"I~{tk}"))
        return states

    def _append_ops(
        self, fid: str, tk: str, live: Any, idle: Any, items: list[tuple[Action, dict[str, Any]]]
    ) -> tuple[list[Any], list[Action]]:
        """Operations that append ``items`` to one target's FIFO, conditional on its FIFO record."""
        record = live if live is not None else idle
        first = int(record["next_seq"]) if record is not None else 1
        # the record keeps the FIFO's latest enqueue time ("last_at"): times never go back along it
        latest = record.get("last_at") if record is not None else None
        ops: list[Any] = []
        placed = []
        for n, (a, fields) in enumerate(items):
            a = a.replace(position=first + n, enqueued_at=rules.not_before(a.enqueued_at, latest))
            latest = epoch(a.enqueued_at)
            placed.append(a)
            ent = self._action_entity(fid, a, None, fields)
            ops.append(("create", ent))
            ops.append(("create", {"PartitionKey": fid, "RowKey": f"U~{a.id}", "t": tk, "seq": a.position}))
        nxt = first + len(items)
        if live is not None:
            ops.append(("update", {**live, "next_seq": nxt, "last_at": latest}, replace_if(etag_of(live))))
        else:
            ready = rules.ready_at(placed[0])
            fifo = {"next_seq": nxt, "head_seq": first, "ready_at": ready, "last_at": latest, **_claim_order_of(placed[0])}
            ops.append(("create", {"PartitionKey": fid, "RowKey": f"T~{tk}", **fifo}))
            if idle is not None:
                ops.append(("delete", {"PartitionKey": fid, "RowKey": f"I~{tk}"}, delete_if(etag_of(idle))))
        return ops, placed

    def _advance_ops(self, fid: str, live: Mapping[str, Any], etag: str, now: float) -> list[Any]:
        """The head ended: point the FIFO at the next position, or park it as idle."""
        head, nxt = int(live["head_seq"]), int(live["next_seq"])
        if head + 1 < nxt:
            ordered = self._ordered_as(fid, live, head + 1)
            return [("update", {**ordered, "head_seq": head + 1, "ready_at": now}, replace_if(etag))]
        return [
            ("delete", {"PartitionKey": fid, "RowKey": live["RowKey"]}, delete_if(etag)),
            ("upsert", {"PartitionKey": fid, "RowKey": "I" + live["RowKey"][1:], "next_seq": nxt, **_last_at(live)}, REPLACE),
        ]

    def _ordered_as(self, fid: str, live: Mapping[str, Any], seq: int) -> dict[str, Any]:
        """The FIFO record carrying the claim order of its action at ``seq`` (its new head):
        each head competes with its own submitter and priority, as on SQLite. One small read,
        only when a job id has another action queued behind the one that ended."""
        rk = f"A~{live['RowKey'][2:]}~{position_key(seq)}"
        found = self._query("actions", "PartitionKey eq @pk and RowKey eq @rk", ["submitter", "priority"], pk=fid, rk=rk)
        if not found:  # zapped meanwhile: the claim skips the hole and orders the next
            return dict(live)
        base = {k: v for k, v in live.items() if k not in ("submitter", "priority")}
        who = found[0].get("submitter")
        return {**base, **({"submitter": who} if who else {}), "priority": int(found[0].get("priority") or 0)}

    # ------------------------------------------------------------------ reading actions
    def _get_action_entity(self, fid: str, aid: str) -> Any | None:
        index = self._get("actions", fid, f"U~{aid}")
        return None if index is None else self._get("actions", fid, f"A~{index['t']}~{position_key(int(index['seq']))}")

    def _get_action(self, fid: str, aid: str) -> Action | None:
        with self._azure(f"read action {aid}"):
            ent = self._get_action_entity(fid, aid)
            return None if ent is None else self._action(ent)

    def _claim_token(self, fid: str, aid: str) -> str | None:
        with self._azure(f"read action {aid}"):
            ent = self._get_action_entity(fid, aid)
            return None if ent is None else ent.get("claim_token")

    def _head(self, fid: str, tkey: str) -> Action | None:
        with self._azure("read FIFO head"):
            live = self._get("actions", fid, f"T~{h(tkey)}")
            if live is None:
                return None
            lo = f"A~{h(tkey)}~{position_key(int(live['head_seq']))}"
            rows = self._query(
                "actions",
                "PartitionKey eq @pk and RowKey ge @lo and RowKey lt @hi and (state eq 'queued' or state eq 'blocked')",
                pk=fid,
                lo=lo,
                hi=f"A~{h(tkey)}~~",
            )
            return self._action(rows[0]) if rows else None

    def _list_actions(self, fid: str, tkey: str | None, states: frozenset[ActionState] | None, limit: int | None) -> list[Action]:
        with self._azure("list actions"):
            extra = " or ".join(f"state eq '{s.value}'" for s in sorted(states or [])) if states is not None else ""
            if states is not None and not states:
                return []
            rows = self._range("actions", fid, "A~" if tkey is None else f"A~{h(tkey)}~", extra)
            found = sorted((self._action(r) for r in rows), key=lambda a: (rules.target_key(a.target_id), a.position))
        return found if limit is None else found[: int(limit)]

    def _counts(self, fid: str) -> Counts:
        with self._azure("count actions"):
            by_state: dict[str, int] = {}
            claimed, now = 0, self.now()
            for r in self._range("actions", fid, "A~", select=["state", "claim_deadline"]):
                by_state[r["state"]] = by_state.get(r["state"], 0) + 1
                claimed += bool(r.get("claim_deadline") and r["claim_deadline"] > now)
            jobs = {r["job_key"] for r in self._query("locations", "PartitionKey eq @pk", ["job_key"], pk=fid)}
        return counts_from(by_state, claimed, len(jobs))

    def _located(self, fid: str, tkey: str) -> bool:
        return bool(self._range("locations", fid, f"{h(tkey)}~", select=["RowKey"]))

    def _in_use(self, fid: str, tkey: str) -> bool:
        with self._azure("check job id"):
            return self._get("actions", fid, f"T~{h(tkey)}") is not None or self._located(fid, tkey)

    def _next_ready(self, fid: str) -> float | None:
        with self._azure("read ready times"):
            times = [
                r["ready_at"] for r in self._range("actions", fid, "T~", select=["ready_at"]) if r.get("ready_at") is not None
            ]
        return min(times) if times else None
