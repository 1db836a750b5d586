"""The shared runtime-files helpers of localbatch and the proxy (no process needed)."""

from __future__ import annotations

import json
import os
import stat
import subprocess
from pathlib import Path

import pytest

from batchfed_lab import runtime


def test_write_json_atomic_is_owner_only_and_leaves_no_temp_file(tmp_path: Path) -> None:
    target = tmp_path / "runtime" / "x.json"
    runtime.write_json_atomic(target, {"pid": 1})
    assert json.loads(target.read_text()) == {"pid": 1}
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    with pytest.raises(TypeError):
        runtime.write_json_atomic(target, {"pid": object()})  # not JSON: fails half-way through
    assert json.loads(target.read_text()) == {"pid": 1}  # the old file is intact
    assert sorted(p.name for p in target.parent.iterdir()) == ["x.json"]  # and no temp file is left


def test_discovery_files_of_dead_pids_are_pruned(tmp_path: Path) -> None:
    dead = subprocess.Popen(["true"])
    dead.wait()
    runtime.write_json_atomic(tmp_path / "p-live.json", {"pid": os.getpid()})
    runtime.write_json_atomic(tmp_path / "p-dead.json", {"pid": dead.pid})
    (tmp_path / "p-bad.json").write_text("{not json")
    found = runtime.live_records(tmp_path, "p-*.json")
    assert [(f.name, rec["pid"]) for f, rec in found] == [("p-live.json", os.getpid())]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p-live.json"]
    assert runtime.alive(os.getpid()) and not runtime.alive(dead.pid) and not runtime.alive(0)


def test_remove_if_owned_leaves_a_newer_owner_alone(tmp_path: Path) -> None:
    path = tmp_path / "d.json"
    runtime.write_json_atomic(path, {"pid": 42})
    runtime.remove_if_owned(path, 41)
    assert path.exists()
    runtime.remove_if_owned(path, 42)
    assert not path.exists()
