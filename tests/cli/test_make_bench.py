"""``make bench`` (issue 20, point 18): every benchmark runs and prints its figures even after
one misses its target, and the run fails at the end, naming the ones that missed."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_a_missed_target_does_not_stop_the_benchmarks_after_it(tmp_path: Path) -> None:
    missing = tmp_path / "misses.py"
    missing.write_text("print('figure A: 3/s (target >= 5/s: MISSED)')\nraise SystemExit(1)\n")
    meets = tmp_path / "meets.py"
    meets.write_text("print('figure B: 9/s (target >= 5/s: met)')\n")
    run = subprocess.run(
        [
            "make",
            "--no-print-directory",
            # the prerequisites (venv, Azurite) are the suite's own: not remade here
            "-o",
            "venv",
            "-o",
            "azurite",
            "bench",
            f"BENCHES={missing} {meets}",
            f"PY={sys.executable}",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode != 0
    assert "figure A" in run.stdout and "figure B" in run.stdout  # the second ran after the miss
    assert "missed a target:" in run.stderr and str(missing) in run.stderr and str(meets) not in run.stderr


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_when_every_benchmark_meets_its_target_make_bench_succeeds(tmp_path: Path) -> None:
    meets = tmp_path / "meets.py"
    meets.write_text("print('figure B: 9/s (target >= 5/s: met)')\n")
    run = subprocess.run(
        ["make", "--no-print-directory", "-o", "venv", "-o", "azurite", "bench", f"BENCHES={meets}", f"PY={sys.executable}"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    assert "every benchmark met its targets" in run.stdout
