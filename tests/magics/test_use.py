"""``%fed use PATH``: choose the workspace from a notebook (issue 20, point 15)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from IPython.core.error import UsageError
from stack import Stack


def test_use_switches_the_workspace_of_every_verb(
    ip: Any, stack: Stack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("BATCHFED_HOME", str(stack.root))  # restored afterwards, whatever `use` sets
    monkeypatch.chdir(tmp_path)
    assert "demo" in ip.run_line_magic("fed", "list")["federation_id"].tolist()
    ip.run_line_magic("fed", "use other-ws")
    assert os.environ["BATCHFED_HOME"] == str(tmp_path / "other-ws")  # relative to the kernel's folder
    assert f"workspace: {tmp_path / 'other-ws'}" in capsys.readouterr().out
    assert ip.run_line_magic("fed", "list").empty  # a fresh workspace: no federations
    ip.run_line_magic("fed", "use")
    assert f"workspace: {tmp_path / 'other-ws'}" in capsys.readouterr().out
    ip.run_line_magic("fed", f"use {stack.root}")
    assert "demo" in ip.run_line_magic("fed", "list")["federation_id"].tolist()


def test_use_takes_one_path(ip: Any) -> None:
    with pytest.raises(UsageError, match="one workspace folder"):
        ip.run_line_magic("fed", "use a b")


def test_use_is_in_the_help(ip: Any) -> None:
    assert "%fed use [PATH]" in str(ip.run_line_magic("fed", "help"))
