"""``%fed`` / ``%%fed`` through a real ``InteractiveShell`` against a real proxy and localbatch."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from IPython.core.error import UsageError
from stack import Stack, job_yaml, wait_until

from batchfed_lab import (
    ConfigError,
    ConflictError,
    InvalidIdError,
    NotFoundError,
    Submission,
    SubmissionError,
    TextOutput,
    frames,
)

_seq = itertools.count()


def new_id(prefix: str = "mg") -> str:
    return f"{prefix}-{next(_seq)}"


def fed(ip: Any, line: str, cell: str | None = None) -> Any:
    return ip.run_line_magic("fed", line) if cell is None else ip.run_cell_magic("fed", line, cell)


def test_pools_returns_the_documented_frame(ip: Any, stack: Stack) -> None:
    df = fed(ip, "pools demo")
    assert list(df.columns) == list(frames.POOL_COLUMNS) and sorted(df["pool_id"]) == ["us-gpu", "we-big", "we-small"]
    assert fed(ip, "pool list demo -o pools_df") is not None
    pd.testing.assert_frame_equal(ip.user_ns["pools_df"][["pool_id", "slots_total"]], df[["pool_id", "slots_total"]])


def test_cell_submit_substitutes_user_variables(ip: Any, stack: Stack) -> None:
    job = new_id("sweep")
    ip.user_ns.update({"who": "notebook", "job": job, "MYVAR": "not-this"})
    cell = """
job_specifications:
- id: {job}
  environment_variables: {MYVAR: from-env}
  tasks:
  - command: echo {0}-{who}-${MYVAR}-{{who}}-{undefined_name}
    task_factory: {parametric_sweep: {product: [{start: 0, stop: 2}]}}
