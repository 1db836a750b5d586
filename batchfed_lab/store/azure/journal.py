"""Enqueueing on the Azure store: one entity-group transaction when the batch fits, else a
committed journal (one entity insert is the commit point) applied chunk by chunk, which any
writer or claimer finishes after a crash."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from typing import Any

from azure.core.exceptions import ResourceNotFoundError

from ...errors import StoreError
from .. import rules
from ..records import Action, Federation
from ..rules import in_use_error, needs_unique_check
from .actions import ActionTables
from .entities import (
    CHUNK_ACTIONS,
    MAX_TX_BYTES,
    MAX_TX_OPS,
    RETRIES,
    TX_ROUNDS,
    Contention,
    h,
)

Piece = tuple[str, list[tuple[Action, dict[str, Any]]]]  # a target hash and consecutive actions of its FIFO


def _pieces(groups: dict[str, list[tuple[Action, dict[str, Any]]]]) -> list[Piece]:
    """A journal's actions cut into pieces of at most ``CHUNK_ACTIONS`` of one target each:
    the same cut for every writer that applies the journal, whatever its version."""
    return [(tk, items[i : i + CHUNK_ACTIONS]) for tk, items in groups.items() for i in range(0, len(items), CHUNK_ACTIONS)]


def _transactions(pieces: list[Piece]) -> list[list[Piece]]:
    """Consecutive pieces of different targets grouped while their operations fit one
    entity-group transaction (an action and its index entity each, two FIFO records a piece)."""
    groups: list[list[Piece]] = []
    ops = size = 0
    for tk, items in pieces:
        cost, weight = 2 * len(items) + 2, sum(len(json.dumps(f)) + 2048 for _, f in items)
        if not groups or ops + cost > MAX_TX_OPS or size + weight > MAX_TX_BYTES or any(tk == t for t, _ in groups[-1]):
            groups.append([])
            ops = size = 0
        groups[-1].append((tk, items))
        ops, size = ops + cost, size + weight
    return groups


class ActionJournal(ActionTables):
    """``_enqueue``: all or none, in FIFO order, whatever the batch's size."""

    def _enqueue(self, fid: str, actions: list[Action], payloads: list[str], now: float) -> list[Action]:
        with self._azure(f"enqueue to federation {fid!r}"):
            self._recover(fid)  # a committed large batch goes first, in order
            fed = self._require_fed(fid)
            groups: dict[str, list[tuple[Action, dict[str, Any]]]] = {}
            for a, text in zip(actions, payloads):
                groups.setdefault(h(rules.target_key(a.target_id)), []).append((a, self._payload_fields(fid, a, text)))
            size = sum(len(json.dumps(f)) + 2048 for items in groups.values() for _, f in items)
            placed = None
            if 2 * len(actions) + 2 * len(groups) <= MAX_TX_OPS and size <= MAX_TX_BYTES:
                try:
                    placed = self._enqueue_one_tx(fid, fed, groups)
                except Contention:
                    # one transaction over several busy FIFOs keeps losing races to claims and other
                    # writers: commit a journal instead (one insert), then apply it FIFO by FIFO
                    placed = None
            if placed is None:
                placed = self._enqueue_journal(fid, fed, groups)
            self._still_there(fid, lambda: self._sweep(fid))
            self._hint(fid, [a.id for a in placed])
        by_id = {a.id: a for a in placed}
        return [by_id[a.id] for a in actions]

    def _check_unique(self, fid: str, fed: Federation, tk: str, live: Any, items: list[tuple[Action, Any]]) -> None:
        for a, _ in items:
            if needs_unique_check(a, fed) and (live is not None or self._located(fid, rules.target_key(a.target_id))):
                raise in_use_error(a)

    def _enqueue_one_tx(self, fid: str, fed: Federation, groups: dict[str, list[tuple[Action, dict[str, Any]]]]) -> list[Action]:
        def attempt() -> list[Action]:
            ops: list[Any] = []
            placed: list[Action] = []
            for tk, items in groups.items():
                live, idle = self._fifo_state(fid, tk)
                self._check_unique(fid, fed, tk, live, items)
                more_ops, more = self._append_ops(fid, tk, live, idle, items)
                ops += more_ops
                placed += more
            self._t["actions"].submit_transaction(ops)
            return placed

        # single-FIFO batches rarely lose a race; multi-FIFO ones fall back to the journal early
        rounds = RETRIES if len(groups) == 1 else TX_ROUNDS
        return self._optimistic(f"enqueue to federation {fid!r}", attempt, gone_too=True, lost=Contention, rounds=rounds)

    def _enqueue_journal(self, fid: str, fed: Federation, groups: dict[str, list[tuple[Action, dict[str, Any]]]]) -> list[Action]:
        """More than one transaction's worth: commit a journal (one entity insert is the
        atomic commit point), then apply it chunk by chunk; anyone may finish it."""
        for tk, items in groups.items():
            if any(needs_unique_check(a, fed) for a, _ in items):
                live, _ = self._fifo_state(fid, tk)
                self._check_unique(fid, fed, tk, live, items)
        batch = uuid.uuid4().hex
        entries = [
            {"doc": rules.action_doc(a, None, payload_text=""), "fields": f} for items in groups.values() for a, f in items
        ]
        name = f"{fid}/journal/{batch}.json"
        self._put_blob(name, json.dumps(entries))
        self._crashpoint("journal.written")
        self._t["actions"].create_entity({"PartitionKey": fid, "RowKey": f"J~{batch}", "blob": name})
        self._crashpoint("journal.committed")
        placed = self._apply_journal(fid, batch, name)
        # chunks a concurrent recovery applied for us: read their positions back
        return [placed.get(e["doc"]["id"]) or self._located_action(fid, e["doc"]["id"]) for e in entries]

    def _located_action(self, fid: str, aid: str) -> Action:
        found = self._get_action_entity(fid, aid)
        if found is None:
            raise StoreError(f"azure store: action {aid} vanished while being enqueued")
        return self._action(found)

    def _apply_journal(self, fid: str, batch: str, name: str) -> dict[str, Action]:
        """Apply a committed journal; returns the actions this call placed, by id."""
        placed: dict[str, Action] = {}
        text = self._read_blob(name)
        groups: dict[str, list[tuple[Action, dict[str, Any]]]] = {}
        for entry in json.loads(text) if text else []:
            doc = {**entry["doc"], "payload": "{}"}  # the payload is in entry["fields"] or its blob
            a = rules.action_from_doc(doc)
            groups.setdefault(h(rules.target_key(a.target_id)), []).append((a, entry["fields"]))
        for group in _transactions(_pieces(groups)):
            placed.update((a.id, a) for a in self._apply_pieces(fid, group))
            self._crashpoint("journal.chunk")
        try:
            self._t["actions"].delete_entity(fid, f"J~{batch}")
        except ResourceNotFoundError:
            pass
        try:
            self._data.delete_blob(name)
        except ResourceNotFoundError:
            pass
        return placed

    def _apply_pieces(self, fid: str, pieces: list[Piece]) -> list[Action]:
        """Apply the pieces not applied yet in one transaction; pieces commit whole, so "its
        first action exists" means "applied already", however pieces were grouped. A group
        that keeps losing races to claims on its FIFOs is applied piece by piece."""
        if len(pieces) == 1:
            return self._optimistic(f"federation {fid!r}: apply an enqueue journal", self._pieces_tx(fid, pieces), gone_too=True)
        try:
            return self._optimistic(
                f"federation {fid!r}: apply an enqueue journal",
                self._pieces_tx(fid, pieces),
                gone_too=True,
                lost=Contention,
                rounds=TX_ROUNDS,
            )
        except Contention:
            return [a for piece in pieces for a in self._apply_pieces(fid, [piece])]

    def _pieces_tx(self, fid: str, pieces: list[Piece]) -> Callable[[], list[Action]]:
        def attempt() -> list[Action]:
            applied = self._rows("actions", fid, [f"U~{piece[1][0][0].id}" for piece in pieces], ["RowKey"])
            todo = [piece for piece in pieces if f"U~{piece[1][0][0].id}" not in applied]
            if not todo:
                return []
            states = self._fifo_states(fid, [tk for tk, _ in todo])
            ops: list[Any] = []
            placed: list[Action] = []
            for tk, items in todo:
                more_ops, more = self._append_ops(fid, tk, *states[tk], items)
                ops += more_ops
                placed += more
            self._t["actions"].submit_transaction(ops)
            return placed

        return attempt

    def _recover(self, fid: str) -> None:
        """Finish committed journals of crashed writers (idempotent, safe to race)."""
        self._recovered[fid] = time.monotonic()
        for j in self._range("actions", fid, "J~"):
            self._apply_journal(fid, j["RowKey"][2:], j["blob"])
