"""A failing ``%fed`` fails the papermill run (the cells after it never run), and papermill
is recognised as non-interactive without BATCHFED_NONINTERACTIVE."""

from __future__ import annotations

import nbformat
import pytest
from papermill.exceptions import PapermillExecutionError

from nbrun import execute

SETUP = """\
import os
os.environ["BATCHFED_HOME"] = workspace
%load_ext batchfed_lab
"""


def small_notebook(*cells: str):
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell('workspace = ""')
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, nbformat.v4.new_code_cell(SETUP), *(nbformat.v4.new_code_cell(c) for c in cells)]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return nb


@pytest.mark.parametrize(
    "failing,ename,evalue",
    [
        ("%fed pools no-such-federation", "NotFoundError", "federation 'no-such-federation' does not exist"),
        # IPython prints a UsageError to stderr (no error output); the failed execute reply
        # still fails the run, as papermill's generic CellExecutionError (papermill PR #786)
        ("%fed destroy", "CellExecutionError", ""),
        ("%%fed submit nofed\njob_specifications: [{id: x, tasks: [{command: echo}]}]", "NotFoundError", "'nofed' does not exist"),
        ("%%fed explain fed1\njob_specifications: [{id: x, tasks: [{command: echo}], colour: red}]",
         "ConfigError", "colour = 'red': unknown key"),
    ],
    ids=["unknown-federation", "usage", "submit-unknown-federation", "bad-yaml"],
)
def test_a_failing_fed_magic_fails_the_run(tmp_path, failing, ename, evalue):
    nb = small_notebook("%fed create fed1", failing, "after = 'this cell must not run'\nprint(after)")
    with pytest.raises(PapermillExecutionError) as info:
        execute("failing", tmp_path, source=nb, probes=False)
    assert info.value.ename == ename and evalue in info.value.evalue
    out = nbformat.read(tmp_path / "failing.out.ipynb", as_version=4)
    failed, after = out.cells[-2], out.cells[-1]
    assert failed.metadata["papermill"]["status"] == "failed"
    if ename == "CellExecutionError":
        assert failed.outputs[-1]["text"] == "UsageError: the following arguments are required: ID\n"
    else:  # our errors are one line, no traceback
        assert failed.outputs[-1]["traceback"] == [f"{ename}: {info.value.evalue}"]
    assert after.execution_count is None and not after.outputs


def test_papermill_is_detected_without_the_environment_switch(tmp_path, monkeypatch):
    """No BATCHFED_NONINTERACTIVE and papermill driven from Python (no CLI parent, no env):
    the stdin-less execute request gives it away; views stay static and start no thread."""
    monkeypatch.delenv("BATCHFED_NONINTERACTIVE", raising=False)
    nb = small_notebook(
        "import batchfed_lab\nfrom batchfed_lab import widgets\n"
        "capacity = widgets.PoolCapacity(batchfed_lab.connect(workspace), interval=0.2)\n"
        "capacity.start()  # asked to go live: refreshes once and starts nothing\n"
        "capacity",
    )
    run = execute("modes", tmp_path, source=nb)
    assert run.glue["_mode"] == "the kernel executes without stdin (papermill / nbclient / nbconvert)"
    assert "application/vnd.jupyter.widget-view+json" not in run.mimetypes()
    assert "text/html" in run.mimetypes()
    assert all(names == [] for names in run.glue["_threads_after_cell"])
