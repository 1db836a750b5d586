"""Store conformance fixtures: every test taking ``store`` / ``backend`` runs against
SQLite and against Azure Storage served by a real Azurite (one per session), reached with
its connection string. Tests marked ``token_path`` run a third time, as ``azure-token``:
Azure Storage reached the Entra ID way (DefaultAzureCredential, bearer tokens over HTTPS)
on a second Azurite in OAuth mode."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import threading
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from batchfed_lab.store.azure import AzureStore
from batchfed_lab.store.azure.entities import h
from batchfed_lab.store.sqlite import SqliteStore

if TYPE_CHECKING:
    from azurite_oauth import OAuthAzurite

    from batchfed_lab.store.emulator import Azurite

ROOT = Path(__file__).resolve().parents[2]
CHILD = Path(__file__).with_name("_child.py")
SKIP_ENV = "BATCHFED_SKIP_AZURITE"


class FakeClock:
    """A controllable ``time.time`` for claim and retry timing without waiting."""

    def __init__(self, start: float = 1_900_000_000.0):
        self.now = start
        self._lock = threading.Lock()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        with self._lock:
            self.now += seconds


class SqliteBackend:
    name = "sqlite"
    min_lease = 0.05

    def __init__(self, path: Path):
        self.path = path

    def open(self, **kw: Any) -> SqliteStore:
        return SqliteStore(self.path, **kw)

    def child_spec(self) -> dict[str, Any]:
        return {"kind": "sqlite", "path": str(self.path)}

    def child_env(self) -> dict[str, str]:
        return {}

    def residue(self, text: str) -> list[str]:
        """Every row, in any table, that mentions ``text`` (read with plain sqlite3)."""
        found = []
        with sqlite3.connect(self.path) as conn:
            tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
            for table in tables:
                for row in conn.execute(f"SELECT * FROM {table}"):
                    if any(isinstance(v, str) and text in v for v in row):
                        found.append(f"{table}: {row[:3]}")
        return found

    def cleanup(self) -> None:
        pass


class AzureBackend:
    name = "azure"
    min_lease = 15.0

    def __init__(self, az: Azurite):
        self.az = az
        self.prefix = "t" + uuid.uuid4().hex[:12]

    def open(self, **kw: Any) -> AzureStore:
        return AzureStore.from_connection_string(self.az.connection_string, prefix=self.prefix, retries=1, **kw)

    def child_spec(self) -> dict[str, Any]:
        return {"kind": "azure", "prefix": self.prefix}

    def child_env(self) -> dict[str, str]:
        return {"BATCHFED_STORAGE_CONNECTION_STRING": self.az.connection_string}

    def _clients(self):
        from azure.data.tables import TableServiceClient
        from azure.storage.blob import BlobServiceClient
        from azure.storage.queue import QueueServiceClient

        cs = self.az.connection_string
        return (
            TableServiceClient.from_connection_string(cs),
            QueueServiceClient.from_connection_string(cs),
            BlobServiceClient.from_connection_string(cs),
        )

    def residue(self, text: str) -> list[str]:
        """Entities, queues and blobs of this prefix that mention ``text`` (or its hash),
        read with the plain SDKs, independent of the store's own code."""
        tables, queues, blobs = self._clients()
        marks = (text, h(text))
        found = []
        for t in tables.list_tables():
            if t.name.startswith(self.prefix):
                for e in tables.get_table_client(t.name).list_entities():
                    values = [e["PartitionKey"], e["RowKey"], *(v for v in e.values() if isinstance(v, str))]
                    if any(m in v for m in marks for v in values):
                        found.append(f"table {t.name}: {e['PartitionKey']}/{e['RowKey']}")
        for q in queues.list_queues(name_starts_with=self.prefix):
            if any(m in q.name for m in marks):
                found.append(f"queue {q.name}")
        for c in blobs.list_containers(name_starts_with=self.prefix):
            for b in blobs.get_container_client(c.name).list_blobs():
                if any(m in b.name for m in marks):
                    found.append(f"blob {c.name}/{b.name}")
        return found

    def names(self) -> dict[str, list[str]]:
        tables, queues, blobs = self._clients()
        return {
            "tables": [t.name for t in tables.list_tables() if t.name.startswith(self.prefix)],
            "queues": [q.name for q in queues.list_queues(name_starts_with=self.prefix)],
            "containers": [c.name for c in blobs.list_containers(name_starts_with=self.prefix)],
        }

    def cleanup(self) -> None:
        """Drop this test's tables, queues and containers so Azurite stays small."""
        tables, queues, blobs = self._clients()
        for t in [t.name for t in tables.list_tables() if t.name.startswith(self.prefix)]:
            tables.delete_table(t)
        for q in [q.name for q in queues.list_queues(name_starts_with=self.prefix)]:
            queues.delete_queue(q)
        for c in [c.name for c in blobs.list_containers(name_starts_with=self.prefix)]:
            blobs.delete_container(c)


