"""Starting, finding, stopping and restarting localbatch; durability across restarts.

Each test here runs its own server in its own workspace and stops it by pid at the end.
"""

from __future__ import annotations

import datetime
import json
import os
import signal
import stat
import subprocess
import sys
import time

import pytest
from azure.batch import models as bm
from azure.core.exceptions import HttpResponseError

from batchfed_lab import runtime
from batchfed_lab.errors import LocalBatchNotRunning
from batchfed_lab.localbatch import control

from .lb_helpers import leftover_processes, make_job, make_pool, sh, start_server, stdout_of, wait_for, wait_tasks_done

LONG_THEN_QUICK = sh("if [ -e marker ]; then echo rerun; else touch marker; echo $$ > pid; sleep 60; fi")


@pytest.fixture
def ws(tmp_path):
    root = tmp_path / "ws"
    yield root
    control.stop(root)
    assert not leftover_processes(root)


def test_start_is_idempotent_and_stop_cleans_up(ws):
    ws.mkdir(mode=0o700)
    (ws / "settings.yaml").write_text("localbatch:\n  latency_ms: 40\n")
    first = start_server(ws)
    assert start_server(ws).pid == first.pid  # a running one is reported, not duplicated
    assert first.latency_ms == 40
    assert stat.S_IMODE((ws / "localbatch").stat().st_mode) == 0o700
    status = control.status(ws)
    assert status["running"] and status["responding"] and status["pid"] == first.pid and status["uptime_seconds"] >= 0

    client = control.batch_client("acct", ws, retry_total=0)
    t0 = time.perf_counter()
    list(client.list_pools())
    assert time.perf_counter() - t0 >= 0.04  # injected latency from the workspace settings

    # a second server on the same workspace refuses to start (it would share the state)
    second = subprocess.run(
        [sys.executable, "-m", "batchfed_lab.localbatch", "serve", "--workspace", str(ws)], capture_output=True, timeout=30
    )
    assert second.returncode == 3

    out = subprocess.run(
        [sys.executable, "-m", "batchfed_lab.localbatch", "info", "--workspace", str(ws)],
        capture_output=True,
        timeout=30,
        text=True,
    )
    assert json.loads(out.stdout)["pid"] == first.pid

    assert control.stop(ws) is True
    assert not runtime.alive(first.pid)
    assert not control.discovery_path(ws).exists()
    assert control.info(ws) is None and control.stop(ws) is False
    with pytest.raises(LocalBatchNotRunning) as exc:
        control.account_url("acct", ws)
    assert exc.value.code == "LocalBatchNotRunning"


def test_stale_discovery_record_is_pruned(ws):
    dead = subprocess.Popen(["true"])
    dead.wait()
    runtime.write_json_atomic(
        control.discovery_path(ws),
        {
            "pid": dead.pid,
            "url": "http://127.0.0.1:1",
            "port": 1,
            "version": "0",
            "started": "2020-01-01T00:00:00Z",
            "workspace": str(ws),
            "key_file": "k",
            "log_file": "l",
        },
    )
    assert control.info(ws) is None
    assert not control.discovery_path(ws).exists()
    status = control.status(ws)
    assert status["running"] is False


def test_restart_requeues_running_tasks_and_forgets_nothing(ws):
    start_server(ws)  # strict limits: Azure's minimum intervals
    client = control.batch_client("acct", ws, retry_total=0)
    make_pool(client, dedicated=1, slots=3)
    make_job(client)
    client.create_task("job", bm.BatchTaskCreateOptions(id="quick", command_line="echo quick"))
    wait_tasks_done(client, "job", 1)
    client.create_tasks("job", [bm.BatchTaskCreateOptions(id=f"slow{i}", command_line=LONG_THEN_QUICK) for i in range(2)])
    wait_for(lambda: client.get_job_task_counts("job").task_counts.running == 2, what="the slow tasks to run")
    pids = [int(wait_for(lambda i=i: _pid(client, f"slow{i}"), what="a pid file")) for i in range(2)]
    client.create_task("job", bm.BatchTaskCreateOptions(id="queued", command_line="true", required_slots=3))

    assert control.stop(ws) is True
    assert not any(runtime.alive(p) for p in pids), "stopping localbatch must kill its task processes"

    start_server(ws)
    client = control.batch_client("acct", ws, retry_total=0)
    tasks = {t.id: t for t in wait_tasks_done(client, "job", 4)}
    assert tasks["quick"].execution_info.requeue_count == 0 and stdout_of(client, "job", "quick") == "quick\n"
    for i in range(2):
        t = tasks[f"slow{i}"]
        assert t.execution_info.result == bm.BatchTaskExecutionResult.SUCCESS
        assert (t.execution_info.requeue_count, t.execution_info.retry_count) == (1, 0)
        assert stdout_of(client, "job", f"slow{i}") == "rerun\n"
    assert tasks["queued"].execution_info.result == bm.BatchTaskExecutionResult.SUCCESS
    assert client.get_pool("pool").current_dedicated_nodes == 1

    # strict limits: Azure's minimum schedule recurrence (1 minute) and autoscale interval (5 minutes)
    with pytest.raises(HttpResponseError) as exc:
        client.create_job_schedule(
            bm.BatchJobScheduleCreateOptions(
                id="s",
                schedule=bm.BatchJobScheduleConfiguration(recurrence_interval=datetime.timedelta(seconds=30)),
                job_specification=bm.BatchJobSpecification(pool_info=bm.BatchPoolInfo(pool_id="pool")),
            )
        )
    assert exc.value.status_code == 400
    with pytest.raises(HttpResponseError) as exc:
        client.enable_pool_auto_scale(
            "pool",
            bm.BatchPoolEnableAutoScaleOptions(
                auto_scale_formula="$TargetDedicatedNodes=1;", auto_scale_evaluation_interval=datetime.timedelta(minutes=1)
            ),
        )
    assert exc.value.status_code == 400


def test_hard_killed_server_leaves_no_orphans(ws):
    info = start_server(ws)
    client = control.batch_client("acct", ws, retry_total=0)
    make_pool(client, dedicated=1)
    make_job(client)
    client.create_task("job", bm.BatchTaskCreateOptions(id="slow", command_line=LONG_THEN_QUICK))
    pid = int(wait_for(lambda: _pid(client, "slow"), what="the pid file"))

    os.kill(info.pid, signal.SIGKILL)  # no chance to clean up
    wait_for(lambda: not runtime.alive(info.pid), what="the server to die")
    assert runtime.alive(pid)  # its task lives on in its own session...
    control.stop(ws)  # ...until stop() kills the task groups the server recorded
    wait_for(lambda: not runtime.alive(pid), what="the orphan to be killed")

    start_server(ws)
    client = control.batch_client("acct", ws, retry_total=0)
    (task,) = wait_tasks_done(client, "job", 1)
    assert task.execution_info.requeue_count == 1 and stdout_of(client, "job", "slow") == "rerun\n"


def _pid(client, task_id: str) -> str | None:
    try:
        return stdout_of(client, "job", task_id, "wd/pid").strip() or None
    except HttpResponseError:
        return None