"""
    sub = fed(ip, "submit demo --wait -o sub", cell)
    assert isinstance(sub, Submission) and ip.user_ns["sub"] is sub and sub.job_ids == [job]
    assert sub.status()["state"].tolist() == ["placed"]
    wait_until(lambda: fed(ip, f"tasks demo --job-id {job}")["state"].eq("completed").all(), "the sweep to finish")
    tasks = fed(ip, f"tasks demo --job-id {job}")
    assert list(tasks.columns) == list(frames.TASK_COLUMNS) and tasks["exit_code"].tolist() == [0, 0]
    out = fed(ip, f"output demo --job-id {job} --task-id task-00001")
    assert isinstance(out, TextOutput)
    # {0} went to the sweep, {who} was substituted, ${MYVAR} reached the shell, {{who}} is literal
    assert out.strip() == "1-notebook-from-env-{who}-{undefined_name}"


def test_line_submit_and_job_listings(ip: Any, stack: Stack, tmp_path: Path) -> None:
    job = new_id("line")
    path = tmp_path / "jobs.yaml"
    path.write_text(job_yaml(job))
    sub = fed(ip, f"jobs add demo --jobs {path} --wait")
    located = fed(ip, f"jobs demo --job-id {job}")
    assert list(located.columns) == list(frames.LOCATION_COLUMNS)
    assert located["unique_id"].tolist() == sub.unique_ids
    blocked_job = new_id("mars")
    fed(ip, "submit demo", job_yaml(blocked_job, constraints="{pool: {location: mars}}"))
    wait_until(lambda: not fed(ip, f"jobs demo --job-id {blocked_job} --blocked").empty, "the action to block")
    blocked = fed(ip, f"jobs demo --job-id {blocked_job} --blocked")
    assert set(blocked["constraint"]) == {"location"} and list(blocked.columns) == list(frames.BLOCKED_COLUMNS)
    queued = fed(ip, f"jobs demo --job-id {blocked_job} --queued")
    assert queued["state"].tolist() == ["blocked"]
    fed(ip, f"jobs zap demo --unique-id {queued['unique_id'][0]} -y")
    assert fed(ip, f"jobs demo --job-id {blocked_job} --queued").empty


def test_explain_file_and_cell(ip: Any, stack: Stack, tmp_path: Path) -> None:
    path = tmp_path / "gpu.yaml"
    path.write_text(job_yaml("gpu", constraints="{compute_node: {gpu: true}}"))
    df = fed(ip, f"explain demo {path}")
    assert list(df.columns) == list(frames.EXPLAIN_COLUMNS) and df.loc[df.chosen, "pool_id"].tolist() == ["us-gpu"]
    ip.user_ns["where"] = "eastus"
    df2 = fed(ip, "explain demo", job_yaml("loc", constraints="{pool: {location: {where}}}"))
    assert df2.loc[df2.chosen, "pool_id"].tolist() == ["us-gpu"]


def test_a_variable_holding_yaml_adds_no_job(ip: Any) -> None:
    ip.user_ns["evil"] = "x\n- id: second\n  tasks: [{command: y}]"
    df = fed(ip, "explain demo", "job_specifications:\n- id: first\n  tasks:\n  - command: echo {evil}\n")
    assert set(df["job_id"]) == {"first"}


def test_usage_and_help(ip: Any) -> None:
    doc = ip.find_line_magic("fed").__doc__
    for verb in ("proxy start", "jobs add | submit", "jobs zap", "explain", "pool list | pools", "tasks"):
        assert verb in doc
    assert isinstance(fed(ip, ""), TextOutput) and "jobs zap" in fed(ip, "-h")
    assert "--unique-id" in fed(ip, "jobs zap -h") and "--wait" in fed(ip, "submit -h")


def test_non_listing_verbs_print_one_line(ip: Any, stack: Stack, capsys: pytest.CaptureFixture[str]) -> None:
    assert fed(ip, "create magic-tmp -o made") is None
    assert capsys.readouterr().out.strip() == "federation magic-tmp created (unique job ids)"
    assert ip.user_ns["made"].id == "magic-tmp"
    fed(ip, "destroy magic-tmp -y")
    assert "destroyed" in capsys.readouterr().out


def test_an_upper_case_federation_id_is_lower_cased_and_said_so(ip: Any, capsys: pytest.CaptureFixture[str]) -> None:
    fed(ip, "create Magic-UPPER -o made")
    assert capsys.readouterr().out.strip() == (
        "federation magic-upper created (unique job ids; ids are lower-cased: 'Magic-UPPER' → 'magic-upper')"
    )
    assert ip.user_ns["made"].id == "magic-upper"


def test_every_failure_raises_and_enqueues_nothing(ip: Any, stack: Stack, tmp_path: Path) -> None:
    placed = new_id("placed")
    stack.client.submit("demo", job_yaml(placed)).wait(20)
    bad_yaml = tmp_path / "bad.yaml"
    bad_yaml.write_text("job_specifications: [\n - id: x")
    cases: list[tuple[str, str | None, type[Exception], str]] = [
        ("pools nope", None, NotFoundError, "'nope' does not exist"),
        (f"submit demo {tmp_path / 'absent.yaml'}", None, ConfigError, "file not found"),
        (f"submit demo {bad_yaml}", None, ConfigError, "invalid YAML"),
        ("submit demo", "job_specifications: [", ConfigError, "<cell>: line"),
        ("submit demo", job_yaml(placed), ConflictError, f"'{placed}' already exists"),
        ("submit demo --bogus", job_yaml("x"), UsageError, "unrecognized arguments: --bogus"),
        ("jobz demo", None, UsageError, "invalid choice"),
        ("jobs zap demo --unique-id 9f1f3c53-0000-4000-8000-000000000000 -y", None, NotFoundError, "does not exist"),
        ("jobs zap demo --unique-id nope -y", None, InvalidIdError, "not a UUID"),
        ("jobs zap demo --unique-id 9f1f3c53-0000-4000-8000-000000000000", None, UsageError, "add -y/--yes"),
        ("destroy demo", None, UsageError, "add -y/--yes"),
        ("pools demo", "job_specifications: []", UsageError, "takes no cell body"),
        ("submit demo", None, ConfigError, "no jobs given"),
        (
            "submit demo --wait --timeout 0.5",
            job_yaml(new_id(), constraints="{pool: {location: mars}}"),
            SubmissionError,
            "blocked",
        ),
        ("pools demo -o 1bad", None, UsageError, "not a Python identifier"),
    ]
    before = stack.total_actions()
    for line, cell, error, message in cases:
        with pytest.raises(error, match=message) as info:
            fed(ip, line, cell)
        assert "\n" not in str(info.value), line
        if error is SubmissionError:
            before += 1  # the only case that enqueues: valid jobs that then stay blocked
            ip.user_ns.pop("_", None)
        assert stack.total_actions() == before, line
    assert stack.client.federation("demo")


def test_failures_render_as_one_line_errors_in_a_cell(ip: Any, stack: Stack) -> None:
    """What papermill sees: the cell fails (error_in_exec), shown as one line, no traceback."""
    result = ip.run_cell("%fed pools nope")
    assert not result.success and isinstance(result.error_in_exec, NotFoundError)
    assert result.error_in_exec._render_traceback_() == ["NotFoundError: federation 'nope' does not exist"]
    usage = ip.run_cell("%fed pools demo --bogus")
    assert not usage.success and isinstance(usage.error_in_exec, UsageError)
