"""The leader lease of the Azure store: a Blob lease on ``<prefix>-leases/<name>``, with the
holder and expiry in the blob's metadata for readers."""

from __future__ import annotations

import uuid

from azure.core.exceptions import (
    HttpResponseError,
    ResourceExistsError,
    ResourceNotFoundError,
)
from azure.storage.blob import BlobLeaseClient

from ..records import Lease, utc
from .service import AzureService


class BlobLease(AzureService):
    """Blob leases last 15-60 seconds (``lease_ttl_range``); a lost one is free for the next holder."""

    def _lease_client(self, name: str, holder: str) -> BlobLeaseClient:
        # one stable lease id per holder, so any process of that holder can renew or release
        return BlobLeaseClient(
            self._leases.get_blob_client(name), lease_id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"batchfed:{holder}"))
        )

    def _lease_note(self, lease: BlobLeaseClient, name: str, holder: str, ttl: float, now: float) -> Lease:
        self._leases.get_blob_client(name).set_blob_metadata({"holder": holder, "expires": repr(now + ttl)}, lease=lease)
        return Lease(name, holder, utc(now + ttl))

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
                lease.acquire(lease_duration=round(ttl))
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
        return Lease(name, props.metadata["holder"], utc(float(props.metadata.get("expires", now))))
