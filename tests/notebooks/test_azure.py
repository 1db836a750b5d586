"""04-azure: without an Azure configuration it stops at its check cell with one clean line
(and contacts nothing); with one (BATCHFED_AZURE_STORAGE_ACCOUNT, BATCHFED_AZURE_BATCH_URL,
BATCHFED_AZURE_POOL_IDS and a DefaultAzureCredential login) it runs end to end."""

from __future__ import annotations

import os

import pytest
from papermill.exceptions import PapermillExecutionError

from nbrun import execute

AZURE_ENV = ("BATCHFED_AZURE_STORAGE_ACCOUNT", "BATCHFED_AZURE_BATCH_URL", "BATCHFED_AZURE_POOL_IDS")


def test_without_configuration_it_stops_early_with_the_reason(tmp_path, monkeypatch):
    for k in AZURE_ENV:
        monkeypatch.delenv(k, raising=False)
    run = execute("04-azure", tmp_path, probes=False, raise_errors=False)
    assert isinstance(run.error, PapermillExecutionError)
    assert run.error.ename == "AzureNotConfigured"
    assert run.error.evalue.startswith("skipped: no Azure configuration (storage_account, batch_service_url, pool_ids not set)")
    check = run.cell("import os\nimport re")
    printed = "".join(o.get("text", "") for o in check.outputs if o["output_type"] == "stream")
    assert printed.startswith("skipped: no Azure configuration")
    (err,) = [o for o in check.outputs if o["output_type"] == "error"]
    assert len(err["traceback"]) == 1, "one line, no traceback"
    later = [c for c in run.nb.cells[run.nb.cells.index(check) + 1:] if c.cell_type == "code"]
    assert later and all(c.execution_count is None for c in later), "nothing after the check ran"
    assert not run.workspace.exists(), "no workspace, no store, no process"


@pytest.mark.skipif(not all(os.environ.get(k) for k in AZURE_ENV), reason="no Azure configuration: set " + ", ".join(AZURE_ENV))
def test_against_azure(tmp_path):  # pragma: no cover - needs a subscription
    run = execute("04-azure", tmp_path, {"refresh_seconds": 5.0})
    (placed,) = run.glue["placements"]
    assert placed["state"] == "placed"
    assert all("hello from" in o["stdout"] for o in run.glue["outputs"])
