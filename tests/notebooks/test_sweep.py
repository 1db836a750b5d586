"""03-parameter-sweep-pipeline run unattended with its own parameters: a two-stage pipeline.
Stage 1's task groups land in the requested regions and write their estimates through
output_data; stage 2 reads them all through input_data in the region of the storage account
(``pool.location: data``) and writes the combined table back; the notebook downloads it
(``%fed results --download``) into a complete results DataFrame and plots it."""

from __future__ import annotations

import csv
import math

import pytest

from nbrun import execute

SIZES = [500, 5000]
SEEDS = 4
REGIONS = ["eastus", "japaneast"]
STORAGE_REGION = "westeurope"


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("nb03")
    r = execute(
        "03-parameter-sweep-pipeline",
        tmp,
        {"sample_sizes": SIZES, "seeds": SEEDS, "regions": REGIONS, "storage_region": STORAGE_REGION,
         "output_csv": str(tmp / "results.csv")},
    )
    r.csv = tmp / "results.csv"
    return r


def test_parameters_were_injected(run):
    (injected,) = [c for c in run.nb.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert "seeds = 4" in injected.source and "sample_sizes = [500, 5000]" in injected.source


def test_the_results_frame_from_stage_2_is_complete(run):
    results = run.glue["results"]
    assert sorted((r["n"], r["seed"]) for r in results) == [(n, s) for n in SIZES for s in range(1, SEEDS + 1)]
    for r in results:
        assert abs(r["pi"] - math.pi) < 0.6 and r["abs_error"] == pytest.approx(abs(r["pi"] - math.pi))
        assert r["job_id"].startswith(f"pi-n{r['n']}-")
    summary = run.glue["summary"]
    assert [s["n"] for s in summary] == SIZES and all(s["tasks"] == SEEDS for s in summary)


def test_stage_1_task_groups_ran_in_their_regions(run):
    placements = run.glue["placements"]
    assert [p["location"] for p in placements] == REGIONS
    assert all(p["state"] == "placed" and p["tasks"] == p["tasks_completed"] == SEEDS for p in placements)
    by_job = {p["job_id"]: p["location"] for p in placements}
    assert all(r["location"] == by_job[r["job_id"]] for r in run.glue["results"])


def test_stage_2_read_its_inputs_in_the_storage_region_and_wrote_its_outputs(run):
    assert run.glue["stage2_location"] == STORAGE_REGION
    (task,) = run.glue["stage2"]
    assert task["state"] == "completed" and task["exit_code"] == 0
    paths = sorted(o["blob_path"] for o in run.glue["stage2_outputs"])
    assert [p.rsplit("/", 1)[1] for p in paths] == ["combined.csv", "means.csv"]
    assert all(p.startswith("pipeline/") and "/stage2/" in p for p in paths)


def test_the_csv_and_the_plots_were_written(run):
    with run.csv.open() as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == len(SIZES) * SEEDS and {"n", "seed", "pi", "pool_id"} <= set(rows[0])
    assert sum("image/png" in (o.get("data") or {}) for o in run.outputs()) == 2
    assert not run.errors() and all(names == [] for names in run.glue["_threads_after_cell"])
