"""Federation and pool records of the Azure store (tables ``feds``, ``pools``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from azure.core.exceptions import (
    HttpResponseError,
    ResourceExistsError,
    ResourceNotFoundError,
)
from azure.data.tables import UpdateMode

from ...errors import ConflictError, NotFoundError
from .. import rules
from ..records import (
    DestroyReport,
    Federation,
    PoolMember,
    epoch,
    utc,
)
from .entities import MAX_TX_OPS, Again, etag_of, h, pack, replace_if
from .locations import LocationRecords


class RecordTables(LocationRecords):
    """Federations (a destroy marks first, then sweeps), pools (one entity each); job locations
    are :class:`~.locations.LocationRecords`."""

    # ------------------------------------------------------------------ federations
    def _create_federation(self, fed: Federation, force: bool) -> Federation:
        def attempt() -> Federation:
            ent = self._get("feds", "fed", fed.id)
            if ent is not None and ent.get("state") == "destroying":
                self._finish_destroy(fed.id)  # a crashed destroy: finish it before re-creating
                raise Again
            if ent is not None and not force:
                raise ConflictError(f"federation {fed.id!r} exists already (force replaces its settings)")
            doc = {"PartitionKey": "fed", "RowKey": fed.id, "unique_job_ids": fed.unique_job_ids, "state": "active"}
            if ent is None:
                self._t["feds"].create_entity({**doc, "created_at": epoch(fed.created_at)})
                return fed
            self._t["feds"].update_entity({**doc, "created_at": ent["created_at"]}, **replace_if(etag_of(ent)))
            return Federation(fed.id, fed.unique_job_ids, utc(ent["created_at"]))

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

    # ------------------------------------------------------------------ pools
    @staticmethod
    def _pool(ent: Mapping[str, Any]) -> PoolMember:
        return PoolMember(
            ent["federation_id"],
            ent["batch_service_url"],
            ent["pool_id"],
            ent.get("account"),
            ent.get("location"),
            utc(ent.get("added_at")),
        )

    def _add_pools(self, fid: str, members: list[PoolMember]) -> list[PoolMember]:
        with self._azure(f"add pools to federation {fid!r}"):
            self._require_fed(fid)
            entities = [
                pack(
                    {
                        "PartitionKey": "pool",
                        "RowKey": h(rules.pool_key(m.batch_service_url, m.pool_id)),
                        "federation_id": fid,
                        "batch_service_url": m.batch_service_url,
                        "pool_id": m.pool_id,
                        "account": m.account,
                        "location": m.location,
                        "added_at": epoch(m.added_at),
                    }
                )
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
                            raise rules.pool_taken(m, owner["federation_id"]) from None
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
