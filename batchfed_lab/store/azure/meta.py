"""Proxy records, the log container, control flags and change signals of the Azure store
(table ``meta``, container ``<prefix>-logs``, the federations' hint queues)."""

from __future__ import annotations

import threading
from typing import Any

from azure.core.exceptions import (
    HttpResponseError,
    ResourceExistsError,
    ResourceNotFoundError,
)
from azure.data.tables import UpdateMode

from ..records import Marks, ProxyRecord
from ..rules import proxy_doc, proxy_from_doc
from .entities import h, pack, unpack
from .service import AzureService


class MetaRecords(AzureService):
    """Records outside any federation: proxies, flags, signals (and the proxies' log blobs)."""

    def __init__(self, *args: Any, **kwargs: Any):
        self._signals_lock = threading.Lock()
        self._signals_seen = Marks(None, None, None)  # the meta-table signals as last read
        self._queues_to_poll: list[str] | None = None  # the federations whose hint queues are drained
        super().__init__(*args, **kwargs)

    def log_container(self) -> Any:
        """The ``<prefix>-logs`` blob container proxies persist their logs to (created on demand)."""
        container = self._blobs.get_container_client(f"{self.prefix}-logs")
        with self._azure("create the log container"):
            try:
                container.create_container()
            except ResourceExistsError:
                pass
        return container

    def _put_proxy(self, rec: ProxyRecord) -> None:
        with self._azure("write proxy record"):
            entity = pack({"PartitionKey": "proxy", "RowKey": h(rec.proxy_id), **proxy_doc(rec)})
            self._t["meta"].upsert_entity(entity, mode=UpdateMode.REPLACE)

    def _get_proxy(self, proxy_id: str) -> ProxyRecord | None:
        with self._azure("read proxy record"):
            ent = self._get("meta", "proxy", h(proxy_id))
        return None if ent is None else proxy_from_doc(unpack(ent))

    def _list_proxies(self) -> list[ProxyRecord]:
        with self._azure("list proxy records"):
            return [proxy_from_doc(unpack(e)) for e in self._query("meta", "PartitionKey eq 'proxy'")]

    def _remove_proxy(self, proxy_id: str) -> bool:
        with self._azure("remove proxy record"):
            if self._get("meta", "proxy", h(proxy_id)) is None:
                return False
            self._t["meta"].delete_entity("proxy", h(proxy_id))  # does not raise when already gone
            return True

    def _set_flag(self, name: str, value: bool) -> None:
        with self._azure(f"set flag {name!r}"):
            self._t["meta"].upsert_entity({"PartitionKey": "flag", "RowKey": name, "value": value}, mode=UpdateMode.REPLACE)
            self._flags_seen.forget()
            self._bump("control")

    def _get_flag(self, name: str) -> bool:
        with self._azure(f"read flag {name!r}"):
            ent = self._get("meta", "flag", name)
        return bool(ent and ent.get("value"))

    def _marks(self) -> Marks:
        with self._azure("read change marks"):
            signals = {e["RowKey"]: e["v"] for e in self._query("meta", "PartitionKey eq 'signal'")}
        marks = Marks(signals.get("federations"), (self._local_version, self._hints), signals.get("control"))
        with self._signals_lock:
            if marks.control != self._signals_seen.control:
                self._flags_seen.forget()
            if marks.federations != self._signals_seen.federations:
                self._queues_to_poll = None
            self._signals_seen = marks
        return marks

    def _local_marks(self) -> Marks:
        with self._signals_lock:
            seen = self._signals_seen
        return Marks(seen.federations, (self._local_version, self._hints), seen.control)

    def _poll_changed(self) -> bool:
        """Drain the federation queues (they only say "look again"); re-read marks always,
        since federation and control changes are signalled in the meta table. The list of
        federations is read again only when the federations mark moved."""
        with self._signals_lock:
            fids = self._queues_to_poll
        if fids is None:
            with self._azure("list federations"):
                fids = [fed.id for fed in self._list_federations()]
            with self._signals_lock:
                self._queues_to_poll = fids
        with self._azure("poll federation queues"):
            for fid in fids:
                queue = self._queue(fid)
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
