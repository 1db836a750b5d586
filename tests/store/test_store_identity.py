"""Who enqueued an action: the store records its own credential's identity on every action
(the OS user on SQLite and on a key-authorised Azure store, the Entra ID principal from the
token's claims on the token path), and the job's priority; a client cannot name someone else."""

from __future__ import annotations

import dataclasses
import getpass

import pytest

from batchfed_lab.errors import StoreError
from batchfed_lab.store import NewAction
from batchfed_lab.store.identity import Submitter, os_submitter, submitter_from_token


@pytest.fixture
def fed(store):
    store.create_federation("fed")
    return "fed"


@pytest.mark.token_path
def test_every_enqueued_action_carries_the_stores_submitter(store, fed, backend):
    done = store.enqueue(fed, [NewAction("job", "add", "a"), NewAction("job", "terminate", "a")])
    who = store.submitter
    assert isinstance(who, Submitter) and who.name and who.id
    assert [(a.submitter, a.submitter_id) for a in done] == [(who.name, who.id)] * 2
    again = store.get_action(fed, done[0].id)
    assert (again.submitter, again.submitter_id) == (who.name, who.id)
    assert {a.submitter for a in store.list_actions(fed)} == {who.name}
    claimed = store.claim(fed, "w")
    assert claimed is not None and claimed.action.submitter == who.name
    placed = store.mark_placed(claimed)
    assert (placed.submitter, placed.submitter_id) == (who.name, who.id)
    if backend.name == "azure-token":
        assert who.id == backend.oauth.tokens.oid and who.name == backend.oauth.tokens.upn
        assert who.verified
    else:
        assert who.name == getpass.getuser() and not who.verified


def test_a_new_action_has_no_submitter_to_set():
    """The API gives no way to claim another user's name: the store fills it in."""
    assert "submitter" not in {f.name for f in dataclasses.fields(NewAction)}
    with pytest.raises(TypeError):
        NewAction("job", "add", "a", submitter="grace")  # type: ignore[call-arg]


def test_priority_is_kept_and_checked(store, fed):
    (a, b) = store.enqueue(fed, [NewAction("job", "add", "a", priority=700), NewAction("job", "add", "b")])
    assert (a.priority, b.priority) == (700, 0)
    assert store.get_action(fed, a.id).priority == 700
    with pytest.raises(StoreError, match=r"^priority of job 'c': 1001 is not an integer from -1000 to 1000$"):
        store.enqueue(fed, [NewAction("job", "add", "c", priority=1001)])
    assert [x.target_id for x in store.list_actions(fed)] == ["a", "b"]


def test_the_os_user_is_the_embedded_stacks_submitter():
    who = os_submitter()
    assert who.name == getpass.getuser() and who.id.startswith("os:") and not who.verified


def test_a_tokens_claims_name_the_principal():
    import base64
    import json

    def token(claims):
        body = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
        return f"e30.{body}.sig"

    user = submitter_from_token(token({"oid": "0-1", "upn": "ada@lab.example", "name": "Ada L"}))
    assert (user.name, user.id, user.display, user.verified) == ("ada@lab.example", "0-1", "Ada L", True)
    app = submitter_from_token(token({"oid": "0-2", "appid": "app-9"}))
    assert (app.name, app.id) == ("app-9", "0-2")
    with pytest.raises(StoreError, match="not a JWT"):
        submitter_from_token("opaque")
    with pytest.raises(StoreError, match="no object id"):
        submitter_from_token(token({"upn": "x"}))


def test_a_sqlite_store_from_before_submitters_is_upgraded_in_place(tmp_path):
    import sqlite3

    from batchfed_lab.store.sqlite import SqliteStore

    path = tmp_path / "old.sqlite"
    with SqliteStore(path) as s:
        s.create_federation("fed")
        s.enqueue("fed", [NewAction("job", "add", "old")])
    with sqlite3.connect(path) as conn:  # what schema 1 wrote: no submitter, no priority
        conn.execute("DROP INDEX actions_groups")
        for column in ("submitter", "submitter_id", "priority"):
            conn.execute(f"ALTER TABLE actions DROP COLUMN {column}")
        conn.execute("ALTER TABLE locations DROP COLUMN batch_job_id")
        conn.execute("PRAGMA user_version = 1")
    with SqliteStore(path) as s:
        (old,) = s.list_actions("fed")
        assert (old.submitter, old.priority) == (None, 0)
        (new,) = s.enqueue("fed", [NewAction("job", "add", "new", priority=3)])
        assert s.get_action("fed", new.id).priority == 3 and new.submitter == s.submitter.name
