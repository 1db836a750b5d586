"""``batchfed pool create|list|resize|delete`` (the pools of a Batch account; the same verbs as
``batchfed fed pool …`` and ``%fed pool …``) through click's runner and as a real process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from batchfed_lab.batch.adapter import BatchAccount
from batchfed_lab.cli import main

from .conftest import wait_for

POOL_YAML = """\
pool_specification:
  id: clipool
  vm_size: STANDARD_D2_V3
  vm_count: {dedicated: 1}
  task_slots_per_node: 2
  location: northeurope
"""


@pytest.fixture
def pool_file(tmp_path: Path) -> Path:
    path = tmp_path / "pool.yaml"
    path.write_text(POOL_YAML)
    return path


@pytest.fixture
def runner(lb_workspace: Path) -> CliRunner:
    return CliRunner(env={"BATCHFED_HOME": str(lb_workspace)})


def _one_line_error(result) -> str:
    assert result.exit_code == 1, result.output
    text = result.stderr.strip()
    assert text.startswith("error: ") and "\n" not in text and "Traceback" not in result.output
    return text


def test_pool_commands_in_process(runner, pool_file, localbatch, lb_workspace):
    args = ["--pool-config", str(pool_file), "--account", "cliacct"]
    r = runner.invoke(main, ["pool", "create", *args])
    assert r.exit_code == 0 and "pool clipool created" in r.stdout, r.output
    err = _one_line_error(runner.invoke(main, ["pool", "create", *args]))
    assert "PoolExists" in err and "clipool" in err
    r = runner.invoke(main, ["pool", "create", *args, "--exists-ok"])
    assert r.exit_code == 0 and "exists" in r.stdout

    acct = BatchAccount(localbatch.account_url("cliacct"), workspace=lb_workspace)
    wait_for(lambda: acct.snapshot_pool("clipool").dedicated.idle == 1, "clipool's node")
    r = runner.invoke(main, ["pool", "list", "--account", "cliacct", "--raw"])
    assert r.exit_code == 0, r.output
    rows = json.loads(r.stdout)
    assert [p["id"] for p in rows] == ["clipool"]
    row = rows[0]
    assert row["location"] == "northeurope" and row["task_slots_per_node"] == 2
    assert row["dedicated"] == {"idle": 1, "running": 0, "other": 0} and row["size"]["cores"] == 2
    r = runner.invoke(main, ["pool", "list", "--account", "cliacct"])
    assert r.exit_code == 0 and r.stdout.split()[0] == "pool_id" and "clipool" in r.stdout
    assert runner.invoke(main, ["fed", "pool", "list", "--account", "cliacct"]).stdout == r.stdout  # one group, two places

    r = runner.invoke(main, ["pool", "resize", *args, "--dedicated", "3"])
    assert r.exit_code == 0 and "resizing to 3 dedicated" in r.stdout
    wait_for(lambda: acct.snapshot_pool("clipool").dedicated.idle == 3, "clipool resized to 3")

    r = runner.invoke(main, ["pool", "delete", *args])
    assert r.exit_code == 0 and "deleting" in r.stdout
    wait_for(lambda: not acct.pool_exists("clipool"), "clipool deleted")
    r = runner.invoke(main, ["pool", "delete", *args])
    assert r.exit_code == 0 and "already gone" in r.stdout
    r = runner.invoke(main, ["pool", "list", "--account", "cliacct"])
    assert r.stdout.strip() == "no pools"
    acct.close()


def test_pool_command_errors_are_one_line(runner, pool_file, tmp_path):
    err = _one_line_error(runner.invoke(main, ["pool", "create", "--pool-config", str(tmp_path / "missing.yaml")]))
    assert "missing.yaml" in err
    bad = tmp_path / "bad.yaml"
    bad.write_text("pool_specification:\n  id: x\n  vm_sise: a\n")
    assert "vm_sise" in _one_line_error(runner.invoke(main, ["pool", "create", "--pool-config", str(bad)]))
    err = _one_line_error(runner.invoke(main, ["pool", "list", "--batch-service-url", "http://example.com/accounts/x"]))
    assert "expected https://<account>.<region>.batch.azure.com" in err
    # no localbatch in this workspace
    empty = CliRunner(env={"BATCHFED_HOME": str(tmp_path / "empty")})
    assert "not running" in _one_line_error(empty.invoke(main, ["pool", "list"]))


def _batchfed() -> list[str]:
    script = Path(sys.executable).with_name("batchfed")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "import sys; from batchfed_lab.cli import main; sys.exit(main())"]


def test_pool_commands_as_a_process(localbatch, lb_workspace, pool_file):
    env = {**os.environ, "BATCHFED_HOME": str(lb_workspace)}
    url = localbatch.account_url("procacct")
    run = lambda *a: subprocess.run([*_batchfed(), "pool", *a], env=env, capture_output=True, text=True, timeout=60)  # noqa: E731
    r = run("create", "--pool-config", str(pool_file), "--batch-service-url", url)
    assert r.returncode == 0 and "created" in r.stdout, r.stderr
    r = run("list", "--batch-service-url", url, "--raw")
    assert r.returncode == 0 and [p["id"] for p in json.loads(r.stdout)] == ["clipool"], r.stderr
    r = run("create", "--pool-config", str(pool_file), "--batch-service-url", url)
    assert r.returncode == 1 and r.stderr.count("\n") == 1 and "PoolExists" in r.stderr and "Traceback" not in r.stderr
    key = (lb_workspace / "localbatch" / "key").read_text().strip()
    assert key not in r.stderr + r.stdout
    r = run("delete", "--pool-config", str(pool_file), "--batch-service-url", url)
    assert r.returncode == 0, r.stderr
