"""``batchfed fed …`` through click's runner and as a subprocess, against a real stack."""

from __future__ import annotations

import itertools
import os
import pty
import subprocess
import time
from pathlib import Path

import pytest
from stack import Stack, batchfed_exe, job_yaml, wait_until, workspace_pids

_seq = itertools.count()


def new_id(prefix: str = "cli") -> str:
    return f"{prefix}-{next(_seq)}"


def jobs_file(tmp_path: Path, text: str) -> str:
    path = tmp_path / f"jobs-{next(_seq)}.yaml"
    path.write_text(text)
    return str(path)


def test_listings_print_json_with_raw(cli, sh) -> None:  # type: ignore[no-untyped-def]
    feds = {f["federation_id"]: f for f in cli("fed", "list", "--raw").json()}
    assert sorted(p["pool_id"] for p in feds["demo"]["pools"]) == ["us-gpu", "we-big", "we-small"]
    assert feds["demo"]["unique_job_ids"] is True and "queued" in feds["demo"]["counts"]
    pools = cli("fed", "pool", "list", "demo", "--raw").json()
    assert {p["pool_id"]: p["slots_total"] for p in pools} == {"we-small": 4, "we-big": 4, "us-gpu": 1}
    assert cli("fed", "pools", "demo", "--raw").json() == pools  # the alias
    assert [p["pool_id"] for p in sh("fed", "pools", "demo", "--raw").json()] == [p["pool_id"] for p in pools]
    status = cli("fed", "proxy", "status", "--raw").json()
    assert [(s["running"], s["leader"]) for s in status] == [(True, True)]
    header = cli("fed", "proxy", "status").out.splitlines()[0].split()
    assert {"role", "heartbeat_age_s", "version", "uptime_s", "federations", "placed", "blocked", "failed", "log"} <= set(header)
    text = cli("fed", "pools", "demo")
    assert text.code == 0 and "we-small" in text.out and "westeurope" in text.out


