"""The README's "From the terminal" block works as shown (fresh workspace, repository root)."""

from __future__ import annotations

import os
import shlex
import subprocess
from pathlib import Path

from stack import batchfed_exe, wait_until, workspace_pids

ROOT = Path(__file__).resolve().parents[2]


def readme_block(heading: str, lang: str) -> list[str]:
    text = (ROOT / "README.md").read_text().split(f"## {heading}\n", 1)[1].split("\n## ", 1)[0]
    block = text.split(f"```{lang}\n", 1)[1].split("```", 1)[0]
    return [line for line in block.splitlines() if line.strip()]


def test_terminal_example(tmp_path: Path) -> None:
    env = {**os.environ, "BATCHFED_HOME": str(tmp_path / "ws")}
    lines = readme_block("From the terminal", "bash")
    assert lines[0].startswith("batchfed up") and lines[-1] == "batchfed down"
    outputs = []
    try:
        for line in lines:
            argv = shlex.split(line, comments=True)
            assert argv[0] == "batchfed"
            p = subprocess.run(
                [*batchfed_exe(), *argv[1:]],
                env=env,
                cwd=ROOT,
                capture_output=True,
                text=True,
                stdin=subprocess.DEVNULL,
                timeout=120,
            )
            assert p.returncode == 0, (line, p.stderr)
            outputs.append(p.stdout)
        assert "training on eus-gpu" in outputs[lines.index(next(x for x in lines if " output " in x))]
    finally:
        subprocess.run([*batchfed_exe(), "down"], env=env, capture_output=True, timeout=120)
    wait_until(lambda: not workspace_pids(tmp_path / "ws"), "the README's stack to stop", 10)
