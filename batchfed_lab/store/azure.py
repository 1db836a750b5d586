"""Azure backend: Table storage for records, one Storage queue per federation for
wake-up hints, Blob storage for large payloads, journals and the leader lease.

Layout (``p`` = the configured prefix; ``h(x)`` = 32 hex digits of sha256, so any
unicode id of any allowed length makes a valid, bounded key)::

    table pfeds      PK 'fed'   RK fid                   unique flag, created, state (active|destroying)
    table ppools     PK 'pool'  RK h(url|pool)            one entity per pool: a pool has one federation
    table pactions   PK fid     RK T~h(target)            live FIFO: next position, head position, ready_at
                                RK I~h(target)            idle FIFO: next position (kept so positions never repeat)
                                RK A~h(target)~0000000042 one action per FIFO position (no per-job cap)
                                RK U~<action id>          unique-id index → (target, position)
                                RK J~<batch id>           committed journal of a large enqueue (roll-forward)
    table plocations PK fid     RK h(job)~kind~h(url|pool)
    table pmeta      PK 'signal' | 'flag' | 'proxy'
    blobs p-data     <fid>/payload/<action id>.json, <fid>/journal/<batch id>.json
    blobs p-leases   <lease name>   (Blob lease, holder/expiry in metadata)
    queue p-q-h(fid) action ids (hints only: the tables are the truth)

Every change that two writers can meet is an ETag-conditional write or an
entity-group transaction (≤ 100 operations, one partition) that includes one;
a lost race re-reads and tries again.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any, Callable, TypeVar

from azure.core import MatchConditions
from azure.core.exceptions import (
    AzureError,
    ClientAuthenticationError,
    HttpResponseError,
    ResourceExistsError,
    ResourceNotFoundError,
    ServiceRequestError,
    ServiceResponseError,
)
from azure.data.tables import TableServiceClient, UpdateMode
from azure.storage.blob import BlobLeaseClient, BlobServiceClient
from azure.storage.queue import ExponentialRetry as QueueRetry
from azure.storage.queue import QueueServiceClient

from ..errors import ClaimLostError, ConflictError, NotFoundError, PayloadTooLargeError, StoreError, StoreUnavailableError
from . import rules
from .base import (
    LocationChange,
    Store,
    Transition,
    counts_from,
    in_use_error,
    needs_unique_check,
    proxy_doc,
    proxy_from_doc,
)
from .records import (
    TERMINAL_STATES,
    Action,
    ActionKind,
    ActionState,
    Claim,
    Counts,
    DestroyReport,
    Federation,
    Lease,
    Location,
    Marks,
    PoolMember,
    ProxyRecord,
    epoch,
    utc,
)

CONNECTION_STRING_ENV = "BATCHFED_STORAGE_CONNECTION_STRING"
MAX_TX_OPS = 100  # entity-group transaction limit
MAX_TX_BYTES = 2_500_000  # well under the 4 MiB request limit
CHUNK_ACTIONS = 45  # journal chunk: 2 entities per action + FIFO records ≤ 100 operations
INLINE_CHARS = 15_000  # ≤ 30,000 UTF-16 units: below the 32K-unit string property limit
_REPLACE = {"mode": UpdateMode.REPLACE}
_RETRIES = 40  # optimistic-concurrency rounds before giving up
_TX_ROUNDS = 8  # rounds of a one-transaction enqueue over several FIFOs before it uses a journal
T = TypeVar("T")


def h(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


def _pos(seq: int) -> str:
    return f"{seq:010d}"


def _if(etag: str) -> dict[str, Any]:
    return {"mode": UpdateMode.REPLACE, "etag": etag, "match_condition": MatchConditions.IfNotModified}


def _del_if(etag: str) -> dict[str, Any]:
    return {"etag": etag, "match_condition": MatchConditions.IfNotModified}


def _pack(doc: Mapping[str, Any]) -> dict[str, Any]:
    """Table form: no None values (absent reads back as None), long strings split over
    ``name``, ``name__1``, ... so nothing is ever truncated."""
    out: dict[str, Any] = {}
    for key, value in doc.items():
        if value is None:
            continue
        if isinstance(value, str) and len(value) > INLINE_CHARS:
            parts = [value[i : i + INLINE_CHARS] for i in range(0, len(value), INLINE_CHARS)]
            out[key] = parts[0]
            for n, part in enumerate(parts[1:], 1):
                out[f"{key}__{n}"] = part
        else:
            out[key] = value
    return out


def _unpack(entity: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in entity.items():
        if "__" not in key:
            out[key] = value
    for key in sorted((k for k in entity if "__" in k), key=lambda k: (k.split("__")[0], int(k.split("__")[1]))):
        base = key.split("__")[0]
        out[base] = out.get(base, "") + entity[key]
    return out


def _etag(entity: Any) -> str:
    return entity.metadata["etag"]


class _Again(Exception):
    """Inside an optimistic attempt: the state moved on; read again and retry at once."""


class _Contention(ConflictError):
    """An optimistic transaction lost every round: the FIFO records it spans are too busy."""


def _conflict(exc: BaseException) -> bool:
    """A lost optimistic race: precondition failed (412) or already exists (409)."""
    return isinstance(exc, HttpResponseError) and exc.status_code in (409, 412)


class AzureStore(Store):
    backend = "azure"
    lease_ttl_range = (15.0, 60.0)  # Blob lease durations
    poll_interval = 0.5

    def __init__(
        self,
        tables: TableServiceClient,
        queues: QueueServiceClient,
        blobs: BlobServiceClient,
        *,
        prefix: str = "batchfed",
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        self.prefix = prefix
        self._tables, self._queues, self._blobs = tables, queues, blobs
        self._t = {n: tables.get_table_client(f"{prefix}{n}") for n in ("feds", "pools", "actions", "locations", "meta")}
        self._data = blobs.get_container_client(f"{prefix}-data")
        self._leases = blobs.get_container_client(f"{prefix}-leases")
        self._recovered: dict[str, float] = {}
        self._hints = 0  # queue messages seen by this instance
        with self._azure("create tables and containers"):
            for client in self._t.values():
                tables.create_table_if_not_exists(client.table_name)
            for container in (self._data, self._leases):
                try:
                    container.create_container()
                except ResourceExistsError:
                    pass

    def log_container(self) -> Any:
        """The ``<prefix>-logs`` blob container proxies persist their logs to (created on demand)."""
        container = self._blobs.get_container_client(f"{self.prefix}-logs")
        with self._azure("create the log container"):
            try:
                container.create_container()
            except ResourceExistsError:
                pass
        return container

    def __repr__(self) -> str:  # endpoints are not secrets; keys and connection strings never appear
        return f"AzureStore(prefix={self.prefix!r}, tables={self._tables.url.split('?')[0]!r})"

    @classmethod
    def from_connection_string(
        cls, connection_string: str, *, retries: int = 4, client_options: Mapping[str, Any] | None = None, **kwargs: Any
    ) -> "AzureStore":
        """``client_options`` go to all three SDK clients (e.g. ``transport=``, ``logging_enable=``)."""
        extra = dict(client_options or {})
        try:
            tables = TableServiceClient.from_connection_string(connection_string, **_table_retry(retries), **extra)
            queues = QueueServiceClient.from_connection_string(connection_string, retry_policy=_storage_retry(retries), **extra)
            blobs = BlobServiceClient.from_connection_string(connection_string, retry_policy=_storage_retry(retries), **extra)
        except (ValueError, AzureError) as exc:
            # the SDK's message may quote the string: say only what is wrong with it
            raise StoreError(f"{CONNECTION_STRING_ENV}: not a valid storage connection string ({type(exc).__name__})") from None
        return cls(tables, queues, blobs, **kwargs)

    @classmethod
    def from_settings(cls, settings: Any, **kwargs: Any) -> "AzureStore":
        """Build from ``workspace.settings.store.azure``: a connection string from the
        environment, or DefaultAzureCredential against the account's endpoints."""
        retries = kwargs.pop("retries", 4)
        if settings.credential == "connection_string":
            conn = os.environ.get(CONNECTION_STRING_ENV)
            if not conn:
                raise StoreError(f"store.azure.credential is connection_string but {CONNECTION_STRING_ENV} is not set")
            return cls.from_connection_string(conn, retries=retries, prefix=settings.prefix, **kwargs)
        endpoints = {}
        for service in ("table", "queue", "blob"):
            url = getattr(settings, f"{service}_endpoint") or (
                f"https://{settings.account_name}.{service}.core.windows.net" if settings.account_name else None
            )
            if url is None:
                raise StoreError(f"store.azure: set account_name (or {service}_endpoint) to use the azure store")
            endpoints[service] = url
        from azure.identity import DefaultAzureCredential

        cred = DefaultAzureCredential()
        return cls(
            TableServiceClient(endpoints["table"], credential=cred, **_table_retry(retries)),
            QueueServiceClient(endpoints["queue"], credential=cred, retry_policy=_storage_retry(retries)),
            BlobServiceClient(endpoints["blob"], credential=cred, retry_policy=_storage_retry(retries)),
            prefix=settings.prefix,
            **kwargs,
        )

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            for client in (*self._t.values(), self._tables, self._queues, self._blobs):
                client.close()

    # ------------------------------------------------------------------ SDK boundary
    @contextmanager
    def _azure(self, what: str) -> Iterator[None]:
        """Translate SDK errors into the store's one-line errors (no URLs, no secrets)."""
        if self._closed:
            raise StoreError("azure store: used after close()")
        try:
            yield
        except (ServiceRequestError, ServiceResponseError) as exc:
            raise StoreUnavailableError(f"azure store: {what}: storage service unreachable ({type(exc).__name__})") from exc
        except ClientAuthenticationError as exc:
            raise StoreError(f"azure store: {what}: credentials refused (status {exc.status_code})") from exc
        except HttpResponseError as exc:
            code = getattr(exc, "error_code", None) or ""
            if exc.status_code == 413 or "TooLarge" in str(code):
                raise PayloadTooLargeError(f"azure store: {what}: the record is over the service's size limit ({code})") from exc
            raise StoreError(f"azure store: {what}: status {exc.status_code} {code}".rstrip()) from exc

    def _get(self, table: str, pk: str, rk: str) -> Any | None:
        try:
            return self._t[table].get_entity(pk, rk)
        except ResourceNotFoundError:
            return None

    def _query(self, table: str, where: str, select: list[str] | None = None, **params: Any) -> list[Any]:
        return list(self._t[table].query_entities(where, parameters=params, select=select))

    def _range(self, table: str, pk: str, prefix: str, extra: str = "", select: list[str] | None = None, **params: Any) -> list[Any]:
        """Entities of one partition whose RowKey starts with ``prefix``."""
        # the SDK substitutes @names split on white space: keep them apart from parentheses
        where = "PartitionKey eq @pk and RowKey ge @lo and RowKey lt @hi" + (f" and ( {extra} )" if extra else "")
        return self._query(table, where, select, pk=pk, lo=prefix, hi=prefix + "~~", **params)

    def _delete_all(self, table: str, entities: list[Any]) -> None:
        by_pk: dict[str, list[Any]] = {}
        for e in entities:
            by_pk.setdefault(e["PartitionKey"], []).append(e)
        for pk, group in by_pk.items():
            for i in range(0, len(group), MAX_TX_OPS):
                ops = [("delete", {"PartitionKey": pk, "RowKey": e["RowKey"]}) for e in group[i : i + MAX_TX_OPS]]
                try:
                    self._t[table].submit_transaction(ops)
                except HttpResponseError as exc:
                    if exc.status_code != 404:
                        raise
                    for op in ops:  # someone deleted one already: delete the rest one by one
                        self._t[table].delete_entity(op[1]["PartitionKey"], op[1]["RowKey"])

    def _optimistic(
        self, what: str, attempt: Callable[[], T], *, lost: type[StoreError] = ConflictError, gone_too: bool = False,
        rounds: int = _RETRIES,
    ) -> T:  # fmt: skip
        """Run ``attempt`` until its conditional writes win. A 412/409 (someone wrote first;
        with ``gone_too`` also a 404: a FIFO record it read was parked or revived meanwhile)
        means: re-read and try again after a short random back-off, so contenders spread out.
        ``_Again`` retries at once."""
        for n in range(rounds):
            try:
                return attempt()
            except _Again:
                continue
            except HttpResponseError as exc:
                if not (_conflict(exc) or (gone_too and exc.status_code == 404)):
                    raise
            time.sleep(min(0.2, 0.002 * 2 ** min(n, 7)) * random.random())
        raise lost(f"{what}: too much contention, try again")

    def _bump(self, name: str) -> None:
        self._t["meta"].upsert_entity({"PartitionKey": "signal", "RowKey": name, "v": uuid.uuid4().hex}, mode=UpdateMode.REPLACE)

    # ------------------------------------------------------------------ blobs (payloads, journals)
    def _put_blob(self, name: str, text: str) -> None:
        self._data.upload_blob(name, text.encode("utf-8"), overwrite=True)

    def _read_blob(self, name: str) -> str | None:
        try:
            return self._data.download_blob(name).readall().decode("utf-8")
        except ResourceNotFoundError:
            return None

    # ------------------------------------------------------------------ federations
    def _fed_entity(self, fid: str) -> Any | None:
        ent = self._get("feds", "fed", fid)
        return None if ent is None or ent.get("state") == "destroying" else ent

    @staticmethod
    def _fed(ent: Mapping[str, Any]) -> Federation:
        return Federation(ent["RowKey"], bool(ent["unique_job_ids"]), utc(ent["created_at"]))  # type: ignore[arg-type]

    def _require_fed(self, fid: str) -> Federation:
        ent = self._fed_entity(fid)
        if ent is None:
            raise NotFoundError(f"federation {fid!r} does not exist")
        return self._fed(ent)

    def _queue(self, fid: str) -> Any:
        return self._queues.get_queue_client(f"{self.prefix}-q-{h(fid)}")

    def _create_federation(self, fed: Federation, force: bool) -> Federation:
        def attempt() -> Federation:
            ent = self._get("feds", "fed", fed.id)
            if ent is not None and ent.get("state") == "destroying":
                self._finish_destroy(fed.id)  # a crashed destroy: finish it before re-creating
                raise _Again
            if ent is not None and not force:
                raise ConflictError(f"federation {fed.id!r} exists already (force replaces its settings)")
            doc = {"PartitionKey": "fed", "RowKey": fed.id, "unique_job_ids": fed.unique_job_ids, "state": "active"}
            if ent is None:
                self._t["feds"].create_entity({**doc, "created_at": epoch(fed.created_at)})
                return fed
            self._t["feds"].update_entity({**doc, "created_at": ent["created_at"]}, **_if(_etag(ent)))
            return Federation(fed.id, fed.unique_job_ids, utc(ent["created_at"]))  # type: ignore[arg-type]

        with self._azure(f"create federation {fed.id!r}"):
            fed = self._optimistic(f"create federation {fed.id!r}", attempt)
            try:
                self._queue(fed.id).create_queue()
            except ResourceExistsError:
                pass
            except HttpResponseError:
                pass  # e.g. QueueBeingDeleted right after a destroy: hints are re-created on send
            self._bump("federations")
        return fed

    def _get_federation(self, fid: str) -> Federation | None:
        with self._azure(f"read federation {fid!r}"):
            ent = self._fed_entity(fid)
        return None if ent is None else self._fed(ent)

    def _list_federations(self) -> list[Federation]:
        with self._azure("list federations"):
            return [self._fed(e) for e in self._query("feds", "PartitionKey eq 'fed'") if e.get("state") != "destroying"]

    def _destroy_federation(self, fid: str) -> DestroyReport | None:
        with self._azure(f"destroy federation {fid!r}"):
            ent = self._get("feds", "fed", fid)
            if ent is None:
                return None
            # mark first: readers treat it as gone, and a crash can be finished later
            self._t["feds"].update_entity({"PartitionKey": "fed", "RowKey": fid, "state": "destroying"}, mode=UpdateMode.MERGE)
            self._bump("federations")
            return self._finish_destroy(fid)

    def _finish_destroy(self, fid: str) -> DestroyReport:
        pools = self._query("pools", "PartitionKey eq 'pool' and federation_id eq @f", ["PartitionKey", "RowKey"], f=fid)
        self._delete_all("pools", pools)
        self._crashpoint("destroy.step")
        actions = self._query("actions", "PartitionKey eq @pk", ["PartitionKey", "RowKey", "state"], pk=fid)
        records = [a for a in actions if a["RowKey"].startswith("A~")]
        active = sum(1 for a in records if a.get("state") in ("queued", "blocked"))
        self._delete_all("actions", actions)
        self._crashpoint("destroy.step")
        locations = self._query("locations", "PartitionKey eq @pk", ["PartitionKey", "RowKey"], pk=fid)
        self._delete_all("locations", locations)
        try:
            self._queue(fid).delete_queue()
        except ResourceNotFoundError:
            pass
        self._t["feds"].delete_entity("fed", fid)  # does not raise when already gone
        self._sweep(fid)  # writers that saw the federation before it was marked may have landed since
        self._bump("federations")
        return DestroyReport(fid, len(pools), active, len(records), len(locations))

    def _sweep(self, fid: str) -> None:
        """Remove whatever is left in the partitions and blob folder of a federation."""
        for table in ("actions", "locations"):
            self._delete_all(table, self._query(table, "PartitionKey eq @pk", ["PartitionKey", "RowKey"], pk=fid))
        for blob in self._data.list_blobs(name_starts_with=f"{fid}/"):
            try:
                self._data.delete_blob(blob.name)
            except ResourceNotFoundError:
                pass

    def _still_there(self, fid: str, undo: Callable[[], None]) -> None:
        """After writing under a federation: if a destroy began meanwhile, take the write back
        (its final sweep may already have run)."""
        if self._fed_entity(fid) is None:
            undo()
            raise NotFoundError(f"federation {fid!r} does not exist (destroyed meanwhile)")

    # ------------------------------------------------------------------ pools
    @staticmethod
    def _pool(ent: Mapping[str, Any]) -> PoolMember:
        return PoolMember(
            ent["federation_id"], ent["batch_service_url"], ent["pool_id"], ent.get("account"), ent.get("location"),
            utc(ent.get("added_at")),
        )  # fmt: skip

    def _add_pools(self, fid: str, members: list[PoolMember]) -> list[PoolMember]:
        with self._azure(f"add pools to federation {fid!r}"):
            self._require_fed(fid)
            entities = [
                _pack({
                    "PartitionKey": "pool", "RowKey": h(rules.pool_key(m.batch_service_url, m.pool_id)), "federation_id": fid,
                    "batch_service_url": m.batch_service_url, "pool_id": m.pool_id, "account": m.account,
                    "location": m.location, "added_at": epoch(m.added_at),
                })  # fmt: skip
                for m in members
            ]
            written: list[Any] = []
            for i in range(0, len(entities), MAX_TX_OPS):
                chunk = entities[i : i + MAX_TX_OPS]
                try:
                    self._t["pools"].submit_transaction([("create", e) for e in chunk])
                except HttpResponseError as exc:
                    if exc.status_code != 409:
                        raise
                    self._delete_all("pools", written)  # all or none
                    for m, e in zip(members[i:], chunk):
                        owner = self._get("pools", "pool", e["RowKey"])
                        if owner is not None:
                            from .sqlite import pool_taken

                            raise pool_taken(m, owner["federation_id"]) from None
                    raise
                written.extend(chunk)
                self._crashpoint("pools.row")
            self._still_there(fid, lambda: self._delete_all("pools", written))
            self._bump("federations")
        return members

    def _remove_pools(self, fid: str, keys: list[str] | None) -> list[PoolMember]:
        with self._azure(f"remove pools from federation {fid!r}"):
            self._require_fed(fid)
            if keys is None:
                found = self._query("pools", "PartitionKey eq 'pool' and federation_id eq @f", f=fid)
            else:
                found = []
                for key in keys:
                    ent = self._get("pools", "pool", h(key))
                    if ent is None or ent["federation_id"] != fid:
                        url, _, pid = key.rpartition("|")
                        raise NotFoundError(f"pool {pid!r} at {url} is not in federation {fid!r}")
                    found.append(ent)
            self._delete_all("pools", found)
            self._bump("federations")
        return [self._pool(e) for e in found]

    def _list_pools(self, fid: str | None) -> list[PoolMember]:
        with self._azure("list pools"):
            if fid is None:
                return [self._pool(e) for e in self._query("pools", "PartitionKey eq 'pool'")]
            return [self._pool(e) for e in self._query("pools", "PartitionKey eq 'pool' and federation_id eq @f", f=fid)]

    def _find_pool(self, key: str) -> PoolMember | None:
        with self._azure("find pool"):
            ent = self._get("pools", "pool", h(key))
        return None if ent is None else self._pool(ent)

    # ------------------------------------------------------------------ action entities
    def _action_entity(self, fid: str, a: Action, token: str | None, fields: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """The whole entity (writes REPLACE it, so cleared fields really go)."""
        doc = rules.action_doc(a, token, payload_text="")
        doc.update(fields if fields is not None else self._payload_fields(a.federation_id, a, None))
        return _pack({"PartitionKey": fid, "RowKey": self._a_rk(a.target_id, a.position), **doc})

    @staticmethod
    def _a_rk(target: str, seq: int) -> str:
        return f"A~{h(rules.target_key(target))}~{_pos(seq)}"

    def _action(self, ent: Mapping[str, Any]) -> Action:
        doc = _unpack(ent)
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

    def _fifo_state(self, fid: str, tk: str) -> tuple[Any | None, Any | None]:
        """(live FIFO record, idle FIFO record) of a target hash."""
        where = "PartitionKey eq @pk and ( RowKey eq @t or RowKey eq @i )"
        found = {e["RowKey"][0]: e for e in self._query("actions", where, pk=fid, t=f"T~{tk}", i=f"I~{tk}")}
        return found.get("T"), (None if "T" in found else found.get("I"))

    def _append_ops(
        self, fid: str, tk: str, live: Any, idle: Any, items: list[tuple[Action, dict[str, Any]]]
    ) -> tuple[list[Any], list[Action]]:
        """Operations that append ``items`` to one target's FIFO, conditional on its FIFO record."""
        first = int(live["next_seq"]) if live is not None else int(idle["next_seq"]) if idle is not None else 1
        ops: list[Any] = []
        placed = []
        for n, (a, fields) in enumerate(items):
            a = a.replace(position=first + n)
            placed.append(a)
            ent = self._action_entity(fid, a, None, fields)
            ops.append(("create", ent))
            ops.append(("create", {"PartitionKey": fid, "RowKey": f"U~{a.id}", "t": tk, "seq": a.position}))
        nxt = first + len(items)
        if live is not None:
            ops.append(("update", {**live, "next_seq": nxt}, _if(_etag(live))))
        else:
            ready = rules.ready_at(placed[0])
            ops.append(("create", {"PartitionKey": fid, "RowKey": f"T~{tk}", "next_seq": nxt, "head_seq": first, "ready_at": ready}))
            if idle is not None:
                ops.append(("delete", {"PartitionKey": fid, "RowKey": f"I~{tk}"}, _del_if(_etag(idle))))
        return ops, placed

    # ------------------------------------------------------------------ enqueue
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
                except _Contention:
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
        rounds = _RETRIES if len(groups) == 1 else _TX_ROUNDS
        return self._optimistic(f"enqueue to federation {fid!r}", attempt, gone_too=True, lost=_Contention, rounds=rounds)

    def _enqueue_journal(self, fid: str, fed: Federation, groups: dict[str, list[tuple[Action, dict[str, Any]]]]) -> list[Action]:
        """More than one transaction's worth: commit a journal (one entity insert is the
        atomic commit point), then apply it chunk by chunk; anyone may finish it."""
        for tk, items in groups.items():
            live, _ = self._fifo_state(fid, tk)
            self._check_unique(fid, fed, tk, live, items)
        batch = uuid.uuid4().hex
        entries = [{"doc": rules.action_doc(a, None, payload_text=""), "fields": f} for items in groups.values() for a, f in items]
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
        for tk, items in groups.items():
            for i in range(0, len(items), CHUNK_ACTIONS):
                placed.update((a.id, a) for a in self._apply_chunk(fid, tk, items[i : i + CHUNK_ACTIONS]))
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

    def _apply_chunk(self, fid: str, tk: str, chunk: list[tuple[Action, dict[str, Any]]]) -> list[Action]:
        """Chunks commit whole, so "its first action exists" means "applied already"."""
        def attempt() -> list[Action]:
            if self._get("actions", fid, f"U~{chunk[0][0].id}") is not None:
                return []
            live, idle = self._fifo_state(fid, tk)
            ops, placed = self._append_ops(fid, tk, live, idle, chunk)
            self._t["actions"].submit_transaction(ops)
            return placed

        return self._optimistic(f"federation {fid!r}: apply an enqueue journal", attempt, gone_too=True)

    def _recover(self, fid: str) -> None:
        """Finish committed journals of crashed writers (idempotent, safe to race)."""
        self._recovered[fid] = time.monotonic()
        for j in self._range("actions", fid, "J~"):
            self._apply_journal(fid, j["RowKey"][2:], j["blob"])

    def _hint(self, fid: str, ids: list[str]) -> None:
        """Wake proxies through the federation queue; best effort (they also poll)."""
        if not ids:
            return
        queue = self._queue(fid)
        for i in range(0, len(ids), 1000):
            text = json.dumps({"ids": ids[i : i + 1000]})
            try:
                queue.send_message(text, time_to_live=3600)
            except ResourceNotFoundError:
                try:
                    queue.create_queue()
                    queue.send_message(text, time_to_live=3600)
                except AzureError:
                    return
            except AzureError:
                return

    # ------------------------------------------------------------------ reading actions
    def _get_action_entity(self, fid: str, aid: str) -> Any | None:
        index = self._get("actions", fid, f"U~{aid}")
        return None if index is None else self._get("actions", fid, f"A~{index['t']}~{_pos(int(index['seq']))}")

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
            lo = f"A~{h(tkey)}~{_pos(int(live['head_seq']))}"
            rows = self._query(
                "actions",
                "PartitionKey eq @pk and RowKey ge @lo and RowKey lt @hi and (state eq 'queued' or state eq 'blocked')",
                pk=fid, lo=lo, hi=f"A~{h(tkey)}~~",
            )  # fmt: skip
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
            times = [r["ready_at"] for r in self._range("actions", fid, "T~", select=["ready_at"]) if r.get("ready_at") is not None]
        return min(times) if times else None

    # ------------------------------------------------------------------ claims
    @staticmethod
    def _advance_ops(fid: str, live: Mapping[str, Any], etag: str, now: float) -> list[Any]:
        """The head ended: point the FIFO at the next position, or park it as idle."""
        head, nxt = int(live["head_seq"]), int(live["next_seq"])
        if head + 1 < nxt:
            return [("update", {**live, "head_seq": head + 1, "ready_at": now}, _if(etag))]
        return [
            ("delete", {"PartitionKey": fid, "RowKey": live["RowKey"]}, _del_if(etag)),
            ("upsert", {"PartitionKey": fid, "RowKey": "I" + live["RowKey"][1:], "next_seq": nxt}, _REPLACE),
        ]

    def _claim(self, fid: str, worker: str, token: str, deadline: float, now: float) -> Claim | None:
        with self._azure(f"claim in federation {fid!r}"):
            if time.monotonic() - self._recovered.get(fid, 0.0) > 5.0:
                self._recover(fid)
            return self._optimistic(f"claim in federation {fid!r}", lambda: self._claim_once(fid, worker, token, deadline, now), gone_too=True)

    def _claim_once(self, fid: str, worker: str, token: str, deadline: float, now: float) -> Claim | None:
        ready = self._range("actions", fid, "T~", "ready_at le @now", now=now)
        if not ready:
            return None
        live = min(ready, key=lambda r: (r["ready_at"], r["RowKey"]))
        ent = self._get("actions", fid, f"A~{live['RowKey'][2:]}~{_pos(int(live['head_seq']))}")
        if ent is None or ent["state"] not in ("queued", "blocked"):
            # zapped while not yet the head: skip the hole
            self._t["actions"].submit_transaction(self._advance_ops(fid, live, _etag(live), now))
            raise _Again
        claimed = rules.t_claim(self._action(ent), worker, deadline)
        fields = {k: ent[k] for k in ent if k == "payload_ref" or k.split("__")[0] == "payload"}
        results = self._t["actions"].submit_transaction([
            ("update", self._action_entity(fid, claimed, token, _unpack(fields)), _if(_etag(ent))),
            ("update", {**live, "ready_at": deadline}, _if(_etag(live))),
        ])  # fmt: skip
        hint = {"a": results[0]["etag"], "t": {**live, "ready_at": deadline}, "t_etag": results[1]["etag"]}
        return Claim(claimed, token, worker, claimed.claim_deadline, hint)  # type: ignore[arg-type]

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
                old, stored, a_etag = self._action(ent), ent.get("claim_token"), _etag(ent)
                live = self._get("actions", fid, t_rk)
                t_etag = None if live is None else _etag(live)
            try:
                rules.check_claim(old, stored, claim.token, now)
            except ClaimLostError:
                if hint is None:
                    raise
                raise _Again from None  # judge on the stored record, so the reason given is the real one
            new = fn(old, now)
            ops: list[Any] = [("update", self._action_entity(fid, new, claim.token if new.claimed_by else None), _if(a_etag))]
            if live is not None and int(live["head_seq"]) == a0.position:
                if new.state in TERMINAL_STATES:
                    ops += self._advance_ops(fid, live, t_etag, now)  # type: ignore[arg-type]
                elif rules.ready_at(new) != live.get("ready_at"):
                    live = {**live, "ready_at": rules.ready_at(new)}
                    ops.append(("update", live, _if(t_etag)))  # type: ignore[arg-type]
            results = self._t["actions"].submit_transaction(ops)
            if new.claimed_by is None:
                return new, None
            return new, {"a": results[0]["etag"], "t": live, "t_etag": results[1]["etag"] if len(ops) > 1 else t_etag}

        with self._azure(f"update action {a0.id}"):
            return self._optimistic(f"action {a0.id}", attempt, lost=ClaimLostError, gone_too=True)

    def _zap(self, fid: str, aid: str, now: float) -> Action:
        def attempt() -> Action:
            index = self._get("actions", fid, f"U~{aid}")
            ent = None if index is None else self._get("actions", fid, f"A~{index['t']}~{_pos(int(index['seq']))}")
            if index is None or ent is None:
                raise NotFoundError(f"action {aid} does not exist in federation {fid!r}")
            new = rules.t_zap(self._action(ent), now)
            ops: list[Any] = [("update", self._action_entity(fid, new, None), _if(_etag(ent)))]
            live = self._get("actions", fid, f"T~{index['t']}")
            if live is not None and int(live["head_seq"]) == new.position:
                ops += self._advance_ops(fid, live, _etag(live), now)
            self._t["actions"].submit_transaction(ops)
            return new

        with self._azure(f"zap action {aid}"):
            zapped = self._optimistic(f"zap action {aid}", attempt, gone_too=True)
            self._hint(fid, [aid])
        return zapped

    # ------------------------------------------------------------------ locations
    @staticmethod
    def _loc_rk(job: str, kind: ActionKind, url: str, pid: str) -> str:
        return f"{h(rules.target_key(job))}~{kind.value}~{h(rules.pool_key(url, pid))}"

    def _change_location(self, fid: str, job: str, kind: ActionKind, url: str, pid: str, fn: LocationChange) -> Location | None:
        rk = self._loc_rk(job, kind, url, pid)
        table = self._t["locations"]
        def attempt() -> Location | None:
            ent = self._get("locations", fid, rk)
            new = fn(None if ent is None else rules.location_from_doc(_unpack(ent)), self.now())
            if new is None:
                if ent is not None:
                    table.delete_entity(fid, rk, **_del_if(_etag(ent)))
                return None
            doc = _pack({"PartitionKey": fid, "RowKey": rk, **rules.location_doc(new)})
            if ent is None:
                table.create_entity(doc)
            else:
                table.update_entity(doc, **_if(_etag(ent)))
            return new

        with self._azure(f"update location of {job!r}"):
            self._require_fed(fid)
            new = self._optimistic(f"location of {job!r}", attempt, gone_too=True)
            if new is not None:
                self._still_there(fid, lambda: table.delete_entity(fid, rk))
        return new

    def _get_locations(self, fid: str, job_key: str | None) -> list[Location]:
        with self._azure("read locations"):
            if job_key is None:
                rows = self._query("locations", "PartitionKey eq @pk", pk=fid)
            else:
                rows = self._range("locations", fid, f"{h(job_key)}~")
        return [rules.location_from_doc(_unpack(r)) for r in rows]

    # ------------------------------------------------------------------ leases (Blob leases)
    def _lease_client(self, name: str, holder: str) -> BlobLeaseClient:
        # one stable lease id per holder, so any process of that holder can renew or release
        return BlobLeaseClient(self._leases.get_blob_client(name), lease_id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"batchfed:{holder}")))

    def _lease_note(self, lease: BlobLeaseClient, name: str, holder: str, ttl: float, now: float) -> Lease:
        self._leases.get_blob_client(name).set_blob_metadata({"holder": holder, "expires": repr(now + ttl)}, lease=lease)
        return Lease(name, holder, utc(now + ttl))  # type: ignore[arg-type]

    def _lease_acquire(self, name: str, holder: str, ttl: float, now: float) -> Lease | None:
        with self._azure(f"acquire lease {name!r}"):
            blob = self._leases.get_blob_client(name)
            if not blob.exists():
                try:
                    blob.upload_blob(b"", overwrite=False)
                except (ResourceExistsError, HttpResponseError):
                    pass  # another contender created (and maybe leased) it
            lease = self._lease_client(name, holder)
            try:
                lease.acquire(lease_duration=int(round(ttl)))
            except HttpResponseError as exc:
                if exc.status_code != 409:
                    raise
                try:
                    lease.renew()  # held already: fine if it is ours
                except HttpResponseError:
                    return None
            return self._lease_note(lease, name, holder, ttl, now)

    def _lease_renew(self, name: str, holder: str, ttl: float, now: float) -> Lease | None:
        with self._azure(f"renew lease {name!r}"):
            lease = self._lease_client(name, holder)
            try:
                lease.renew()
            except HttpResponseError as exc:
                if exc.status_code not in (404, 409, 412):
                    raise
                return None
            return self._lease_note(lease, name, holder, ttl, now)

    def _lease_release(self, name: str, holder: str, now: float) -> bool:
        with self._azure(f"release lease {name!r}"):
            try:
                self._lease_client(name, holder).release()
                return True
            except HttpResponseError as exc:
                if exc.status_code not in (404, 409, 412):
                    raise
                return False

    def _lease_get(self, name: str, now: float) -> Lease | None:
        with self._azure(f"read lease {name!r}"):
            try:
                props = self._leases.get_blob_client(name).get_blob_properties()
            except ResourceNotFoundError:
                return None
        if props.lease.state != "leased" or "holder" not in props.metadata:
            return None
        return Lease(name, props.metadata["holder"], utc(float(props.metadata.get("expires", now))))  # type: ignore[arg-type]

    # ------------------------------------------------------------------ proxies, flags, signals
    def _put_proxy(self, rec: ProxyRecord) -> None:
        with self._azure("write proxy record"):
            entity = _pack({"PartitionKey": "proxy", "RowKey": h(rec.proxy_id), **proxy_doc(rec)})
            self._t["meta"].upsert_entity(entity, mode=UpdateMode.REPLACE)

    def _get_proxy(self, proxy_id: str) -> ProxyRecord | None:
        with self._azure("read proxy record"):
            ent = self._get("meta", "proxy", h(proxy_id))
        return None if ent is None else proxy_from_doc(_unpack(ent))

    def _list_proxies(self) -> list[ProxyRecord]:
        with self._azure("list proxy records"):
            return [proxy_from_doc(_unpack(e)) for e in self._query("meta", "PartitionKey eq 'proxy'")]

    def _remove_proxy(self, proxy_id: str) -> bool:
        with self._azure("remove proxy record"):
            if self._get("meta", "proxy", h(proxy_id)) is None:
                return False
            self._t["meta"].delete_entity("proxy", h(proxy_id))  # does not raise when already gone
            return True

    def _set_flag(self, name: str, value: bool) -> None:
        with self._azure(f"set flag {name!r}"):
            self._t["meta"].upsert_entity({"PartitionKey": "flag", "RowKey": name, "value": value}, mode=UpdateMode.REPLACE)
            self._bump("control")

    def _get_flag(self, name: str) -> bool:
        with self._azure(f"read flag {name!r}"):
            ent = self._get("meta", "flag", name)
        return bool(ent and ent.get("value"))

    def _marks(self) -> Marks:
        with self._azure("read change marks"):
            signals = {e["RowKey"]: e["v"] for e in self._query("meta", "PartitionKey eq 'signal'")}
        return Marks(signals.get("federations"), (self._local_version, self._hints), signals.get("control"))

    def _poll_changed(self) -> bool:
        """Drain the federation queues (they only say "look again"); re-read marks always,
        since federation and control changes are signalled in the meta table."""
        with self._azure("poll federation queues"):
            for fed in self._list_federations():
                queue = self._queue(fed.id)
                try:
                    for msg in queue.receive_messages(max_messages=32, visibility_timeout=30):
                        self._hints += 1
                        try:
                            queue.delete_message(msg)
                        except (ResourceNotFoundError, HttpResponseError):
                            pass
                except ResourceNotFoundError:
                    continue
        return True


def _table_retry(retries: int) -> dict[str, Any]:
    # retries with exponential backoff on 408/429/5xx (503 Server Busy included)
    return {"retry_total": retries, "retry_backoff_factor": 0.5, "retry_backoff_max": 8, "connection_timeout": 10}


def _storage_retry(retries: int) -> QueueRetry:
    return QueueRetry(initial_backoff=0.5, increment_base=2, retry_total=retries, random_jitter_range=0.5)