class AzureTokenBackend(AzureBackend):
    """The Azure backend on the token path: ``store.azure`` settings with explicit endpoints
    and ``credential: default``, so the store builds its own DefaultAzureCredential, whose
    managed identity step takes tokens from the loopback identity endpoint of ``oauth``."""

    name = "azure-token"

    def __init__(self, oauth: OAuthAzurite, monkeypatch: pytest.MonkeyPatch):
        super().__init__(oauth.azurite)
        self.oauth = oauth
        for name in [n for n in os.environ if n.startswith(("AZURE_", "MSI_"))]:
            monkeypatch.delenv(name)  # a developer's service principal must not win the chain
        for name, value in oauth.identity.env.items():
            monkeypatch.setenv(name, value)

    def open(self, **kw: Any) -> AzureStore:
        return AzureStore.from_settings(
            self.oauth.settings(self.prefix), client_options=self.oauth.client_options, retries=1, **kw
        )

    def child_spec(self) -> dict[str, Any]:
        return {"kind": "azure-token", "settings": self.oauth.settings(self.prefix).model_dump(), "ca": str(self.oauth.ca)}

    def child_env(self) -> dict[str, str]:
        return self.oauth.identity.env

    def _clients(self):
        from azure.data.tables import TableServiceClient
        from azure.storage.blob import BlobServiceClient
        from azure.storage.queue import QueueServiceClient

        ep, cred, opts = self.az.endpoint, self.oauth.tokens, self.oauth.client_options
        return (
            TableServiceClient(ep("table"), credential=cred, **opts),
            QueueServiceClient(ep("queue"), credential=cred, **opts),
            BlobServiceClient(ep("blob"), credential=cred, **opts),
        )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "token_path: also run on Azure Storage reached with Entra ID tokens (azure-token)")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    # the whole suite a third time would add minutes: a chosen subset takes the token path
    if "backend" in metafunc.fixturenames:
        params = ["sqlite", pytest.param("azure", marks=pytest.mark.azurite)]
        if metafunc.definition.get_closest_marker("token_path"):
            params.append(pytest.param("azure-token", marks=pytest.mark.azurite))
        metafunc.parametrize("backend", params, indirect=True)


@pytest.fixture
def backend(request, tmp_path):
    if request.param == "azure-token":
        b: Any = AzureTokenBackend(request.getfixturevalue("azurite_oauth"), request.getfixturevalue("monkeypatch"))
    elif request.param == "azure":
        b = AzureBackend(request.getfixturevalue("azurite"))
    else:
        b = SqliteBackend(tmp_path / "store.sqlite")
    yield b
    b.cleanup()


@pytest.fixture
def azure_token_backend(azurite_oauth, monkeypatch):
    """The Azure backend on the token path alone, for token-only tests."""
    b = AzureTokenBackend(azurite_oauth, monkeypatch)
    yield b
    b.cleanup()


@pytest.fixture
def azure_backend(azurite):
    """The Azure backend alone, for Azure-only tests."""
    b = AzureBackend(azurite)
    yield b
    b.cleanup()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def store(backend):
    s = backend.open()
    yield s
    s.close()


@pytest.fixture
def timed(backend, clock):
    """A store whose notion of 'now' is ``clock`` (claims, retries, locations)."""
    s = backend.open(clock=clock)
    yield s
    s.close()


class Child:
    """A helper process (tests/store/_child.py) that talks JSON lines; killed by pid at the end."""

    def __init__(self, backend: Any, op: str, env: dict[str, str] | None = None, **args: Any):
        spec = {"store": backend.child_spec(), "op": op, **args}
        self.proc = subprocess.Popen(
            [sys.executable, str(CHILD), json.dumps(spec)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, **backend.child_env(), **(env or {})},
            cwd=ROOT,
        )

    def send(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def read(self) -> Any:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise AssertionError(f"child exited ({self.proc.wait(5)}): {self.proc.stderr.read()[-2000:]}")  # type: ignore[union-attr]
        return json.loads(line)

    def finish(self, timeout: float = 120) -> tuple[int, str, str]:
        out, err = self.proc.communicate(timeout=timeout)
        return self.proc.returncode, out, err

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


@pytest.fixture
def spawn():
    """Start helper processes; every one still running at the end is killed by pid."""
    children: list[Child] = []

    def start(backend: Any, op: str, env: dict[str, str] | None = None, **args: Any) -> Child:
        child = Child(backend, op, env, **args)
        children.append(child)
        return child

    yield start
    for child in children:
        child.kill()
