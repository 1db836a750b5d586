"""``fed destroy`` of a federation whose jobs still live in Batch (issue 20, point 21): one
consistent message, and ``--delete-jobs`` to delete those jobs instead of keeping them."""

from __future__ import annotations

from pathlib import Path

import pytest
from stack import PoolDef, Stack, job_yaml, wait_until


def _federation_with_a_placed_job(cli, stack: Stack, tmp_path: Path, fid: str) -> str:  # type: ignore[no-untyped-def]
    job = f"{fid}-job"
    assert cli("fed", "create", fid).code == 0
    pool = PoolDef(f"{fid}-pool", "lab2", "japaneast")
    stack.client.create_pool(pool.spec(), batch_service_url=stack.urls["lab2"])
    stack.client.add_pools(fid, pool_ids=[pool.id], batch_service_url=stack.urls["lab2"])
    path = tmp_path / "jobs.yaml"
    path.write_text(job_yaml(job))
    added = cli("fed", "jobs", "add", fid, "--jobs", str(path), "--wait")
    assert added.code == 0, added.err
    return job


def _batch_job_exists(stack: Stack, job: str) -> bool:
    acct = stack.client.account(stack.urls["lab2"])
    return any(j.id == job for j in acct.list_jobs())


def test_destroy_says_one_thing_about_the_jobs_it_keeps(cli, stack: Stack, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    job = _federation_with_a_placed_job(cli, stack, tmp_path, "keep-jobs")
    ran = cli("fed", "destroy", "keep-jobs", "--yes")
    assert ran.code == 0, ran.err
    assert "location(s) removed" not in ran.out, ran.out  # it said "removed", then "forgotten; not deleted"
    assert "1 Batch job(s) kept" in ran.out, ran.out
    assert ran.err.count("warning:") == 1 and "--delete-jobs" in ran.err, ran.err
    assert _batch_job_exists(stack, job)


def test_destroy_delete_jobs_deletes_them(cli, stack: Stack, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    job = _federation_with_a_placed_job(cli, stack, tmp_path, "drop-jobs")
    ran = cli("fed", "destroy", "drop-jobs", "--delete-jobs", "--yes", "--raw")
    assert ran.code == 0, ran.err
    assert ran.json()["deleted_jobs"] == 1 and "warning" not in ran.err
    wait_until(lambda: not _batch_job_exists(stack, job), "the Batch job to be deleted")


@pytest.mark.parametrize("flag", ["--delete-jobs"])
def test_delete_jobs_is_offered_in_both_surfaces(cli, flag: str) -> None:  # type: ignore[no-untyped-def]
    assert flag in cli("fed", "destroy", "--help").out
