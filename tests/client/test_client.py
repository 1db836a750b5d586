"""The client API against a real stack: localbatch, the SQLite store and a detached proxy."""

from __future__ import annotations

import itertools
from pathlib import Path

import pandas as pd
import pytest
from stack import Stack, job_yaml, wait_until

from batchfed_lab import (
    ConfigError,
    ConflictError,
    InvalidIdError,
    NotFoundError,
    Submission,
    SubmissionError,
)
from batchfed_lab.store import ActionState

_seq = itertools.count()


def new_id(prefix: str = "job") -> str:
    return f"{prefix}-{next(_seq)}"


# --------------------------------------------------------------------------- federations
def test_create_list_destroy(stack: Stack) -> None:
    c = stack.client
    c.create_federation("tmp-fed", unique_job_ids=False)
    with pytest.raises(ConflictError):
        c.create_federation("tmp-fed")
    assert c.create_federation("tmp-fed", force=True).unique_job_ids  # --force replaces the settings
    summary = {s.id: s for s in c.describe_federations()}
    assert {"demo", "loose", "empty", "tmp-fed"} <= set(summary)
    assert sorted(p.pool_id for p in summary["demo"].pools) == ["us-gpu", "we-big", "we-small"]
    df = c.federations_frame(["demo", "loose"])
    assert df["federation_id"].tolist() == ["demo", "loose"] and df["unique_job_ids"].tolist() == [True, False]
    res = c.destroy_federation("tmp-fed")
    assert res.report.federation_id == "tmp-fed" and res.warnings == ()
    with pytest.raises(NotFoundError, match="tmp-fed"):
        c.describe_federations(["tmp-fed"])


def test_bad_federation_ids_are_one_line_errors(stack: Stack) -> None:
    with pytest.raises(InvalidIdError) as info:
        stack.client.create_federation("Not Valid!")
    assert "\n" not in str(info.value)
    with pytest.raises(NotFoundError, match="'nope' does not exist"):
        stack.client.submit("nope", job_yaml("x"))


# --------------------------------------------------------------------------- pools
def test_add_and_remove_pools(stack: Stack) -> None:
    c = stack.client
    c.create_federation("pools-fed")
    try:
        added = c.add_pools("pools-fed", pool_ids=["spare-a"], batch_service_url=stack.urls["lab1"])
        assert [(m.pool_id, m.account, m.location) for m in added.pools] == [("spare-a", "lab1", "westeurope")]
        with pytest.raises(ConflictError, match="spare-a"):
            c.add_pools("pools-fed", pool_ids=["spare-a"], batch_service_url=stack.urls["lab1"])
        with pytest.raises(ConflictError, match="we-small"):  # belongs to demo already
            c.add_pools("pools-fed", pool_ids=["we-small"], batch_service_url=stack.urls["lab1"])
        with pytest.raises(NotFoundError, match="no-such-pool"):
            c.add_pools("pools-fed", pool_ids=["no-such-pool"], batch_service_url=stack.urls["lab1"])
        with pytest.raises(ConfigError, match="--all"):
            c.remove_pools("pools-fed", ["spare-a"], all=True)
        job = new_id("on-spare")
        c.submit("pools-fed", job_yaml(job)).wait(20)
        removed = c.remove_pools("pools-fed", ["spare-a"])
        assert [m.pool_id for m in removed.pools] == ["spare-a"] and c.pools("pools-fed") == []
        assert removed.warnings == (f"pool spare-a still runs job(s) of pools-fed: {job}",)
    finally:
        c.destroy_federation("pools-fed")


def test_add_pools_can_create_them_from_pool_yaml(stack: Stack, tmp_path: Path) -> None:
    c = stack.client
    cfg = tmp_path / "pool.yaml"
    cfg.write_text(
        "pool_specification:\n  id: made-here\n  vm_size: standard_d2_v3\n  location: brazilsouth\n  vm_count: {dedicated: 1}\n"
    )
    c.create_federation("create-fed")
    try:
        with pytest.raises(NotFoundError, match="--create"):
            c.add_pools("create-fed", pool_config=cfg, account="lab2")
        res = c.add_pools("create-fed", pool_config=[cfg], account="lab2", create=True)
        assert [(m.pool_id, m.account, m.location) for m in res.pools] == [("made-here", "lab2", "brazilsouth")]
    finally:
        c.destroy_federation("create-fed")


