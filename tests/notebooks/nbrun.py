"""Run an example notebook with papermill the way the notebook tests need it.

- an explicit kernelspec (``batchfed-venv``) whose argv is this interpreter, so the kernel
  runs the venv's Python whatever kernels the machine has (papermill's NoSuchKernel / wrong
  env pitfall);
- a copy of ``notebooks/`` as the working directory and a temporary workspace;
- probes injected into the copy: a first cell records, after every cell (IPython's
  ``post_run_cell``), which ``batchfed-*`` threads are alive, and a last cell glues that log,
  the interpreter and the display mode;
- afterwards, whatever happened: the stack of the workspace is brought down, and no process
  of the workspace (localbatch, proxy, tasks) and no kernel may survive.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nbformat

from batchfed_lab.widgets.glue import read as read_glue

REPO = Path(__file__).resolve().parents[2]
NOTEBOOKS = REPO / "notebooks"
KERNEL = "batchfed-venv"
CELL_TIMEOUT = 120  # seconds per cell (papermill's execution_timeout)

PROBE_FIRST = """\
import sys as _sys, threading as _threading
_batchfed_threads_after_cell = []
def _batchfed_probe(result):
    _batchfed_threads_after_cell.append(sorted(t.name for t in _threading.enumerate() if t.name.startswith("batchfed-")))
get_ipython().events.register("post_run_cell", _batchfed_probe)
"""
PROBE_LAST = """\
from batchfed_lab import widgets as _w
_w.glue("_threads_after_cell", _batchfed_threads_after_cell)
_w.glue("_executable", _sys.executable)
_w.glue("_mode", _w.noninteractive_reason())
"""


def install_kernelspec(root: Path, name: str = KERNEL) -> str:
    """A kernelspec under ``root/kernels`` running this interpreter; returns its name.
    The caller puts ``root`` first on ``JUPYTER_PATH``."""
    spec = root / "kernels" / name
    spec.mkdir(parents=True, exist_ok=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "batchfed (venv)", "language": "python",
    }))
    return name


@dataclass
class Run:
    nb: Any  # the executed notebook (nbformat node)
    glue: dict[str, Any]
    workspace: Path
    path: Path
    error: BaseException | None = None

    def outputs(self) -> list[dict[str, Any]]:
        return [o for c in self.nb.cells if c.cell_type == "code" for o in c.get("outputs", ())]

    def mimetypes(self) -> set[str]:
        return {m for o in self.outputs() for m in (o.get("data") or {})}

    def cell(self, startswith: str) -> Any:
        for c in self.nb.cells:
            if c.cell_type == "code" and c.source.startswith(startswith):
                return c
        raise AssertionError(f"no cell starts with {startswith!r}")

    def html_of(self, startswith: str) -> str:
        return "".join((o.get("data") or {}).get("text/html", "") for o in self.cell(startswith).get("outputs", ()))

    def errors(self) -> list[dict[str, Any]]:
        return [o for o in self.outputs() if o.get("output_type") == "error"]


def process_table() -> dict[int, int]:
    """pid → parent pid of every live (non-zombie) process, from /proc."""
    table = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] != "Z":
            table[int(entry.name)] = int(fields[1])
    return table


def descendants(pid: int) -> list[int]:
    """Live descendants of ``pid`` (e.g. the kernels of a Jupyter server)."""
    children: dict[int, list[int]] = {}
    for child, parent in process_table().items():
        children.setdefault(parent, []).append(child)
    out, todo = [], [pid]
    while todo:
        for c in children.get(todo.pop(), []):
            out.append(c)
            todo.append(c)
    return out


def child_processes(before: frozenset[int] = frozenset()) -> list[int]:
    """Live children of this process not in ``before``: the kernels papermill started, and not
    the session's own helpers (Azurite, started by a session fixture, is a child too)."""
    me = os.getpid()
    return [pid for pid, parent in process_table().items() if parent == me and pid not in before]


def wait_gone(pids_fn, timeout: float) -> list[int]:
    deadline = time.monotonic() + timeout
    while True:
        left = pids_fn()
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.05)


def execute(name: str, tmp: Path, parameters: dict[str, Any] | None = None, *, probes: bool = True,
            source: Any = None, raise_errors: bool = True) -> Run:
    """Execute ``notebooks/<name>.ipynb`` (or the notebook node ``source``) in ``tmp``."""
    import papermill as pm

    from federation_stack import workspace_processes

    from batchfed_lab.client import connect

    work = tmp / "notebooks"
    if not work.exists():
        shutil.copytree(NOTEBOOKS, work, ignore=shutil.ignore_patterns(".workspaces", "*.out.ipynb", ".ipynb_checkpoints"))
    ws = tmp / f"ws-{name}"
    nb = source if source is not None else nbformat.read(work / f"{name}.ipynb", as_version=4)
    if probes:
        nb.cells.insert(0, nbformat.v4.new_code_cell(PROBE_FIRST))
        nb.cells.append(nbformat.v4.new_code_cell(PROBE_LAST))
    src = work / f"{name}.probed.ipynb"
    nbformat.write(nb, src)
    out = tmp / f"{name}.out.ipynb"
    error: BaseException | None = None
    helpers = frozenset(child_processes())
    try:
        pm.execute_notebook(
            str(src), str(out), parameters={"workspace": str(ws), **(parameters or {})}, kernel_name=KERNEL,
            cwd=str(work), execution_timeout=CELL_TIMEOUT, start_timeout=60, progress_bar=False, log_output=False,
        )
    except Exception as exc:  # noqa: BLE001 - re-raised below unless the caller inspects it
        error = exc
    finally:
        # a notebook that failed before its last cell leaves its stack up: bring it down
        if ws.exists():
            with connect(ws) as client:
                client.down()
        left = wait_gone(lambda: workspace_processes(ws), 10)
        kernels = wait_gone(lambda: child_processes(helpers), 15)
        for pid in left + kernels:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    assert not left, f"processes of the workspace survived the notebook: {left}"
    assert not kernels, f"kernel processes survived the notebook: {kernels}"
    executed = nbformat.read(out, as_version=4)
    run = Run(executed, read_glue(executed), ws, out, error)
    if error is not None and raise_errors:
        raise error
    return run
