"""``make lab`` without JupyterLab (issue 20, point 19): a stand-in for ``jupyter`` records the
environment the lab's kernels get and starts stacks as kernels would; then Ctrl-C on ``make
lab`` must bring down every stack its kernels started, in the lab's workspace and elsewhere."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from stack import wait_until, workspace_pids

REPO = Path(__file__).resolve().parents[2]
VENV = Path(sys.executable).parent.parent

# A "kernel" of the lab: in a new notebook (cwd notebooks/) it runs the README's first `%fed up`,
# then another notebook chooses its own workspace (`%fed use`) and starts a stack there.
FAKE_JUPYTER = """\
#!{python}
import json, os, sys, time
import batchfed_lab

os.chdir("notebooks")  # JupyterLab's root: a kernel's folder is its notebook's
seen = {{"argv": sys.argv[1:], "home": os.environ.get("BATCHFED_HOME"), "stacks": os.environ.get("BATCHFED_LAB_STACKS")}}
with batchfed_lab.connect() as c:
    c.up(config="federation.yaml")
os.environ["BATCHFED_HOME"] = {other!r}
with batchfed_lab.connect() as c:
    c.up()
with open({seen!r} + ".tmp", "w") as fh:
    json.dump(seen, fh)
os.replace({seen!r} + ".tmp", {seen!r})
while True:  # "JupyterLab runs" until Ctrl-C
    time.sleep(3600)
"""


def make_lab(**variables: str) -> list[str]:
    args = [f"{k}={v}" for k, v in {"VENV": str(VENV), **variables}.items()]
    return ["make", "--no-print-directory", "-o", str(VENV / ".installed"), "lab", *args]


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_ctrl_c_on_make_lab_stops_every_stack_its_kernels_started(tmp_path: Path) -> None:
    lab_ws, other, seen = tmp_path / "lab-ws", tmp_path / "other-ws", tmp_path / "seen.json"
    fake = tmp_path / "jupyter"
    fake.write_text(FAKE_JUPYTER.format(python=sys.executable, other=str(other), seen=str(seen)))
    fake.chmod(0o700)
    dry = subprocess.run([*make_lab(LAB_WS=str(lab_ws), JUPYTER=str(fake)), "-n"], cwd=REPO, capture_output=True, text=True)
    assert str(fake) in dry.stdout, "make lab must take its jupyter from $(JUPYTER) (else this would start JupyterLab)"
    proc = subprocess.Popen(
        make_lab(LAB_WS=str(lab_ws), JUPYTER=str(fake)),
        cwd=REPO,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its own process group: the test's Ctrl-C reaches make and its children only
    )
    try:
        wait_until(lambda: seen.exists() or proc.poll() is not None, "the lab's kernel to start its stacks", 90)
        assert proc.poll() is None, proc.communicate()[0]
        os.killpg(proc.pid, signal.SIGINT)
        out, _ = proc.communicate(timeout=90)
        wait_until(lambda: not workspace_pids(lab_ws) and not workspace_pids(other), "every stack of the lab to stop", 15)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        for ws in (lab_ws, other):
            subprocess.run(
                [str(VENV / "bin" / "batchfed"), "down"],
                env={**os.environ, "BATCHFED_HOME": str(ws)},
                capture_output=True,
                timeout=90,
            )
    kernel = json.loads(seen.read_text())
    assert kernel["home"] == str(lab_ws) and kernel["stacks"], kernel
    assert (
        kernel["argv"][0] == "lab"
        and "--notebook-dir=notebooks" in kernel["argv"]
        and "--ServerApp.ip=127.0.0.1" in kernel["argv"]
    )
    assert "starting the embedded stack" in out
    assert not Path(kernel["stacks"]).exists(), "the lab's list of stacks is removed"


def _prerequisites(target: str) -> set[str]:
    for line in (REPO / "Makefile").read_text().splitlines():
        if line.startswith(f"{target}:"):
            return set(line.split(":", 1)[1].split())
    raise AssertionError(f"no target {target!r} in the Makefile")


def test_the_readme_says_what_each_make_target_installs() -> None:
    """Issue 20, point 23: the README said `make lab` installs Azurite; its target does not."""
    text = (REPO / "README.md").read_text().split("## Quick start\n", 1)[1].split("\n## ", 1)[0]
    prose = text.split("```", 2)[2]
    claims = [c for c in re.split(r"[.;] ", prose.replace("\n", " ")) if "Azurite" in c and "install" in c]
    assert claims, "the README says who installs Azurite"
    for clause in claims:
        for target in ("lab", "test"):
            named = f"`make {target}`" in clause or "Both commands" in clause
            assert not named or "azurite" in _prerequisites(target), (target, clause)


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_the_venv_build_says_what_it_is_doing(tmp_path: Path) -> None:
    """Issue 20, point 23: the 30-40 s venv build printed nothing."""
    dry = subprocess.run(
        ["make", "--no-print-directory", "-n", "venv", f"VENV={tmp_path / 'v'}"], cwd=REPO, capture_output=True, text=True
    )
    first = dry.stdout.splitlines()[0]
    assert first.startswith("echo ") and "installing" in first and "pip" in first, dry.stdout


def test_make_lab_installs_azurite_before_up_starts_it() -> None:
    """`batchfed up` starts the storage account `local` (Azurite from node_modules): on a fresh
    clone `make lab` must have installed it first."""
    text = (REPO / "Makefile").read_text()
    prereqs = re.search(r"^lab:(.*)$", text, re.M)
    assert prereqs is not None and "azurite" in prereqs.group(1).split()