def test_pools_frame_has_live_capacity(stack: Stack) -> None:
    df = stack.client.pools_frame("demo").set_index("pool_id")
    assert sorted(df.index) == ["us-gpu", "we-big", "we-small"]
    assert df.loc["we-small", "slots_total"] == 4 and df.loc["we-small", "dedicated_target"] == 2
    assert df.loc["us-gpu", "gpus"] == 1 and df.loc["we-big", "cores"] == 16 and df.loc["we-big", "memory_gib"] == 64.0
    assert set(df["account"]) == {"lab1", "lab2"} and set(df["location"]) == {"westeurope", "eastus"}
    assert str(df["blackout_until"].dtype) == "datetime64[us, UTC]"


def test_a_capacity_read_leaves_no_thread_behind(stack: Stack) -> None:
    # "demo" spans two accounts, so their pools are listed on parallel threads; a notebook
    # cell that reads capacity must return with those threads gone, not waiting for the GC
    import threading

    for _ in range(5):
        stack.client.pool_snapshots("demo")
        assert [t.name for t in threading.enumerate() if t.name.startswith("batchfed-capacity")] == []


# --------------------------------------------------------------------------- submit
def test_submit_yaml_text_file_and_dict(stack: Stack, tmp_path: Path) -> None:
    c = stack.client
    path = tmp_path / "jobs.yaml"
    path.write_text(job_yaml(file_job := new_id()))
    text_job, dict_job = new_id(), new_id()
    as_dict = {"job_specifications": [{"id": dict_job, "tasks": [{"command": "echo dict"}]}]}
    subs = [c.submit("demo", path), c.submit("demo", job_yaml(text_job)), c.submit("demo", as_dict)]
    for sub, job in zip(subs, (file_job, text_job, dict_job)):
        assert isinstance(sub, Submission) and sub.job_ids == [job] and len(sub.unique_ids) == 1
        placed = sub.wait(timeout=20)
        assert placed[0].state is ActionState.PLACED
    status = subs[0].status()
    assert status["state"].tolist() == ["placed"] and status["pool_id"][0] in {"we-small", "we-big", "us-gpu"}
    assert status["latency_s"][0] >= 0 and str(status["placed"].dtype) == "datetime64[us, UTC]"
    bundle = subs[0]._repr_mimebundle_()
    assert file_job in bundle["text/plain"] and "<table" in bundle["text/html"]


def test_wait_raises_while_blocked_and_zap_unblocks(stack: Stack) -> None:
    c = stack.client
    job = new_id("mars")
    sub = c.submit("demo", job_yaml(job, constraints="{pool: {location: mars}}"))
    with pytest.raises(
        SubmissionError, match=r"blocked: no pool satisfies the constraints \(3 of 3 excluded\): location: needs mars, has \w+"
    ):
        sub.wait(timeout=5)
    blocked = c.jobs_frame("demo", job, blocked=True)
    want = "no pool satisfies the constraints (3 of 3 excluded): location: needs mars, has "
    assert all(r.startswith(want) for r in blocked["reason"])  # the frame carries the same summary
    assert set(blocked["pool_id"]) == {"we-small", "we-big", "us-gpu"}
    assert set(blocked["constraint"]) == {"location"} and set(blocked["required"]) == {"mars"}
    assert set(blocked["account"]) == {"lab1", "lab2"}
    zapped = c.zap("demo", sub.unique_ids[0])
    assert zapped.state is ActionState.ZAPPED
    with pytest.raises(SubmissionError, match="zapped"):
        sub.wait(timeout=1)


def test_invalid_input_enqueues_nothing(stack: Stack, tmp_path: Path) -> None:
    c = stack.client
    before = stack.total_actions()
    placed = new_id("dup")
    c.submit("demo", job_yaml(placed)).wait(20)
    before += 1
    bad = {
        "missing file": (str(tmp_path / "absent.yaml"), ConfigError, "file not found"),
        "bad yaml": ("job_specifications: [\n  - id: x", ConfigError, "invalid YAML"),
        "unknown key": (job_yaml("x").replace("command", "comand"), ConfigError, "did you mean 'command'"),
        "duplicate in unique federation": (job_yaml(placed), ConflictError, f"'{placed}' already exists"),
    }
    for what, (jobs, error, message) in bad.items():
        with pytest.raises(error, match=message):
            c.submit("demo", jobs)
        assert stack.total_actions() == before, what
    for uid in ("not-a-uuid", "9f1f3c53-0000-4000-8000-000000000000"):
        with pytest.raises((InvalidIdError, NotFoundError)):
            c.zap("demo", uid)
    assert stack.total_actions() == before


