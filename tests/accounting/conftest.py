"""A client over a SQLite store in a temporary workspace, and stores that pose as other users."""

from __future__ import annotations

import pytest

from batchfed_lab.client import Client
from batchfed_lab.config.workspace import open_workspace
from batchfed_lab.store.identity import Submitter
from batchfed_lab.store.sqlite import SqliteStore


class StoreAs(SqliteStore):
    """The workspace's store file opened under another user's credential (as a second
    researcher's laptop would, with its own login)."""

    def __init__(self, path, who: str, **kw):
        super().__init__(path, **kw)
        self._as = Submitter(who, f"os:{who}@test")

    def _identity(self) -> Submitter:
        return self._as


@pytest.fixture
def workspace(tmp_path):
    return open_workspace(tmp_path / "ws")


@pytest.fixture
def as_user(workspace):
    opened = []

    def open_as(who: str, **kw) -> StoreAs:
        s = StoreAs(workspace.sqlite_path, who, **kw)
        opened.append(s)
        return s

    yield open_as
    for s in opened:
        s.close()


@pytest.fixture
def client(workspace):
    c = Client(workspace)
    yield c
    c.close()