def test_submit_list_tasks_output(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    job = new_id("hello")
    path = jobs_file(tmp_path, job_yaml(job, "echo hi from $AZ_BATCH_POOL_ID"))
    added = cli("fed", "jobs", "add", "demo", "--jobs", path, "--wait", "--raw")
    assert added.code == 0, added.err
    (row,) = added.json()
    assert row["job_id"] == job and row["state"] == "placed" and row["enqueued"].endswith("Z")
    located = cli("fed", "jobs", "demo", "--job-id", job, "--raw").json()  # `jobs ID` = `jobs list ID`
    assert [(r["job_id"], r["unique_id"], r["pool_id"]) for r in located] == [(job, row["unique_id"], row["pool_id"])]
    assert cli("fed", "jobs", "list", "demo", "--queued", "--raw").json() == []
    wait_until(lambda: cli("fed", "tasks", "demo", "--job-id", job, "--raw").json()[0]["state"] == "completed", "the task")
    out = cli("fed", "output", "demo", "--job-id", job, "--task-id", "task-00000")
    assert out.out.strip() == f"hi from {row['pool_id']}"


def test_wait_answers_a_job_no_pool_can_take_at_once_with_its_reason(cli, stack: Stack, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Issue 20, point 10: not after the whole --timeout, and with the reason."""
    job = new_id("mars")
    path = jobs_file(tmp_path, job_yaml(job, constraints="{pool: {location: mars}}"))
    started = time.monotonic()
    ran = cli("fed", "jobs", "add", "demo", "--jobs", path, "--wait", "--timeout", "120")
    assert time.monotonic() - started < 60
    assert ran.code == 1
    assert f"job {job} (" in ran.err
    assert "is blocked: no pool satisfies the constraints (3 of 3 excluded): location: needs mars" in ran.err
    (a,) = stack.client.queued("demo", job)
    stack.client.zap("demo", a.id)


def test_explain_prints_the_choice(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path = jobs_file(tmp_path, job_yaml("gpu", constraints="{compute_node: {gpu: true}}"))
    (e,) = cli("fed", "explain", "demo", path, "--raw").json()
    assert e["pool_id"] == "us-gpu" and {v["pool_id"]: v["passed"] for v in e["verdicts"]} == {
        "us-gpu": True,
        "we-big": False,
        "we-small": False,
    }
    text = cli("fed", "explain", "demo", "--jobs", path).out
    assert text.startswith("gpu: → us-gpu") and "gpu: needs a GPU size" in text


def _bad_inputs(tmp_path: Path, stack: Stack) -> dict[str, tuple[list[str], str]]:
    good = jobs_file(tmp_path, job_yaml(new_id()))
    placed = new_id("placed")
    stack.client.submit("demo", job_yaml(placed)).wait(20)
    return {
        "unknown federation": (["fed", "jobs", "add", "nope", good], "federation 'nope' does not exist"),
        "missing file": (["fed", "jobs", "add", "demo", str(tmp_path / "absent.yaml")], "file not found"),
        "bad yaml": (["fed", "jobs", "add", "demo", jobs_file(tmp_path, "job_specifications: [\n - id: x")], "invalid YAML"),
        "unknown flag": (["fed", "jobs", "add", "demo", good, "--bogus"], "No such option '--bogus'"),
        "unknown verb": (["fed", "jobz", "demo"], "No such command 'jobz'"),
        "zap unknown id": (
            ["fed", "jobs", "zap", "demo", "--unique-id", "9f1f3c53-0000-4000-8000-000000000000", "-y"],
            "does not exist",
        ),
        "zap not a uuid": (["fed", "jobs", "zap", "demo", "--unique-id", "nope", "-y"], "not a UUID"),
        "duplicate job id": (["fed", "jobs", "add", "demo", jobs_file(tmp_path, job_yaml(placed))], f"'{placed}' already exists"),
        "destroy without --yes": (["fed", "destroy", "demo"], "needs confirmation and stdin is not a terminal"),
        "terminate without --yes": (["fed", "jobs", "term", "demo", "--job-id", placed], "add -y/--yes"),
        "pool remove without --yes": (["fed", "pool", "remove", "demo", "--all"], "add -y/--yes"),
        "queued and blocked": (["fed", "jobs", "demo", "--queued", "--blocked"], "cannot be combined"),
    }


def test_every_bad_input_is_one_line_and_enqueues_nothing(cli, sh, stack: Stack, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    cases = _bad_inputs(tmp_path, stack)
    before = stack.total_actions()
    pools = len(stack.client.pools("demo"))
    for what, (args, message) in cases.items():
        for how, ran in (("runner", cli(*args)), ("subprocess", sh(*args))):
            lines = [line for line in ran.err.splitlines() if line.strip()]
            assert ran.code != 0, (what, how)
            assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], (what, how, ran.err)
            assert "Traceback" not in ran.err + ran.out
        assert stack.total_actions() == before, what
    assert len(stack.client.pools("demo")) == pools and stack.client.federation("demo")


def test_an_upper_case_federation_id_is_lower_cased_and_said_so(cli, stack: Stack) -> None:  # type: ignore[no-untyped-def]
    made = cli("fed", "create", "Shout-Fed")
    assert made.code == 0, made.err
    assert made.out.strip() == "federation shout-fed created (unique job ids; ids are lower-cased: 'Shout-Fed' → 'shout-fed')"
    assert stack.client.federation("shout-fed").id == "shout-fed"
    quiet = cli("fed", "create", "quiet-fed")
    assert quiet.out.strip() == "federation quiet-fed created (unique job ids)"


def test_destructive_commands_run_with_yes(cli, stack: Stack) -> None:  # type: ignore[no-untyped-def]
    assert cli("fed", "create", "gone-soon").code == 0
    assert cli("fed", "create", "gone-soon").code == 1  # exists already
    done = cli("fed", "destroy", "gone-soon", "--yes", "--raw")
    assert done.code == 0 and done.json()["federation_id"] == "gone-soon"
    skipped = cli("fed", "jobs", "term", "demo", "--job-id", "ghost", "-y", "--raw")
    assert skipped.json()["skipped"] == ["ghost"] and skipped.err.startswith("warning: job ghost has no location")


def test_confirmation_on_a_terminal(sh, stack: Stack) -> None:  # type: ignore[no-untyped-def]
    """With a terminal the command asks; `n` keeps the federation, `y` destroys it."""
    stack.client.create_federation("tty-fed")
    for answer, code, exists in ((b"n\n", 1, True), (b"y\n", 0, False)):
        leader, follower = pty.openpty()
        try:
            proc = subprocess.Popen(
                [*batchfed_exe(), "fed", "destroy", "tty-fed"],
                stdin=follower,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=stack.env,
            )
            os.write(leader, answer)
            out, err = proc.communicate(timeout=60)
        finally:
            os.close(leader)
            os.close(follower)
        assert proc.returncode == code, (answer, out, err)
        assert b"destroy federation tty-fed" in out
        assert any(f.id == "tty-fed" for f in stack.client.federations()) is exists


def test_up_and_down_leave_no_process(sh, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    root = tmp_path / "fresh-ws"
    env = {**os.environ, "BATCHFED_HOME": str(root)}
    try:
        up = sh("up", "--raw", env=env)
        assert up.code == 0, up.err
        info = up.json()
        assert info["proxy_started"] is True and info["localbatch"]["url"].startswith("http://127.0.0.1:")
        again = sh("up", env=env)
        assert "already running" in again.out
        assert sh("fed", "proxy", "start", "--standby", env=env).code == 0  # a second proxy: down stops both
        assert len(workspace_pids(root)) >= 3
        down = sh("down", "--raw", env=env).json()
        assert sorted(down["proxies"]) == ["proxy-1", "proxy-2"] and down["localbatch"] is True
        wait_until(lambda: not workspace_pids(root), "every process of the workspace to exit", 10)
    finally:
        sh("down", env=env)


@pytest.mark.parametrize("args", [["fed", "--help"], ["fed", "jobs", "--help"], ["fed", "jobs", "add", "-h"], ["up", "--help"]])
def test_help_works(cli, args: list[str]) -> None:  # type: ignore[no-untyped-def]
    ran = cli(*args)
    assert ran.code == 0 and ran.out.startswith("Usage:")
