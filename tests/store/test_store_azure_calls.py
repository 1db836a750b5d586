"""What the Azure store asks the storage service for on the proxy's hot path: each storage
call costs the proxy ~3 ms of CPU (the SDK's pipeline) and, in a region, ~10 ms of waiting,
so a placement must not re-read what it has just written or what has not changed."""

from __future__ import annotations

import os
import threading
from collections import Counter
from datetime import datetime, timezone
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest

from batchfed_lab.errors import ClaimLostError, NotFoundError
from batchfed_lab.store import NewAction
from batchfed_lab.store.azure import AzureStore
from batchfed_lab.store.records import LocationUpdate

pytestmark = pytest.mark.azurite

URL = "https://acct.westeurope.batch.azure.com"


class Calls:
    """The storage requests of one store, as (method, table or service, shape)."""

    def __init__(self, prefix: str):
        self.prefix = prefix
        self.seen: list[tuple[str, str, str]] = []
        self.lock = threading.Lock()

    def hook(self, request: Any) -> None:
        path = unquote(urlsplit(request.http_request.url).path)
        resource = path.split("/")[-1]
        name, _, keys = resource.partition("(")
        shape = "entity" if keys.strip(")") else "query" if request.http_request.method == "GET" else "write"
        with self.lock:
            self.seen.append((request.http_request.method, name.removeprefix(self.prefix), shape))

    def take(self) -> Counter[tuple[str, str, str]]:
        with self.lock:
            found, self.seen = Counter(self.seen), []
        return found


@pytest.fixture
def counted(azurite):
    prefix = "c" + os.urandom(6).hex()
    calls = Calls(prefix)
    store = AzureStore.from_connection_string(
        azurite.connection_string, prefix=prefix, retries=1, client_options={"raw_request_hook": calls.hook}
    )
    yield store, calls
    store.close()


def job(target: str) -> NewAction:
    return NewAction("job", "add", target, {})


def test_azure_a_placement_writes_its_location_without_reading_it_or_the_federation(counted):
    store, calls = counted
    store.create_federation("fed")
    store.enqueue("fed", [job("j1")])
    claim = store.claim("fed", "w")
    where = LocationUpdate(URL, "pool-1")
    calls.take()
    claim = store.record_progress(claim, {"job_ready": True}, location=where)
    served = LocationUpdate(URL, "pool-1", unique_id=claim.action_id, at=datetime.now(timezone.utc))
    store.mark_placed(claim, location=served)
    seen = calls.take()
    assert not [c for c in seen if c[1] == "feds"], seen
    assert not [c for c in seen if c[1] == "locations" and c[0] == "GET"], seen
    assert sum(n for c, n in seen.items() if c[1] == "locations") == 2, seen  # created, then updated
    (loc,) = store.get_locations("fed", "j1")
    assert loc.unique_ids == (claim.action_id,)


def test_azure_a_known_location_changed_by_another_writer_is_read_afresh(counted, azurite):
    store, _calls = counted
    other = AzureStore.from_connection_string(azurite.connection_string, prefix=store.prefix, retries=1)
    store.create_federation("fed", unique_job_ids=False)
    store.enqueue("fed", [job("j1"), job("j1")])
    first = store.claim("fed", "w")
    store.mark_placed(first, location=LocationUpdate(URL, "pool-1", unique_id=first.action_id))
    other_id = "00000000-0000-4000-8000-000000000001"
    other.record_location("fed", "j1", kind="job", batch_service_url=URL, pool_id="pool-1", unique_id=other_id)
    second = store.claim("fed", "w")
    store.mark_placed(second, location=LocationUpdate(URL, "pool-1", unique_id=second.action_id))
    (loc,) = store.get_locations("fed", "j1")
    assert loc.unique_ids == (first.action_id, other_id, second.action_id), "no update lost to the stale copy"
    other.close()


def test_azure_claimers_of_one_process_share_one_listing_of_ready_heads(counted):
    store, calls = counted
    store.create_federation("fed")
    store.enqueue("fed", [job(f"j{i}") for i in range(12)])
    calls.take()
    got: list[str] = []
    lock = threading.Lock()

    def claimer() -> None:
        while (c := store.claim("fed", "w")) is not None:
            with lock:
                got.append(c.action.target_id)

    threads = [threading.Thread(target=claimer) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    seen = calls.take()
    assert sorted(got) == sorted(f"j{i}" for i in range(12)), "each head claimed once"
    # the look for crashed enqueues, one listing for the twelve, and at most one (empty) per claimer at the end
    assert seen["GET", "actions", "query"] <= 2 + len(threads), seen
    assert seen["POST", "$batch", "write"] == 12, "no claim lost a race to a claimer of this process"


def test_azure_a_suspend_by_another_process_holds_claims_once_the_control_mark_is_seen(counted, azurite):
    store, _calls = counted
    other = AzureStore.from_connection_string(azurite.connection_string, prefix=store.prefix, retries=1)
    store.create_federation("fed")
    store.enqueue("fed", [job("a"), job("b")])
    store.release(store.claim("fed", "w"))  # the flag is read and trusted for a moment
    other.set_suspended(True)
    assert store.is_suspended() is True, "a read of the flag itself is never stale"
    store.change_marks()  # what a watching proxy does every poll interval
    assert store.claim("fed", "w") is None
    other.set_suspended(False)
    store.change_marks()
    assert store.claim("fed", "w") is not None
    other.close()


def test_azure_a_placement_after_its_federation_was_destroyed_leaves_no_location(counted, azurite):
    store, _calls = counted
    other = AzureStore.from_connection_string(azurite.connection_string, prefix=store.prefix, retries=1)
    store.create_federation("doomed")
    store.enqueue("doomed", [job("j1")])
    claim = store.claim("doomed", "w")
    other.destroy_federation("doomed")
    with pytest.raises((NotFoundError, ClaimLostError)):
        store.mark_placed(claim, location=LocationUpdate(URL, "pool-1", unique_id=claim.action_id))
    assert other._query("locations", "PartitionKey eq @pk", pk="doomed") == []
    other.close()


def test_azure_a_transaction_starts_no_thread(counted, monkeypatch):
    # azure-core would prepare and read a transaction's parts on three thread pools made for it:
    # in a proxy of many workers every thread start waits for the interpreter lock
    store, _calls = counted
    store.create_federation("fed")
    store.enqueue("fed", [job("j1")])
    started: list[str] = []
    real_start = threading.Thread.start
    monkeypatch.setattr(threading.Thread, "start", lambda self: (started.append(self.name), real_start(self))[1])
    claim = store.claim("fed", "w")  # a transaction of two operations
    store.mark_placed(claim)
    monkeypatch.undo()
    assert started == []
    assert store.get_action("fed", claim.action_id).state.value == "placed"


def test_azure_many_claims_at_once_are_one_transaction(counted):
    store, calls = counted
    store.create_federation("fed")
    store.enqueue("fed", [job(f"j{i}") for i in range(12)])
    store.claim("fed", "w")  # the look for crashed enqueues happens once
    calls.take()
    claims = store.claim_many("fed", "w", 20)
    seen = calls.take()
    assert len({c.action.target_id for c in claims}) == 11, "every other head, each once"
    assert seen["POST", "$batch", "write"] == 1, seen
    assert seen["GET", "actions", "entity"] == 0, seen  # the heads are read 14 per query
    store.mark_placed(claims[0])  # the claims' hints hold: the next step writes without reading
    assert calls.take()["GET", "actions", "entity"] == 0
