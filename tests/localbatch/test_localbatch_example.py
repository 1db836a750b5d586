"""docs/examples/localbatch_sdk_only.py runs against a live localbatch using only the SDK."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "localbatch_sdk_only.py"


def test_example_imports_only_the_sdk():
    tree = ast.parse(EXAMPLE.read_text())
    modules = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)} | {
        a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names
    }
    assert not any(m.startswith("batchfed_lab") for m in modules)
    assert {"azure.batch", "azure.core.credentials"} <= modules


def test_example_runs_against_localbatch(localbatch, lb_workspace, account):
    env = dict(os.environ, LOCALBATCH_WORKSPACE=str(lb_workspace), LOCALBATCH_ACCOUNT=account)
    env.pop("LOCALBATCH_ACCOUNT_URL", None)
    out = subprocess.run([sys.executable, str(EXAMPLE)], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.strip().splitlines()
    assert len(lines) == 3
    for i, line in enumerate(lines):
        assert line.startswith(f"task-{i}: exit 0: task {i} ran on tvmps_"), line


WORKFLOW = EXAMPLE.parent / "localbatch_sdk_workflow.py"


def test_the_workflow_example_imports_only_the_sdk():
    tree = ast.parse(WORKFLOW.read_text())
    modules = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert not any((m or "").startswith("batchfed_lab") for m in modules)


def test_the_workflow_example_with_12_dependent_tasks_runs_against_localbatch(localbatch, lb_workspace, account):
    env = dict(os.environ, LOCALBATCH_WORKSPACE=str(lb_workspace), LOCALBATCH_ACCOUNT=account)
    env.pop("LOCALBATCH_ACCOUNT_URL", None)
    out = subprocess.run([sys.executable, str(WORKFLOW)], env=env, capture_output=True, text=True, timeout=180)
    assert out.returncode == 0, out.stdout + out.stderr
    lines = out.stdout.strip().splitlines()
    assert lines[-1] == "workflow ok"
    assert len([line for line in lines if line.startswith("ok: ")]) == 13
