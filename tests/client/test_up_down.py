"""``Client.up`` / ``Client.down`` on fresh workspaces (no shared stack): a failed ``up`` undoes
what it started; ``down(if_started_here=True)`` leaves a stack this process did not start."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from stack import batchfed_exe, wait_until, workspace_pids

import batchfed_lab
from batchfed_lab import localbatch, runtime
from batchfed_lab.config.workspace import open_workspace
from batchfed_lab.data import list_blobs, resolve_account, upload
from batchfed_lab.data import local as local_storage
from batchfed_lab.errors import ProxyError


@pytest.fixture
def ws(tmp_path: Path) -> Iterator[Path]:
    root = tmp_path / "ws"
    yield root
    with batchfed_lab.connect(root) as c:
        c.down()
    wait_until(lambda: not workspace_pids(root), "every process of the workspace to exit", 15)


def test_up_stops_the_localbatch_it_started_when_the_proxy_fails(ws: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 20, point 20: undo what was started on failure."""
    with batchfed_lab.connect(ws) as c:

        def fail(**_: object) -> None:
            raise ProxyError("the proxy exited at start (code 1): boom")

        monkeypatch.setattr(c, "proxy_start", fail)
        with pytest.raises(ProxyError, match="boom"):
            c.up()
        assert localbatch.info(ws) is None and local_storage.info(open_workspace(ws)) is None
        assert not workspace_pids(ws)


def test_up_keeps_a_localbatch_it_did_not_start(ws: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    lb = localbatch.start(ws)
    with batchfed_lab.connect(ws) as c:
        monkeypatch.setattr(c, "proxy_start", lambda **_: (_ for _ in ()).throw(ProxyError("boom")))
        with pytest.raises(ProxyError):
            c.up()
        info = localbatch.info(ws)
        assert info is not None and info.pid == lb.pid


def test_down_if_started_here_leaves_a_stack_started_elsewhere(ws: Path) -> None:
    """Issue 20, point 22: a notebook's last cell must not stop the stack `make lab` started."""
    env = {**os.environ, "BATCHFED_HOME": str(ws)}
    assert subprocess.run([*batchfed_exe(), "up"], env=env, capture_output=True, timeout=90).returncode == 0
    pids = sorted(workspace_pids(ws))
    with batchfed_lab.connect(ws) as c:
        assert c.up()["started"] is False
        res = c.down(if_started_here=True)
        assert res == {"proxies": [], "localbatch": False, "storage": False, "left_running": True}
        assert sorted(workspace_pids(ws)) == pids
        assert c.down()["localbatch"] is True  # plain down stops it, wherever it was started


def test_down_if_started_here_stops_a_stack_this_process_started(ws: Path) -> None:
    with batchfed_lab.connect(ws) as c:
        assert c.up()["started"] is True
    with batchfed_lab.connect(ws) as c:  # another client of the same process (a reconnected magic)
        res = c.down(if_started_here=True)
        assert res["proxies"] == ["proxy-1"] and res["localbatch"] is True and res["left_running"] is False
        assert c.down(if_started_here=True)["left_running"] is False  # nothing left to stop or keep
    wait_until(lambda: not workspace_pids(ws), "the stack to stop", 15)


def test_up_starts_the_storage_account_local_and_down_stops_it_by_pid(ws: Path, tmp_path: Path) -> None:
    """Issue 18, point 2: the embedded Azurite is part of the stack; its blobs outlive a restart."""
    with batchfed_lab.connect(ws) as c:
        res = c.up()
        storage = res["storage"]
        assert storage is not None and res["storage_started"] is True and runtime.alive(storage.pid)
        assert storage.blob_url.startswith("http://127.0.0.1:") and storage.pid in workspace_pids(ws)
        f = tmp_path / "x.txt"
        f.write_text("kept")
        upload(resolve_account(c.workspace, "local"), "inputs/x.txt", f, progress=False)
        assert c.up()["storage"].pid == storage.pid  # idempotent
        down = c.down()
        assert down["storage"] is True and not runtime.alive(storage.pid)
        assert local_storage.info(c.workspace) is None
        again = c.up()["storage"]
        assert again.pid != storage.pid
        assert [b.name for b in list_blobs(resolve_account(c.workspace, "local"), "inputs")] == ["x.txt"]


def test_up_without_azurite_says_local_is_unavailable(ws: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(local_storage, "available", lambda: False)
    with batchfed_lab.connect(ws) as c:
        res = c.up()
        assert res["storage"] is None and any("make azurite" in w for w in res["warnings"])
