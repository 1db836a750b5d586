"""What every part of the Azure store works with: the storage account's clients and
tables, the SDK error boundary, optimistic retries, and the guards of a federation."""

from __future__ import annotations

import json
import random
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, TypeVar

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
from azure.storage.blob import BlobServiceClient
from azure.storage.queue import QueueServiceClient

from ...errors import (
    ConflictError,
    NotFoundError,
    PayloadTooLargeError,
    StoreError,
    StoreUnavailableError,
)
from ..base import Store
from ..records import Federation, utc
from .entities import MAX_TX_OPS, RETRIES, Again, h, lost_race
from .transactions import without_threads

T = TypeVar("T")

FLAGS_FOR = 1.0  # seconds claims trust the suspend flag read last (unless the control mark moved)


class FlagsSeen:
    """The suspend flag as last read, and when; forgotten when the flags may have changed."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._value: bool | None = None
        self._read_at = 0.0
        self.generation = 0

    def get(self) -> bool | None:
        with self._lock:
            if self._value is None or time.monotonic() - self._read_at > FLAGS_FOR:
                return None
            return self._value

    def put(self, value: bool, generation: int) -> None:
        """Keep ``value`` unless the flags were forgotten since the read began (``generation``)."""
        with self._lock:
            if generation == self.generation:
                self._value, self._read_at = value, time.monotonic()

    def forget(self) -> None:
        with self._lock:
            self._value = None
            self.generation += 1


class AzureService(Store):
    """The shared half of :class:`~.store.AzureStore`; each concern is a subclass of this."""

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
        names = ("feds", "pools", "actions", "locations", "meta")
        self._t = {n: without_threads(tables.get_table_client(f"{prefix}{n}")) for n in names}
        self._data = blobs.get_container_client(f"{prefix}-data")
        self._leases = blobs.get_container_client(f"{prefix}-leases")
        self._recovered: dict[str, float] = {}
        self._hints = 0  # queue messages seen by this instance
        self._flags_seen = FlagsSeen()
        with self._azure("create tables and containers"):
            for client in self._t.values():
                tables.create_table_if_not_exists(client.table_name)
            for container in (self._data, self._leases):
                try:
                    container.create_container()
                except ResourceExistsError:
                    pass

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            clients: list[Any] = [*self._t.values(), self._tables, self._queues, self._blobs]
            for client in clients:
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

    def _rows(self, table: str, pk: str, row_keys: list[str], select: list[str] | None = None) -> dict[str, Any]:
        """The entities of one partition with these row keys that exist, by row key, 14 per
        query (Azure Tables allow 15 comparisons in a filter)."""
        found: dict[str, Any] = {}
        for i in range(0, len(row_keys), 14):
            params = {f"r{n}": rk for n, rk in enumerate(row_keys[i : i + 14])}
            where = "PartitionKey eq @pk and ( " + " or ".join(f"RowKey eq @{k}" for k in params) + " )"
            found.update((e["RowKey"], e) for e in self._query(table, where, select, pk=pk, **params))
        return found

    def _range(
        self, table: str, pk: str, prefix: str, extra: str = "", select: list[str] | None = None, **params: Any
    ) -> list[Any]:
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
        self,
        what: str,
        attempt: Callable[[], T],
        *,
        lost: type[StoreError] = ConflictError,
        gone_too: bool = False,
        rounds: int = RETRIES,
    ) -> T:
        """Run ``attempt`` until its conditional writes win. A 412/409 (someone wrote first;
        with ``gone_too`` also a 404: a FIFO record it read was parked or revived meanwhile)
        means: re-read and try again after a short random back-off, so contenders spread out.
        ``Again`` retries at once."""
        for n in range(rounds):
            try:
                return attempt()
            except Again:
                continue
            except HttpResponseError as exc:
                if not (lost_race(exc) or (gone_too and exc.status_code == 404)):
                    raise
            time.sleep(min(0.2, 0.002 * 2 ** min(n, 7)) * random.random())
        raise lost(f"{what}: too much contention, try again")

    def _bump(self, name: str) -> None:
        self._t["meta"].upsert_entity({"PartitionKey": "signal", "RowKey": name, "v": uuid.uuid4().hex}, mode=UpdateMode.REPLACE)

    def _claims_suspended(self) -> bool:
        """The suspend flag as claims honour it: read at most every ``FLAGS_FOR`` seconds, and
        afresh once this store set a flag or saw the control mark move (a watching proxy
        polls it every ``poll_interval``), instead of one read per claim."""
        seen = self._flags_seen
        cached = seen.get()
        if cached is not None:
            return cached
        generation = seen.generation
        value = self.is_suspended()
        seen.put(value, generation)
        return value

    # ------------------------------------------------------------------ blobs (payloads, journals), hint queues
    def _put_blob(self, name: str, text: str) -> None:
        self._data.upload_blob(name, text.encode("utf-8"), overwrite=True)

    def _read_blob(self, name: str) -> str | None:
        try:
            return self._data.download_blob(name).readall().decode("utf-8")
        except ResourceNotFoundError:
            return None

    def _queue(self, fid: str) -> Any:
        return self._queues.get_queue_client(f"{self.prefix}-q-{h(fid)}")

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

    # ------------------------------------------------------------------ federation guards
    def _fed_entity(self, fid: str) -> Any | None:
        ent = self._get("feds", "fed", fid)
        return None if ent is None or ent.get("state") == "destroying" else ent

    @staticmethod
    def _fed(ent: Mapping[str, Any]) -> Federation:
        return Federation(ent["RowKey"], bool(ent["unique_job_ids"]), utc(ent["created_at"]))

    def _require_fed(self, fid: str) -> Federation:
        ent = self._fed_entity(fid)
        if ent is None:
            raise NotFoundError(f"federation {fid!r} does not exist")
        return self._fed(ent)

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
