"""What only one backend has to show: SQLite's file, indexes and locking; Azure's object
names, transaction sizes, blob payloads, credentials and secrecy; the factory."""

from __future__ import annotations

import os
import pathlib
import re
import socket
import sqlite3
import stat
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import batchfed_lab.store
from batchfed_lab.config.workspace import open_workspace
from batchfed_lab.errors import StoreError, StoreUnavailableError
from batchfed_lab.store import NewAction, open_store
from batchfed_lab.store.azure import AzureStore
from batchfed_lab.store.azure.entities import INLINE_CHARS, pack, unpack
from batchfed_lab.store.emulator import DEV_KEY
from batchfed_lab.store.sqlite import SqliteStore
from batchfed_lab.store.sqlite import connection as sqlite_connection
from batchfed_lab.store.sqlite.schema import CLAIM_SQL, HEAD_SQL, READY_SQL

STORE_DIR = os.path.dirname(batchfed_lab.store.__file__)
UNSAFE = re.compile(r"\b(import|from) (c?pickle|marshal|shelve|dill)\b|\b(pickle|marshal)\.loads?\b")


# ---------------------------------------------------------------------------- SQLite
def test_sqlite_file_is_owner_only_in_wal_mode(tmp_path):
    path = tmp_path / "ws" / "store.sqlite"
    SqliteStore(path, busy_timeout_ms=1234).close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    s = SqliteStore(path, busy_timeout_ms=1234)
    assert s._conn.execute("PRAGMA busy_timeout").fetchone()[0] == 1234
    s.close()


def test_sqlite_claims_and_heads_use_indexes_not_scans(tmp_path):
    s = SqliteStore(tmp_path / "s.sqlite")
    plan = lambda sql, *args: " ".join(r[-1] for r in s._conn.execute("EXPLAIN QUERY PLAN " + sql, args))  # noqa: E731
    claim, head, ready = plan(CLAIM_SQL, "f", 1.0), plan(HEAD_SQL, "f", "t"), plan(READY_SQL, "f", 1.0)
    assert "actions_ready" in claim and "SCAN" not in claim
    assert "actions_ready" in ready and "SCAN" not in ready
    assert "actions_active" in head and "SCAN" not in head
    s.close()


def claimed(tmp_path) -> tuple[SqliteStore, Any]:
    """A store with one add action in federation f, claimed by worker w."""
    s = SqliteStore(tmp_path / "s.sqlite")
    s.create_federation("f")
    s.enqueue("f", [NewAction("job", "add", "a", {})])
    return s, s.claim("f", "w")


@contextmanager
def statements(s: SqliteStore) -> Iterator[list[str]]:
    """The SQL the store's write connection runs meanwhile."""
    seen: list[str] = []
    s._conn.set_trace_callback(seen.append)
    try:
        yield seen
    finally:
        s._conn.set_trace_callback(None)


def test_sqlite_steps_of_a_current_claim_write_without_reading_the_action_first(tmp_path):
    s, claim = claimed(tmp_path)
    with statements(s) as seen:
        claim = s.record_progress(claim, {"pool": "p1"})
        s.mark_placed(claim)
    assert not [q for q in seen if q.startswith("SELECT * FROM actions WHERE id = ")], seen
    assert s.get_action("f", claim.action.id).state.value == "placed"
    s.close()


def test_sqlite_journal_step_writes_the_progress_alone(tmp_path):
    # the other columns keep their values: setting only what changed leaves their indexes alone
    s, claim = claimed(tmp_path)
    with statements(s) as seen:
        claim = s.record_progress(claim, {"pool": "p1"})
    (update,) = [q for q in seen if q.startswith("UPDATE actions")]
    assert update.startswith("UPDATE actions SET progress = ") and " WHERE " in update, update
    assert "state =" not in update.split(" WHERE ")[0], update
    assert s.get_action("f", claim.action.id).progress == {"pool": "p1"}
    s.close()


