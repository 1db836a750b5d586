"""Job locations of the Azure store (table ``locations``): where each job id lives.

Each change is an ETag-conditional read-modify-write. The store keeps the last version it
wrote or read of each location (a bounded, most-recent-first set), so a change right after
another — a placement records the job's location, then the unique id it served — writes
without reading it back; a copy another writer made stale fails its condition and the
change is read afresh. A claimed job's location is written without the federation guard
reads: the claimed action's own conditional write that follows is the guard (see
:meth:`LocationRecords._locate_claimed`)."""

from __future__ import annotations

import itertools
import threading
from collections import OrderedDict
from typing import Any

from azure.core.exceptions import ResourceNotFoundError

from .. import rules
from ..primitives import LocationChange
from ..records import ActionKind, Location
from .entities import delete_if, h, pack, replace_if, unpack
from .service import AzureService

#: locations whose last seen version a store keeps (a placement touches one twice in a row)
SEEN_LOCATIONS = 4096
Seen = tuple[dict[str, Any], str]  # a location entity as stored, and its ETag


class LocationRecords(AzureService):
    """Read-modify-writes of locations, from the last version seen when there is one."""

    def __init__(self, *args: Any, **kwargs: Any):
        self._seen: OrderedDict[tuple[str, str], Seen] = OrderedDict()
        self._seen_lock = threading.Lock()
        super().__init__(*args, **kwargs)

    @staticmethod
    def _loc_rk(job: str, kind: ActionKind, url: str, pid: str) -> str:
        return f"{h(rules.target_key(job))}~{kind.value}~{h(rules.pool_key(url, pid))}"

    def _change_location(self, fid: str, job: str, kind: ActionKind, url: str, pid: str, fn: LocationChange) -> Location | None:
        rk = self._loc_rk(job, kind, url, pid)
        with self._azure(f"update location of {job!r}"):
            self._require_fed(fid)
            new = self._locate(fid, rk, fn, f"location of {job!r}")
            if new is not None:
                self._still_there(fid, lambda: self._drop_location(fid, rk))
        return new

    def _locate_claimed(self, fid: str, job: str, kind: ActionKind, url: str, pid: str, fn: LocationChange) -> str:
        """The location of a claimed job, written without reading the federation first. The
        caller writes the claimed action next, conditionally: if that write succeeds, the
        action still existed, so a destroy had not yet deleted the actions and its later
        query of the locations sees this one. If it fails, the caller checks the federation
        and takes this write back (:meth:`_undo_if_destroyed`). ``fn`` must always give a
        location (a new job's location is created without looking first). Returns the row key."""
        rk = self._loc_rk(job, kind, url, pid)
        with self._azure(f"update location of {job!r}"):
            self._locate(fid, rk, fn, f"location of {job!r}", create_first=True)
        return rk

    def _undo_if_destroyed(self, fid: str, rk: str) -> bool:
        """After a claimed write failed: if the federation is gone or going, its final sweep
        may have run before :meth:`_locate_claimed` wrote; take the location back (True)."""
        with self._azure("check the federation"):
            if self._fed_entity(fid) is not None:
                return False
            self._drop_location(fid, rk)
        return True

    def _drop_location(self, fid: str, rk: str) -> None:
        self._forget_location(fid, rk)
        try:
            self._t["locations"].delete_entity(fid, rk)
        except ResourceNotFoundError:
            pass

    def _locate(self, fid: str, rk: str, fn: LocationChange, what: str, *, create_first: bool = False) -> Location | None:
        """One ETag-conditional change; the first round starts from the version last seen (or,
        with ``create_first`` and none seen, from none: a create that fails if it exists)."""
        table = self._t["locations"]
        rounds = itertools.count()

        def attempt() -> Location | None:
            first = next(rounds) == 0
            seen = self._seen_location(fid, rk) if first else None
            if seen is None and not (first and create_first):
                ent = self._get("locations", fid, rk)
                seen = None if ent is None else (dict(ent), str(ent.metadata["etag"]))
            new = fn(None if seen is None else rules.location_from_doc(unpack(seen[0])), self.now())
            if new is None:
                self._forget_location(fid, rk)
                if seen is not None:
                    table.delete_entity(fid, rk, **delete_if(seen[1]))
                return None
            doc = pack({"PartitionKey": fid, "RowKey": rk, **rules.location_doc(new)})
            if seen is None:
                written = table.create_entity(doc)
            else:
                written = table.update_entity(doc, **replace_if(seen[1]))
            self._remember_location(fid, rk, (doc, str(written["etag"])))
            return new

        try:
            return self._optimistic(what, attempt, gone_too=True)
        except BaseException:
            self._forget_location(fid, rk)
            raise

    def _seen_location(self, fid: str, rk: str) -> Seen | None:
        with self._seen_lock:
            return self._seen.get((fid, rk))

    def _remember_location(self, fid: str, rk: str, seen: Seen) -> None:
        with self._seen_lock:
            self._seen[fid, rk] = seen
            self._seen.move_to_end((fid, rk))
            while len(self._seen) > SEEN_LOCATIONS:
                self._seen.popitem(last=False)

    def _forget_location(self, fid: str, rk: str) -> None:
        with self._seen_lock:
            self._seen.pop((fid, rk), None)

    def _get_locations(self, fid: str, job_key: str | None) -> list[Location]:
        with self._azure("read locations"):
            if job_key is None:
                rows = self._query("locations", "PartitionKey eq @pk", pk=fid)
            else:
                rows = self._range("locations", fid, f"{h(job_key)}~")
        return [rules.location_from_doc(unpack(r)) for r in rows]