def test_non_unique_federation_accepts_a_job_id_twice(stack: Stack) -> None:
    c = stack.client
    job = new_id("again")
    for _ in range(2):
        c.submit("loose", job_yaml(job)).wait(20)
    locations = c.jobs_frame("loose", job)
    assert len(locations) == 2 and locations["pool_id"].tolist() == ["jp-small", "jp-small"]


# --------------------------------------------------------------------------- jobs, tasks
def test_jobs_listing_filters_by_job_id(stack: Stack) -> None:
    c = stack.client
    a, b = new_id(), new_id()
    c.submit("demo", job_yaml(a)).wait(20)
    c.submit("demo", job_yaml(b)).wait(20)
    df = c.jobs_frame("demo", a)
    assert df["job_id"].tolist() == [a]  # the original's hashing made this find nothing
    assert set(c.jobs_frame("demo")["job_id"]) >= {a, b}
    assert c.jobs_frame("demo", a, queued=True).empty
    with pytest.raises(ConfigError):
        c.jobs_frame("demo", queued=True, blocked=True)


def test_tasks_and_their_output(stack: Stack) -> None:
    c = stack.client
    job = new_id("out")
    c.submit("demo", job_yaml(job, "echo out-$AZ_BATCH_TASK_ID; echo err >&2", tasks=2)).wait(20)
    wait_until(lambda: c.tasks_frame("demo", job)["state"].eq("completed").all(), "the tasks to complete")
    df = c.tasks_frame("demo", job)
    assert df["task_id"].tolist() == ["task-00000", "task-00001"] and df["exit_code"].tolist() == [0, 0]
    assert str(df["state"].dtype) == "category" and df["node_id"].notna().all() and (df["duration_s"] >= 0).all()
    assert c.task_output("demo", job, "task-00001").strip() == "out-task-00001"
    assert c.task_output("demo", job, "task-00001", "stderr").strip() == "err"
    with pytest.raises(NotFoundError, match="has no location"):
        c.tasks("demo", "never-submitted")


def test_terminate_delete_and_skips(stack: Stack) -> None:
    c = stack.client
    job = new_id("term")
    c.submit("demo", job_yaml(job, "sleep 30")).wait(20)
    res = c.terminate("demo", [job, "ghost"])
    assert res.skipped == ["ghost"] and "ghost" in res.warnings[0] and len(res.unique_ids) == 1
    wait_until(lambda: c.store.get_action("demo", res.unique_ids[0]).state is ActionState.DONE, "terminate to be done")
    assert not pd.isna(c.jobs_frame("demo", job)["terminated"][0])
    gone = c.delete("demo", [job])
    wait_until(lambda: c.store.get_action("demo", gone.unique_ids[0]).state is ActionState.DONE, "delete to be done")
    assert c.jobs_frame("demo", job).empty
    with pytest.raises(ConfigError):
        c.delete("demo")


def test_explain_is_a_dry_run(stack: Stack) -> None:
    c = stack.client
    before = stack.total_actions()
    jobs = (
        job_yaml("gpu-job", constraints="{compute_node: {gpu: true}}")
        + job_yaml("nowhere", constraints="{pool: {location: mars}}").split("\n", 1)[1]
    )
    explanations = c.explain("demo", jobs)
    assert [(e.job_id, e.pool_id) for e in explanations] == [("gpu-job", "us-gpu"), ("nowhere", None)]
    df = c.explain_frame("demo", jobs)
    gpu = df[df.job_id == "gpu-job"].set_index("pool_id")
    assert gpu.loc["us-gpu", "chosen"] and gpu.loc["we-small", "constraint"] == "gpu"
    assert "<table" in explanations[0]._repr_mimebundle_()["text/html"]
    assert stack.total_actions() == before


# --------------------------------------------------------------------------- proxy
def test_proxy_status_suspend_resume_logs(stack: Stack) -> None:
    c = stack.client
    status = c.proxy_status_frame()
    assert status["running"].tolist() == [True] and status["leader"].tolist() == [True]
    c.proxy_suspend()
    try:
        sub = c.submit("demo", job_yaml(new_id("held")))
        wait_until(lambda: c.proxy_status()[0]["suspended"], "the proxy to report suspended")
        assert sub.actions()[0].state is ActionState.QUEUED
    finally:
        c.proxy_resume()
    sub.wait(20)
    assert "proxy-1" in c.proxy_logs(200)
    assert c.proxy_start()[1] is False  # idempotent: the running proxy is reported
