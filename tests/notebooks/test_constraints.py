"""02-constraints-and-explain under papermill: one job per constraint family, each placed on
a pool that satisfies it; the dry run agrees; a blocked job is explained per pool, zapped,
and its id reused."""

from __future__ import annotations

import pytest

from nbrun import execute

# job id prefix → pools that satisfy the family (the pool table in notebooks/pools/)
ALLOWED = {
    "location-": {"eus-hpc", "eus-lowpri"},
    "vm-size-": {"we-gpu"},
    "cores-": {"eus-hpc"},
    "memory-": {"eus-lowpri"},
    "gpu-": {"we-gpu"},
    "infiniband-": {"eus-hpc"},
    "exclusive-": {"jp-custom"},
    "low-priority-": {"eus-lowpri", "jp-auto"},
    "autoscale-": {"jp-auto"},
    "native-": {"we-native"},
    "windows-": {"jp-windows"},
    "custom-image-": {"jp-custom"},
    "virtual-network-": {"jp-custom"},
    "registry-": {"we-native"},
    "backlog-": {"we-native", "we-gpu"},
    "multi-instance-": {"eus-hpc"},
}


def family(job_id: str) -> str:
    (prefix,) = [p for p in ALLOWED if job_id.startswith(p) and job_id[len(p):].count("-") == 0]
    return prefix


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return execute("02-constraints-and-explain", tmp_path_factory.mktemp("nb02"))


def test_every_family_is_placed_on_a_pool_that_satisfies_it(run):
    rows = run.glue["families"]
    assert {family(r["job_id"]) for r in rows} == set(ALLOWED)
    for r in rows:
        assert r["state"] == "placed", r
        assert r["pool_id"] in ALLOWED[family(r["job_id"])], r


def test_the_dry_run_chooses_satisfying_pools_and_names_every_failure(run):
    plan = run.glue["plan"]
    assert len(plan) == len(ALLOWED) * 7
    for r in plan:
        allowed = ALLOWED[family(r["job_id"])]
        if r["chosen"]:
            assert r["pool_id"] in allowed, r
        if r["status"] == "excluded":
            assert r["pool_id"] not in allowed, r
            assert r["constraint"] and r["required"] and r["actual"], r
    assert all(any(r["chosen"] for r in plan if r["job_id"] == j) for j in {r["job_id"] for r in plan})


def test_blocked_job_is_explained_per_pool(run):
    blocked = run.glue["blocked"]
    assert len(blocked) == 7 and {r["state"] for r in blocked} == {"blocked"}
    assert all("no pool satisfies" in r["reason"] for r in blocked)
    by_pool = {r["pool_id"]: r for r in blocked}
    assert by_pool["jp-windows"]["constraint"] == "windows"  # the Linux default fails first there
    for pool, r in by_pool.items():
        if pool != "jp-windows":
            assert (r["constraint"], r["required"]) == ("memory", "≥ 4096g"), r
    assert by_pool["eus-hpc"]["actual"] == "448g"
    html = run.html_of("widgets.ExplainView(blocked)")
    assert "✗ needs ≥ 4096g / has 448g" in html and "batchfed-explain" in html


def test_zap_drops_the_blocked_action_and_frees_the_job_id(run):
    zapped, retried = run.glue["zap"]
    assert zapped["job_id"] == retried["job_id"] and zapped["unique_id"] != retried["unique_id"]
    assert zapped["state"] == "zapped" and retried["state"] == "placed"
    assert retried["pool_id"] == "eus-hpc"  # the only size with ≥ 256 GiB


def test_a_typo_is_one_readable_line(run):
    msg = run.glue["config_error"]
    assert "\n" not in msg
    assert "typo.yaml" in msg and "memroy" in msg and "did you mean 'memory'" in msg


def test_no_error_no_widget_no_thread(run):
    assert not run.errors()
    assert "application/vnd.jupyter.widget-view+json" not in run.mimetypes()
    assert all(names == [] for names in run.glue["_threads_after_cell"])