def test_sqlite_recording_a_known_location_again_writes_nothing(tmp_path):
    s = SqliteStore(tmp_path / "s.sqlite")
    s.create_federation("f")
    where = {"kind": "job", "batch_service_url": "https://a.westeurope.batch.azure.com", "pool_id": "p1"}
    s.record_location("f", "job1", **where)
    with statements(s) as seen:
        s.record_location("f", "job1", **where)  # a later task group merging into the job: known already
    assert not [q for q in seen if q.startswith(("INSERT", "DELETE"))], seen
    with statements(s) as seen:
        s.record_location("f", "job1", unique_id="00000000-0000-4000-8000-000000000001", **where)
    assert [q for q in seen if q.startswith("INSERT OR REPLACE INTO locations")], "a served unique id is written"
    (loc,) = s.get_locations("f", "job1")
    assert loc.unique_ids == ("00000000-0000-4000-8000-000000000001",)
    s.close()


def test_sqlite_checkpoints_after_the_commit_and_keeps_the_log_short(tmp_path, monkeypatch):
    monkeypatch.setattr(sqlite_connection, "CHECKPOINT_EVERY", 10)
    s, claim = claimed(tmp_path)
    with statements(s) as on_writer:
        for i in range(300):
            claim = s.record_progress(claim, {"step": i, "pad": "x" * 2000})
    assert not [q for q in on_writer if "checkpoint" in q], "the writer's own commits never checkpoint"
    # without checkpoints the log would hold every page of 300 commits (well over 1 MiB)
    assert os.path.getsize(f"{s.path}-wal") < 512 * 1024
    assert s.get_action("f", claim.action.id).progress["step"] == 299
    s.close()


def test_sqlite_log_stays_bounded_when_no_process_writes_much(tmp_path):
    # short runs (a CLI, a script) write less than a checkpoint period each, while another
    # connection stays open (a notebook's widget), so no close is the last one
    path = tmp_path / "s.sqlite"
    watcher = SqliteStore(path)
    watcher.create_federation("f")
    for run in range(12):
        cli = SqliteStore(path)
        for i in range(50):
            cli.enqueue("f", [NewAction("job", "terminate", f"j{run}-{i}", {"x": "y" * 2000})])
        cli.close()
        watcher.list_federations()
    # 600 writes of a few pages each: unbounded, the log would hold well over 10 MB
    assert os.path.getsize(f"{path}-wal") < 6 * 1024 * 1024
    watcher.close()


def test_sqlite_a_write_stands_when_its_checkpoint_cannot_run(tmp_path, monkeypatch):
    # e.g. another thread closed the store between the commit and the checkpoint after it
    monkeypatch.setattr(sqlite_connection, "CHECKPOINT_EVERY", 1)
    s, claim = claimed(tmp_path)

    def closed() -> None:
        raise StoreError("sqlite store: used after close()")

    monkeypatch.setattr(s, "_reader", closed)
    claim = s.record_progress(claim, {"pool": "p1"})
    assert claim.action.progress == {"pool": "p1"}
    monkeypatch.undo()
    assert s.get_action("f", claim.action.id).progress == {"pool": "p1"}
    s.close()


def test_sqlite_waits_for_a_busy_writer_then_says_unavailable(tmp_path):
    path = tmp_path / "s.sqlite"
    s = SqliteStore(path, busy_timeout_ms=200)
    s.create_federation("fed")
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")  # another process holding the write lock
    try:
        started = time.monotonic()
        with pytest.raises(StoreUnavailableError, match=r"locked.*200 ms"):
            s.enqueue("fed", [NewAction("job", "add", "a", {})])
        assert time.monotonic() - started >= 0.15
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert len(s.enqueue("fed", [NewAction("job", "add", "a", {})])) == 1  # and works again
    s.close()


def test_sqlite_refuses_a_newer_schema(tmp_path):
    path = tmp_path / "s.sqlite"
    SqliteStore(path).close()
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA user_version = 99")
    with pytest.raises(StoreError, match="schema 99 is newer"):
        SqliteStore(path)


