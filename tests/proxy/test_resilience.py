"""The proxy survives what daemons meet: kill -9 at any instant, a leader dying under a
standby, the process that started it going away, and suspend / resume.

Counts come from localbatch itself (jobs and tasks that really exist), not from the
proxy's own bookkeeping.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time

import pytest
from federation_stack import located_counts, wait_for

from batchfed_lab.errors import ConfigError
from batchfed_lab.proxy import lifecycle
from batchfed_lab.store import ActionState


@pytest.mark.slow
def test_kill_9_during_a_stream_loses_nothing_and_duplicates_nothing(stack):
    fed, total, kills = "crash", 500, 5
    stack.federation(fed, ["we-native", "eus-hpc", "eus-lowpri", "jp-custom"])
    proxy = stack.start_proxy()
    unique_ids: list[str] = []
    errors: list[BaseException] = []

    def submitter() -> None:
        try:
            for start in range(0, total, 10):
                body = "job_specifications:\n" + "".join(
                    f"- id: {fed}-{i:04d}\n  tasks: [{{command: 'true'}}]\n" for i in range(start, start + 10)
                )
                unique_ids.extend(stack.client.submit(fed, body).unique_ids)
                time.sleep(0.02)
        except BaseException as exc:  # surfaced by the main thread
            errors.append(exc)

    t = threading.Thread(target=submitter)
    t.start()
    for _k in range(kills):
        # kill once some work was placed since the last restart: mid-stream, mid-action
        placed_before = stack.client.store.counts(fed).placed
        wait_for(lambda: stack.client.store.counts(fed).placed >= placed_before + 15 or not t.is_alive(), 60, "placements")
        stack.kill9(proxy)
        proxy = stack.start_proxy()
    t.join(timeout=120)
    assert not errors, errors
    assert len(unique_ids) == total

    wait_for(lambda: stack.client.store.counts(fed).placed == total, 180, f"all {total} actions to be placed")
    counts = stack.client.store.counts(fed)
    assert (counts.queued, counts.blocked, counts.failed) == (0, 0, 0)
    pools, tasks = located_counts(stack, fed)
    lost = total - len(pools)
    duplicated_jobs = sum(n - 1 for n in pools.values())
    duplicated_tasks = sum(n - 1 for n in tasks.values())
    print(
        f"\nkill -9 drill: {kills} kills, {total} actions: placed {len(pools)}, lost {lost}, "
        f"duplicate jobs {duplicated_jobs}, duplicate tasks {duplicated_tasks}"
    )
    assert (lost, duplicated_jobs, duplicated_tasks) == (0, 0, 0)


def _recurrence_jobs(account, schedule_id: str) -> dict[str, str]:
    """Recurrence job id → its state, as localbatch has them."""
    return {j.id: j.state for j in account.list_jobs_from_schedule(schedule_id)}


def test_each_recurrence_gets_its_tasks_from_the_proxy_also_across_a_kill_9(stack):
    fed, group = "recur", ["a", "b"]
    stack.federation(fed, ["we-gpu"])
    account = stack.account("lab1")
    proxy = stack.start_proxy()
    stack.client.submit(
        fed,
        "job_specifications:\n- id: tick\n  recurrence:\n    schedule: {recurrence_interval: 3}\n"
        "  tasks:\n  - {id: a, command: echo $AZ_BATCH_JOB_ID}\n  - {id: b, command: 'true'}\n",
    ).wait(timeout=30)
    wait_for(lambda: _recurrence_jobs(account, "tick").get("tick:job-1") == "completed", 30, "the first recurrence to run")

    stack.kill9(proxy)  # seconds before the next recurrence is due

    def waiting() -> str | None:
        jobs = account.list_jobs_from_schedule("tick", state="active")
        return next((j.id for j in jobs if j.on_all_tasks_complete == "noaction"), None)

    # no proxy: Batch still creates the next recurrence's job, and nothing adds its tasks
    job_id = wait_for(waiting, 30, "the next recurrence's job")
    assert job_id != "tick:job-1" and account.task_ids(job_id) == set()

    stack.start_proxy()
    wait_for(lambda: _recurrence_jobs(account, "tick").get(job_id) == "completed", 30, "the new proxy to serve it")
    stack.client.terminate(fed, schedule_ids=["tick"])
    wait_for(lambda: stack.client.locations(fed, "tick")[0].terminated_at, 30, "the schedule to be terminated")
    n_last = int(job_id.rsplit("-", 1)[1])
    for n in range(1, n_last + 1):  # every recurrence up to the one after the kill: its group, once
        tasks = account.list_tasks(f"tick:job-{n}")
        assert sorted(t.id for t in tasks) == group and all(t.exit_code == 0 for t in tasks), f"tick:job-{n}"
        assert account.task_output(f"tick:job-{n}", "a") == f"tick:job-{n}\n"
    # the surfaces reach the recurrence jobs: by their own id, or through the schedule
    assert {t.task.id for t in stack.client.tasks(fed, job_id)} == set(group)
    by_schedule = stack.client.tasks(fed, schedule_id="tick")
    assert {(t.job_id, t.task.id) for t in by_schedule} >= {(f"tick:job-{n}", i) for n in (1, n_last) for i in group}
    assert stack.client.task_output(fed, None, "a", schedule_id="tick").startswith("tick:job-")
    listed = stack.client.jobs_frame(fed, schedule_id="tick", recurrences=True)
    assert {f"tick:job-{n}" for n in range(1, n_last + 1)} <= set(listed.job_id) and set(listed.pool_id) == {"we-gpu"}
    with pytest.raises(ConfigError, match="--recurrences needs --jobschedule-id"):
        stack.client.jobs_frame(fed, recurrences=True)
    lifecycle.stop(stack.client.workspace, all=True)


def test_ha_standby_takes_over_within_lease_plus_5_seconds(stack):
    fed = "ha"
    stack.federation(fed, ["we-native", "eus-hpc"])
    leader = stack.start_proxy()
    standby = stack.start_proxy(standby=True)
    assert standby.proxy_id != leader.proxy_id
    store = stack.client.store
    wait_for(
        lambda: (lease := store.get_lease("proxy-leader")) and lease.holder == leader.proxy_id, 10, "the first proxy to lead"
    )

    # exactly one processes: every action is placed by the leader
    sub = stack.client.submit(fed, "job_specifications:\n- id: ha-1\n  tasks: [{command: 'true'}]\n")
    sub.wait(timeout=30)
    killed_at = time.monotonic()
    stack.kill9(leader)
    wait_for(
        lambda: (lease := store.get_lease("proxy-leader")) and lease.holder == standby.proxy_id,
        3 + 5 + 2,
        "the standby to take over",
    )
    failover = time.monotonic() - killed_at
    lease_seconds = stack.client.workspace.settings.proxy.lease_seconds
    print(f"\nHA failover: {failover:.2f}s (lease {lease_seconds:g}s)")
    assert failover <= lease_seconds + 5

    after = stack.client.submit(fed, "job_specifications:\n- id: ha-2\n  tasks: [{command: 'true'}]\n")
    after.wait(timeout=30)
    assert after.actions()[0].state is ActionState.PLACED
    lifecycle.stop(stack.client.workspace, all=True)


def test_proxy_outlives_the_process_that_started_it(stack):
    lifecycle.stop(stack.client.workspace, all=True)
    code = f"import batchfed_lab.client as c; p, started = c.connect().proxy_start(config={str(stack.config)!r}); print(p.pid, started)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    pid = int(out.stdout.split()[0])
    assert lifecycle.pid_alive(pid), "the proxy died with its starter"
    stack.started.append(pid)
    stack.federation("orphan", ["we-gpu"])
    stack.client.submit("orphan", "job_specifications:\n- id: still-served\n  tasks: [{command: 'true'}]\n").wait(timeout=30)
    # starting again reports the running proxy instead of a second one
    again, started = lifecycle.start(stack.client.workspace)
    assert (again.pid, started) == (pid, False)


def test_suspend_holds_actions_and_resume_releases_them(stack):
    stack.federation("pause", ["jp-custom"])
    stack.start_proxy()
    c = stack.client
    c.proxy_suspend()
    try:
        sub = c.submit("pause", "job_specifications:\n- id: held\n  tasks: [{command: 'true'}]\n")
        # the proxy heartbeats as suspended; the action stays queued meanwhile
        wait_for(lambda: any(r["suspended"] for r in c.proxy_status()), 10, "the suspended status")
        time.sleep(0.5)  # a window in which a running proxy would have placed it
        assert sub.actions()[0].state is ActionState.QUEUED
    finally:
        c.proxy_resume()
    sub.wait(timeout=30)


def test_status_reports_leader_heartbeat_counters_and_log(stack):
    stack.start_proxy()
    rows = wait_for(
        lambda: [r for r in stack.client.proxy_status() if r["running"] and r["heartbeat_age_s"] is not None], 10, "a heartbeat"
    )
    row = rows[0]
    assert row["role"] in ("leader", "standby") and row["version"]
    assert row["heartbeat_age_s"] < 10 and row["uptime_s"] >= 0
    assert row["log"] and "fedproxy" in row["log"]
    assert "placed" in row["counters"]
    assert "started" in stack.client.proxy_logs(200)


def test_heartbeat_publishes_live_blackouts_for_explain_and_frames(stack):
    from batchfed_lab.proxy.daemon import ProxyDaemon

    d = ProxyDaemon(stack.client.store, stack.client.account, proxy_id="blackout-probe")
    d.capacity.black_out("http://x/accounts/a#busy", time.time() + 30)
    d.capacity.black_out("http://x/accounts/a#over", time.time() - 1)
    try:
        d._heartbeat()
        seen = stack.client.blackouts()
        assert "http://x/accounts/a#busy" in seen and "http://x/accounts/a#over" not in seen
    finally:
        stack.client.store.remove_proxy("blackout-probe")
