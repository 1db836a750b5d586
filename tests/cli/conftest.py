"""One embedded stack for the CLI tests (see tests/stack.py), and a runner bound to it."""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass
from typing import Any

import pytest
from click.testing import CliRunner
from stack import Stack, batchfed_exe, stack_fixture

stack = stack_fixture("package", federations={"demo": ("we-small", "we-big", "us-gpu"), "spare": ("jp-small",)})


@dataclass
class Ran:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


@pytest.fixture
def cli(stack: Stack):  # type: ignore[no-untyped-def]
    """``cli("fed", "list", "--raw")`` runs ``batchfed`` in-process with click's runner."""
    from batchfed_lab.cli import main

    runner = CliRunner()

    def run(*args: str, input: str | None = None) -> Ran:
        r = runner.invoke(main, list(args), input=input, env={"BATCHFED_HOME": str(stack.root)}, catch_exceptions=False)
        return Ran(r.exit_code, r.stdout, r.stderr)

    return run


@pytest.fixture
def sh(stack: Stack):  # type: ignore[no-untyped-def]
    """``sh("fed", "pools", "demo", "--raw")`` runs ``batchfed`` as a subprocess (stdin: /dev/null)."""

    def run(*args: str, env: dict[str, str] | None = None, timeout: float = 60) -> Ran:
        p = subprocess.run(
            [*batchfed_exe(), *args],
            env=env or stack.env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=os.getcwd(),
        )
        return Ran(p.returncode, p.stdout, p.stderr)

    return run
