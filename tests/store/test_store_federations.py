"""Federations and pool members: every operation, ids, atomicity."""

from __future__ import annotations

import pytest

from batchfed_lab.errors import ConflictError, InvalidIdError, NotFoundError
from batchfed_lab.store import NewAction

URL = "https://acct1.westeurope.batch.azure.com"
URL2 = "https://acct2.eastus.batch.azure.com"


@pytest.mark.token_path
def test_create_get_list_federations(store):
    fed = store.create_federation("alpha")
    assert (fed.id, fed.unique_job_ids) == ("alpha", True)
    assert store.create_federation("beta", unique_job_ids=False).unique_job_ids is False
    assert store.get_federation("alpha") == fed
    assert [f.id for f in store.list_federations()] == ["alpha", "beta"]
    assert fed.created_at.tzinfo is not None


def test_federation_ids_are_lower_cased_and_checked(store):
    assert store.create_federation("MyFed").id == "myfed"
    assert store.get_federation("MYFED").id == "myfed"
    longest = "f" * 63
    assert store.create_federation(longest).id == longest


@pytest.mark.parametrize("bad", ["", "f" * 64, "fed_1", "fed 1", "féd", "fed.x", "a/b", None, 42])
def test_invalid_federation_ids_are_refused_with_the_value_and_the_rule(store, bad):
    with pytest.raises(InvalidIdError) as err:
        store.create_federation(bad)
    message = str(err.value)
    assert "federation id" in message and ("a-z, 0-9" in message or "string" in message)
    assert "\n" not in message
    assert store.list_federations() == []


def test_creating_an_existing_federation_needs_force_which_keeps_its_pools(store):
    store.create_federation("alpha")
    store.add_pool("alpha", URL, "p1")
    with pytest.raises(ConflictError, match=r"alpha.*exists already"):
        store.create_federation("alpha", unique_job_ids=False)
    replaced = store.create_federation("alpha", unique_job_ids=False, force=True)
    assert replaced.unique_job_ids is False
    assert store.get_federation("alpha").unique_job_ids is False
    assert [p.pool_id for p in store.list_pools("alpha")] == ["p1"]


def test_missing_federations_are_not_found(store):
    with pytest.raises(NotFoundError, match="'ghost' does not exist"):
        store.get_federation("ghost")
    with pytest.raises(NotFoundError):
        store.destroy_federation("ghost")
    with pytest.raises(NotFoundError):
        store.add_pool("ghost", URL, "p1")
    with pytest.raises(NotFoundError):
        store.enqueue("ghost", [NewAction("job", "add", "j1")])


def test_federation_changes_move_the_federations_mark(store):
    before = store.change_marks()
    store.create_federation("alpha")
    after_create = store.change_marks()
    assert after_create.federations != before.federations
    store.add_pool("alpha", URL, "p1")
    assert store.change_marks().federations != after_create.federations


@pytest.mark.token_path
def test_add_list_find_and_remove_pools(store):
    store.create_federation("alpha")
    added = store.add_pools(
        "alpha",
        [
            {"batch_service_url": URL + "/", "pool_id": "p1", "account": "acct1", "location": "westeurope"},
            {"batch_service_url": URL2, "pool_id": "p2", "account": "acct2", "location": "eastus"},
        ],
    )
    assert [(p.batch_service_url, p.pool_id) for p in added] == [(URL, "p1"), (URL2, "p2")]  # trailing slash dropped
    listed = store.list_pools("alpha")
    assert [(p.pool_id, p.account, p.location) for p in listed] == [("p1", "acct1", "westeurope"), ("p2", "acct2", "eastus")]
    assert listed[0].added_at is not None
    assert store.find_pool(URL, "P1").federation_id == "alpha"  # Batch ids are case-insensitive
    assert store.find_pool(URL, "nope") is None
    removed = store.remove_pools("alpha", [(URL2, "p2")])
    assert [p.pool_id for p in removed] == ["p2"]
    assert [p.pool_id for p in store.list_pools("alpha")] == ["p1"]
    assert [p.pool_id for p in store.remove_pools("alpha")] == ["p1"]  # all
    assert store.list_pools("alpha") == []


def test_a_pool_belongs_to_one_federation_only(store):
    store.create_federation("alpha")
    store.create_federation("beta")
    store.add_pool("alpha", URL, "p1")
    with pytest.raises(ConflictError, match=r"'p1'.*already in this federation"):
        store.add_pool("alpha", URL, "p1")
    with pytest.raises(ConflictError, match=r"'P1'.*already in federation 'alpha'"):
        store.add_pool("beta", URL.upper().replace("HTTPS", "https"), "P1")
    assert store.list_pools("beta") == []


def test_adding_pools_is_all_or_nothing(store):
    store.create_federation("alpha")
    store.create_federation("beta")
    store.add_pool("alpha", URL, "taken")
    with pytest.raises(ConflictError, match="taken"):
        store.add_pools("beta", [{"batch_service_url": URL, "pool_id": p} for p in ("free0", "free1", "free2", "taken")])
    assert store.list_pools("beta") == []
    with pytest.raises(ConflictError, match="listed twice"):
        store.add_pools("beta", [{"batch_service_url": URL, "pool_id": "x"}, {"batch_service_url": URL, "pool_id": "X"}])
    assert store.list_pools("beta") == []


def test_removing_an_unknown_pool_removes_nothing(store):
    store.create_federation("alpha")
    store.add_pool("alpha", URL, "p1")
    with pytest.raises(NotFoundError, match=r"'nope'.*not in federation 'alpha'"):
        store.remove_pools("alpha", [(URL, "p1"), (URL, "nope")])
    assert [p.pool_id for p in store.list_pools("alpha")] == ["p1"]


@pytest.mark.parametrize(
    ("url", "pool", "what"),
    [
        ("ftp://x", "p1", "batch service url"),
        ("not a url", "p1", "batch service url"),
        (URL, "", "pool id"),
        (URL, "p" * 65, "pool id"),
        (URL, "p\n1", "pool id"),
    ],
)
def test_invalid_pool_ids_and_urls_are_refused(store, url, pool, what):
    store.create_federation("alpha")
    with pytest.raises(InvalidIdError, match=what):
        store.add_pool("alpha", url, pool)


def test_list_pools_of_every_federation(store):
    store.create_federation("alpha")
    store.create_federation("beta")
    store.add_pool("alpha", URL, "a1")
    store.add_pool("beta", URL, "b1")
    assert [(p.federation_id, p.pool_id) for p in store.list_pools()] == [("alpha", "a1"), ("beta", "b1")]
