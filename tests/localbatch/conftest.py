"""Fixtures for the localbatch tests: one server per session (relaxed limits, short allocation
delay) in a temporary workspace, a fresh account per test, and a final check that no localbatch
or task process outlived the suite."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from azure.batch import BatchClient

from batchfed_lab.localbatch import control

from .lb_helpers import leftover_processes, start_server

_accounts = itertools.count(1)


@pytest.fixture(scope="session")
def lb_workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("localbatch-ws")


@pytest.fixture(scope="session")
def localbatch(lb_workspace: Path) -> Iterator[control.LocalBatchInfo]:
    info = start_server(lb_workspace, relaxed_limits=True)
    try:
        yield info
    finally:
        control.stop(lb_workspace)
        left = leftover_processes(lb_workspace)
        assert not left, f"processes left after the localbatch tests: {left}"


@pytest.fixture
def account() -> str:
    """A fresh account name: accounts exist implicitly, so each test gets its own namespace."""
    return f"t{next(_accounts):03d}{uuid.uuid4().hex[:8]}"


@pytest.fixture
def client_for(localbatch: control.LocalBatchInfo, lb_workspace: Path) -> Callable[[str], BatchClient]:
    made: list[BatchClient] = []

    def make(account: str, **kwargs) -> BatchClient:
        kwargs.setdefault("retry_total", 0)
        c = control.batch_client(account, lb_workspace, **kwargs)
        made.append(c)
        return c

    yield make
    for c in made:
        c.close()


@pytest.fixture
def client(client_for, account: str) -> BatchClient:
    return client_for(account)