def test_payloads_are_stored_as_json_text_never_pickled(tmp_path):
    s = SqliteStore(tmp_path / "s.sqlite")
    s.create_federation("fed")
    s.enqueue("fed", [NewAction("job", "add", "a", {"tasks": [{"id": "t1"}]})])
    raw = sqlite3.connect(tmp_path / "s.sqlite").execute("SELECT payload FROM actions").fetchone()[0]
    assert raw == '{"tasks":[{"id":"t1"}]}'
    s.close()
    sources = sorted(pathlib.Path(STORE_DIR).rglob("*.py"))  # the backends are packages
    assert len(sources) > 10
    for path in sources:
        assert not UNSAFE.search(path.read_text(encoding="utf-8")), path.name


def test_open_store_uses_the_workspace_sqlite_file(workspace):
    store = open_store(workspace)
    try:
        assert isinstance(store, SqliteStore) and store.path == workspace.sqlite_path
    finally:
        store.close()


# ---------------------------------------------------------------------------- Azure
TABLE_NAME = re.compile(r"[A-Za-z][A-Za-z0-9]{2,62}")
QUEUE_OR_CONTAINER = re.compile(r"(?!.*--)[a-z0-9][a-z0-9-]{1,61}[a-z0-9]")


@pytest.mark.azurite
def test_azure_object_names_follow_the_naming_rules(azurite):
    prefix = "p" + os.urandom(8).hex()[:15]  # the longest prefix the settings allow
    store = AzureStore.from_connection_string(azurite.connection_string, prefix=prefix, retries=1)
    try:
        for fid in ("a", "-", "a--b-", "z" * 63):
            store.create_federation(fid)
        from azure.data.tables import TableServiceClient
        from azure.storage.blob import BlobServiceClient
        from azure.storage.queue import QueueServiceClient

        cs = azurite.connection_string
        tables = [t.name for t in TableServiceClient.from_connection_string(cs).list_tables() if t.name.startswith(prefix)]
        queues = [q.name for q in QueueServiceClient.from_connection_string(cs).list_queues(name_starts_with=prefix)]
        containers = [c.name for c in BlobServiceClient.from_connection_string(cs).list_containers(name_starts_with=prefix)]
        assert len(tables) == 5 and len(queues) == 4 and len(containers) == 2
        assert all(TABLE_NAME.fullmatch(n) for n in tables), tables
        assert all(QUEUE_OR_CONTAINER.fullmatch(n) for n in queues + containers), queues + containers
    finally:
        store.close()


@pytest.mark.azurite
def test_azure_transactions_stay_within_100_operations(azurite, monkeypatch):
    store = AzureStore.from_connection_string(azurite.connection_string, prefix="p" + os.urandom(6).hex(), retries=1)
    sizes: list[int] = []
    table = store._t["actions"]
    real = table.submit_transaction
    monkeypatch.setattr(table, "submit_transaction", lambda ops, **kw: sizes.append(len(list(ops))) or real(ops, **kw))
    store.create_federation("fed", unique_job_ids=False)
    store.enqueue("fed", [NewAction("job", "add", f"job{i % 7}", {"i": i}) for i in range(300)])
    assert max(sizes) <= 100 and sum(sizes) >= 600  # an action and its index entity each
    assert [a.payload["i"] for a in store.list_queued("fed", "job3")] == list(range(3, 300, 7))
    store.close()


@pytest.mark.azurite
def test_azure_large_payloads_live_in_blobs(azure_backend):
    b = azure_backend
    store = b.open()
    store.create_federation("fed")
    _small, big = store.enqueue(
        "fed", [NewAction("job", "add", "s", {"x": 1}), NewAction("job", "add", "b", {"x": "y" * 100_000})]
    )
    blobs = [n for n in b.residue("fed") if n.startswith("blob")]
    assert blobs == [f"blob {b.prefix}-data/fed/payload/{big.id}.json"]
    assert store.get_action("fed", big.id).payload == {"x": "y" * 100_000}
    store.close()


