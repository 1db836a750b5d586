"""01-quickstart under papermill: a 7-pool, 3-region federation from nothing; every job lands
on a pool that satisfies its constraints; results, plots and the static widget fallbacks are
in the outputs; no thread after any cell, no process after the notebook."""

from __future__ import annotations

import re
import sys

import pytest

from nbrun import execute

POOLS = {"we-native", "we-gpu", "eus-hpc", "eus-lowpri", "jp-auto", "jp-custom", "jp-windows"}
# job id prefix → the pools satisfying its federation_constraints (see notebooks/pools/)
ALLOWED = {
    "hello-westeurope-": {"we-native", "we-gpu"},  # location: westeurope
    "crunch-eastus-": {"eus-hpc"},  # eastus and ≥ 64 cores
    "lowpri-": {"eus-lowpri"},  # low-priority only, no autoscale
    "autoscale-japaneast-": {"jp-auto"},  # japaneast, autoscale only
}
REGION = {"we-native": "westeurope", "we-gpu": "westeurope", "eus-hpc": "eastus", "eus-lowpri": "eastus",
          "jp-auto": "japaneast", "jp-custom": "japaneast", "jp-windows": "japaneast"}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return execute("01-quickstart", tmp_path_factory.mktemp("nb01"))


def test_kernel_is_this_venv_and_views_are_static(run):
    assert run.glue["_executable"] == sys.executable
    assert run.glue["_mode"] == "BATCHFED_NONINTERACTIVE is set"
    assert "application/vnd.jupyter.widget-view+json" not in run.mimetypes(), "a static run must not emit widget views"
    assert not run.errors()


def test_no_refresh_thread_after_any_cell(run):
    log = run.glue["_threads_after_cell"]
    cells = sum(1 for c in run.nb.cells if c.cell_type == "code")
    assert len(log) >= cells - 2, "the probe saw every cell between the probes"
    assert all(names == [] for names in log), [n for n in log if n]


def test_every_job_placed_on_a_pool_satisfying_its_constraints(run):
    placements = run.glue["placements"]
    assert len(placements) == len(ALLOWED)
    for row in placements:
        (prefix,) = [p for p in ALLOWED if row["job_id"].startswith(p)]
        assert row["state"] == "placed", row
        assert row["pool_id"] in ALLOWED[prefix], row
        assert row["location"] == REGION[row["pool_id"]], row
        assert row["tasks"] == row["tasks_completed"] and row["tasks_failed"] == 0, row
        assert row["latency_s"] is not None and 0 <= row["latency_s"] < 60
    assert {r["location"] for r in placements} == {"westeurope", "eastus", "japaneast"}


def test_task_outputs_were_read(run):
    outputs = run.glue["outputs"]
    assert len(outputs) == 7 and all(o["exit_code"] == 0 for o in outputs)
    squares = sorted(o["stdout"] for o in outputs if o["job_id"].startswith("crunch-eastus-"))
    assert squares == [f"task {k} squared is {k * k}" for k in range(1, 5)]
    (hello,) = [o for o in outputs if o["job_id"].startswith("hello-westeurope-")]
    assert hello["stdout"] == f"hello from {hello['pool_id']}"


def test_capacity_fallback_shows_every_pool_by_region(run):
    html = run.html_of("capacity = widgets.PoolCapacity")
    assert "batchfed-pool-capacity" in html
    for pool in POOLS:
        assert f'data-pool="{pool}"' in html, pool
    for region in ("westeurope", "eastus", "japaneast"):
        assert region in html
    text = "".join(o["data"]["text/plain"] for o in run.cell("capacity = widgets.PoolCapacity").outputs)
    assert re.search(r"7 pools in 3 regions", text)
    sample = run.glue["capacity"]
    assert {r["pool_id"] for r in sample} == POOLS
    assert sum(r["slots_available"] for r in sample) == 21  # the pool table's schedulable slots


def test_placement_view_and_plots_render(run):
    html = run.html_of("placement = widgets.SubmissionView")
    assert "batchfed-submission" in html and "hello-westeurope-" in html
    pngs = [o for o in run.outputs() if "image/png" in (o.get("data") or {})]
    assert len(pngs) == 3, "capacity over time, placements, latency histogram"


def test_teardown_stops_the_stack_the_notebook_started(run):
    """Issue 20, point 22: under papermill the notebook started its stack, so its last cell stops it."""
    out = "".join(o.get("text", "") for o in run.cell("widgets.stop_all()").outputs)
    assert "stopped proxies: proxy-1; localbatch: stopped" in out, out


def test_teardown_leaves_a_stack_it_did_not_start(tmp_path):
    """Issue 20, point 22: `make lab` starts the stack in 01-quickstart's workspace before any
    kernel; Run All must not take it down while JupyterLab keeps running."""
    import os
    import subprocess

    import nbformat
    from nbrun import NOTEBOOKS
    from stack import batchfed_exe

    ws = tmp_path / "ws-01-quickstart"
    env = {**os.environ, "BATCHFED_HOME": str(ws)}
    up = subprocess.run([*batchfed_exe(), "up", "--config", str(NOTEBOOKS / "federation.yaml")], env=env, capture_output=True, timeout=90)
    assert up.returncode == 0, up.stderr
    nb = nbformat.read(NOTEBOOKS / "01-quickstart.ipynb", as_version=4)
    keep = ("# Parameters", "import os", "%fed up", "widgets.stop_all()")
    nb.cells = [c for c in nb.cells if c.cell_type == "code" and c.source.startswith(keep)]
    assert len(nb.cells) == len(keep)
    run = execute("01-quickstart", tmp_path, source=nb, probes=False)  # brings the stack down afterwards
    assert "already running" in "".join(o.get("text", "") for o in run.cell("%fed up").outputs)
    out = "".join(o.get("text", "") for o in run.cell("widgets.stop_all()").outputs)
    assert out.startswith("left running"), out


def test_first_cell_lists_the_steps_in_order():
    """Issue 20, point 21: a line starting "4." inside a paragraph made the list render 1, 3, 2, 5."""
    import mistune
    import nbformat
    from nbrun import NOTEBOOKS

    nb = nbformat.read(NOTEBOOKS / "01-quickstart.ipynb", as_version=4)
    html = mistune.html(nb.cells[0].source)
    items = re.findall(r"<li>(.*?)</li>", html, re.S)
    assert [i.split()[0] for i in items] == ["start", "create", "watch", "submit", "watch", "read", "plots", "clean"], html
    assert "<ol>" in html and "<ol start" not in html and not re.search(r"\d\. \w", " ".join(items)), html
    for section in range(1, 9):  # each step is a section of the notebook
        assert any(c.source.startswith(f"## {section}. ") for c in nb.cells if c.cell_type == "markdown"), section


def test_a_rerun_deletes_the_earlier_runs_jobs_with_its_federation():
    """Issue 20, point 21: a re-run destroys the earlier federation without a contradicting warning."""
    import nbformat
    from nbrun import NOTEBOOKS

    nb = nbformat.read(NOTEBOOKS / "01-quickstart.ipynb", as_version=4)
    (cell,) = [c for c in nb.cells if c.cell_type == "code" and "%fed destroy" in c.source]
    assert "%fed destroy {federation} --delete-jobs -y" in cell.source
