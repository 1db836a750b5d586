"""``Client.up`` / ``Client.down`` on fresh workspaces (no shared stack): a failed ``up`` undoes
what it started."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from stack import wait_until, workspace_pids

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