@pytest.mark.azurite
def test_azure_errors_and_reprs_never_show_the_key(azurite):
    store = AzureStore.from_connection_string(azurite.connection_string, prefix="p" + os.urandom(6).hex(), retries=1)
    assert DEV_KEY not in repr(store) and "AccountKey" not in repr(store)
    store.close()
    with pytest.raises(StoreError) as bad:
        AzureStore.from_connection_string("AccountName=x;AccountKey=" + DEV_KEY + ";Nonsense")
    assert DEV_KEY not in str(bad.value)
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    dead = azurite.connection_string.replace(str(azurite.ports["table"]), str(port))
    started = time.monotonic()
    with pytest.raises(StoreUnavailableError, match="unreachable") as down:
        AzureStore.from_connection_string(dead, prefix="dead", retries=0)
    assert DEV_KEY not in str(down.value) and time.monotonic() - started < 10


@pytest.mark.azurite
@pytest.mark.parametrize("retries", [2, 0])
def test_azure_retries_server_busy_answers(azurite, retries):
    """A 503 Server Busy (the overloaded-partition answer) is retried with back-off."""
    from azure.core.pipeline.transport import RequestsTransport

    class Busy(RequestsTransport):
        armed, failures = False, 0

        def send(self, request, **kwargs):
            response = super().send(request, **kwargs)
            if self.armed and request.method == "GET" and self.failures < 1:
                self.failures += 1
                response.status_code = 503  # as if the partition server were busy
            return response

    busy = Busy()
    store = AzureStore.from_connection_string(
        azurite.connection_string, prefix="r" + os.urandom(6).hex(), retries=retries, client_options={"transport": busy}
    )
    try:
        store.create_federation("fed")
        busy.armed = True
        if retries:
            assert store.get_federation("fed").id == "fed" and busy.failures == 1
        else:
            with pytest.raises(StoreError, match="status 503"):
                store.get_federation("fed")
    finally:
        store.close()


@pytest.mark.azurite
def test_open_store_builds_the_azure_store_from_settings(azurite, workspace_dir, monkeypatch):
    workspace_dir.mkdir(parents=True)
    prefix = "w" + os.urandom(6).hex()
    (workspace_dir / "settings.yaml").write_text(
        f"store:\n  backend: azure\n  azure:\n    credential: connection_string\n    prefix: {prefix}\n"
    )
    ws = open_workspace(workspace_dir)
    monkeypatch.delenv("BATCHFED_STORAGE_CONNECTION_STRING", raising=False)
    with pytest.raises(StoreError, match="BATCHFED_STORAGE_CONNECTION_STRING is not set"):
        open_store(ws)
    monkeypatch.setenv("BATCHFED_STORAGE_CONNECTION_STRING", azurite.connection_string)
    store = open_store(ws, retries=1)
    try:
        assert isinstance(store, AzureStore) and store.prefix == prefix
        assert store.create_federation("fed").id == "fed"
    finally:
        store.close()


def test_default_credential_needs_an_account(workspace_dir):
    workspace_dir.mkdir(parents=True)
    (workspace_dir / "settings.yaml").write_text("store:\n  backend: azure\n")
    with pytest.raises(StoreError, match="set account_name"):
        open_store(open_workspace(workspace_dir))


LONG_TEXT = st.builds(lambda piece, n: (piece * n)[: n * 3], st.text(min_size=1, max_size=3), st.integers(0, 16_000))


@settings(max_examples=60, deadline=None)
@given(st.dictionaries(st.sampled_from(["payload", "verdicts", "reason", "a_b"]), LONG_TEXT | st.none() | st.integers()))
def test_long_text_properties_are_split_and_joined_losslessly(doc):
    packed = pack(doc)
    assert all(len(v) <= INLINE_CHARS for v in packed.values() if isinstance(v, str))
    assert unpack(packed) == {k: v for k, v in doc.items() if v is not None}
