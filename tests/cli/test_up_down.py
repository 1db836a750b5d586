"""``batchfed up`` / ``down`` on fresh workspaces: which proxy options apply, what a suspended
proxy says, and that a failed ``up`` leaves nothing running."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from stack import batchfed_exe, wait_until, workspace_pids

from cli.conftest import Ran


@pytest.fixture
def ws(tmp_path: Path) -> Iterator[Path]:
    """A fresh workspace; whatever a test left running in it is stopped afterwards."""
    root = tmp_path / "ws"
    yield root
    run(root, "down")
    wait_until(lambda: not workspace_pids(root), "every process of the workspace to exit", 15)


def run(root: Path, *args: str, cwd: Path | None = None) -> Ran:
    p = subprocess.run(
        [*batchfed_exe(), *args],
        env={**os.environ, "BATCHFED_HOME": str(root)},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=90,
        cwd=cwd,
    )
    return Ran(p.returncode, p.stdout, p.stderr)


def federation_yaml(tmp_path: Path, blackout: int = 1) -> Path:
    path = tmp_path / "federation.yaml"
    path.write_text(
        f"federation:\n  proxy_options:\n    scheduling:\n      after_success:\n        blackout_interval: {blackout}\n"
    )
    return path


def test_up_without_config_keeps_the_options_it_last_ran_with(ws: Path, tmp_path: Path) -> None:
    """Issue 20, point 14: a later `up` does not silently fall back to the 15 s default blackout."""
    cfg = federation_yaml(tmp_path)
    first = run(ws, "up", "--config", str(cfg), "--raw")
    assert first.code == 0, first.err
    assert run(ws, "down").code == 0
    again = run(ws, "up")
    assert again.code == 0, again.err
    assert f"proxy options: {cfg} (as the last up)" in again.out
    run(ws, "down")
    raw = run(ws, "up", "--raw").json()
    assert raw["proxy"]["config"] == str(cfg) and raw["config_source"] == "last up"


def test_up_says_when_defaults_apply(ws: Path, tmp_path: Path) -> None:
    """Issue 20, point 14: no --config and none remembered: say so; a remembered file that is
    gone is named, then defaults apply."""
    first = run(ws, "up")
    assert first.code == 0, first.err
    assert "proxy options: defaults (no --config given)" in first.out
    run(ws, "down")
    cfg = federation_yaml(tmp_path)
    assert run(ws, "up", "--config", str(cfg)).code == 0
    run(ws, "down")
    cfg.unlink()
    gone = run(ws, "up")
    assert gone.code == 0, gone.err
    assert "proxy options: defaults" in gone.out and f"{cfg} (the last up's) is gone" in gone.err


def test_up_of_a_running_proxy_names_its_options(ws: Path, tmp_path: Path) -> None:
    """Issue 20, point 14: another --config cannot reach a running proxy: say so, with the way out."""
    cfg = federation_yaml(tmp_path)
    assert run(ws, "up", "--config", str(cfg)).code == 0
    other = tmp_path / "other.yaml"
    other.write_text(cfg.read_text())
    again = run(ws, "up", "--config", str(other))
    assert again.code == 0 and "already running" in again.out and f"proxy options: {cfg}" in again.out
    assert f"the running proxy keeps the options of {cfg}" in again.err and "`down`" in again.err


def test_a_suspended_proxy_says_suspended_on_up(ws: Path) -> None:
    """Issue 20, point 14: the suspend flag lives in the store, so a new proxy starts suspended."""
    assert run(ws, "up").code == 0
    assert run(ws, "fed", "proxy", "suspend").code == 0
    running = run(ws, "up")
    assert "suspended" in running.out and "already running" not in running.out, running.out
    run(ws, "down")
    fresh = run(ws, "up")
    assert fresh.code == 0, fresh.err
    line = next(x for x in fresh.out.splitlines() if x.startswith("proxy "))
    assert "suspended" in line and "started" not in line and "proxy resume" in line, line
    assert run(ws, "up", "--raw").json()["suspended"] is True
    assert run(ws, "fed", "proxy", "resume").code == 0


@pytest.mark.parametrize(
    "content", [None, "federation:\n  proxy_options:\n    scheduling: {after_success: {blackout_interval: -1}}\n"]
)
def test_a_failed_up_leaves_nothing_running(ws: Path, tmp_path: Path, content: str | None) -> None:
    """Issue 20, point 20: a missing or invalid config is refused before anything starts."""
    cfg = tmp_path / "federation.yaml"
    if content is not None:
        cfg.write_text(content)
    ran = run(ws, "up", "--config", str(cfg))
    assert ran.code == 1 and ran.err.startswith("error: ") and len(ran.err.strip().splitlines()) == 1, ran.err
    assert "federation.yaml" in ran.err
    assert not workspace_pids(ws), "localbatch (or a proxy) was left running"
    assert not list((ws / "runtime").glob("*.json")) if (ws / "runtime").exists() else True
