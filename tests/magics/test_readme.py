"""The README's "In a notebook" cells work as shown, through a real shell (fresh workspace)."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
from stack import batchfed_exe, wait_until, workspace_pids

from batchfed_lab import Submission

ROOT = Path(__file__).resolve().parents[2]


def readme_cells() -> list[str]:
    text = (ROOT / "README.md").read_text().split("## In a notebook\n", 1)[1].split("\n## ", 1)[0]
    return [part.split("```", 1)[0] for part in text.split("```python\n")[1:]]


def test_notebook_example(ip: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """As in a new notebook of `make lab` (issue 20, point 19): the kernel's folder is notebooks/,
    its BATCHFED_HOME the lab's workspace, where `make lab` has started the stack."""
    from IPython.utils.capture import capture_output

    monkeypatch.setenv("BATCHFED_HOME", str(tmp_path / "ws"))
    lab_up = subprocess.run(
        [*batchfed_exe(), "up", "--config", "notebooks/federation.yaml"], cwd=ROOT, capture_output=True, text=True, timeout=90
    )
    assert lab_up.returncode == 0, lab_up.stderr
    monkeypatch.chdir(ROOT / "notebooks")
    cells = readme_cells()
    assert len([line for line in cells[0].splitlines() if line.strip()]) == 5  # "five lines"
    try:
        results = []
        for cell in cells:
            with capture_output() as shown:
                r = ip.run_cell(cell)
            assert r.success, (cell, r.error_in_exec or r.error_before_exec)
            results.append(r.result)
            if cell is cells[0]:
                assert "already running" in shown.stdout and not shown.stderr, (shown.stdout, shown.stderr)
        assert isinstance(results[0], Submission) and results[0].status()["state"].tolist() == ["placed", "placed"]
        assert results[0].status().set_index("job_id").loc["train", "location"] == "eastus"
        assert results[1].strip() == "training on eus-gpu"  # the last line of the second cell
        assert ip.user_ns["sub"].job_ids == ["hello-ada"]
    finally:
        ip.run_line_magic("fed", "down")
    wait_until(lambda: not workspace_pids(tmp_path / "ws"), "the README's stack to stop", 10)
