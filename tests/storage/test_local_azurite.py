"""The storage account ``local`` (issue 18, point 2): the workspace's embedded Azurite runs on
loopback, is tracked by pid in the workspace's runtime folder, stops by pid, and keeps its blobs
under the workspace so they survive a restart."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import pytest

from batchfed_lab import runtime
from batchfed_lab.config.workspace import open_workspace
from batchfed_lab.data import list_blobs, resolve_account, upload
from batchfed_lab.data import local as local_storage


@pytest.fixture
def ws(tmp_path: Path):
    w = open_workspace(tmp_path / "ws")
    yield w
    local_storage.stop(w)


def test_local_starts_on_loopback_tracked_by_pid_and_stops_by_pid(ws) -> None:
    rec = local_storage.start(ws)
    assert runtime.alive(rec.pid) and urlsplit(rec.blob_url).hostname == "127.0.0.1"
    assert local_storage.start(ws).pid == rec.pid  # idempotent
    assert Path(rec.location) == ws.path / "azurite"
    acct = resolve_account(ws, "local")
    assert (acct.account_url, acct.auth) == (rec.blob_url, "emulator")
    assert local_storage.stop(ws) is True
    assert not runtime.alive(rec.pid) and local_storage.info(ws) is None
    assert local_storage.stop(ws) is False


def test_blobs_survive_a_restart(ws, tmp_path: Path) -> None:
    local_storage.start(ws)
    f = tmp_path / "x.txt"
    f.write_text("kept")
    upload(resolve_account(ws, "local"), "keep/x.txt", f, progress=False)
    first = local_storage.info(ws)
    local_storage.stop(ws)
    second = local_storage.start(ws)
    assert first is not None and second.pid != first.pid
    assert second.ports == first.ports  # the same URLs when the ports are still free
    assert [b.name for b in list_blobs(resolve_account(ws, "local"), "keep")] == ["x.txt"]


def test_a_stale_discovery_file_is_pruned(ws) -> None:
    runtime.write_json_atomic(ws.runtime_dir / "azurite.json", {"pid": 999_999_999, "starttime": "1"})
    assert local_storage.info(ws) is None
    assert not (ws.runtime_dir / "azurite.json").exists()
