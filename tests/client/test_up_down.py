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
from batchfed_lab import localbatch
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
        assert localbatch.info(ws) is None
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
        assert res == {"proxies": [], "localbatch": False, "left_running": True}
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
