"""Batch adapter over a loopback localbatch: call latency and pool snapshot cost.

Prints, from one run:
  * p50/p90 latency of single adapter calls (get_job, job_task_counts, get_task, a task list
    with a state filter, list_jobs) — target p50 ≤ 5 ms on loopback;
  * a snapshot of 100 pools in one account: HTTP requests by route and p50 ms, without and
    with active task counts (10 active jobs on those pools);
  * bulk add of 1,000 tasks: requests and ms.

Usage: ``.venv/bin/python bench/adapter.py [--pools 100] [--calls 300]``. Starts its own
localbatch in a temporary workspace and stops it (by pid) at the end.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from batchfed_lab.batch.adapter import BatchAccount
from batchfed_lab.config import load_pool
from batchfed_lab.config.jobs import TaskDefinition
from batchfed_lab.localbatch import control

TARGET_P50_MS = 5.0


def timed(fn: Callable[[], object], n: int) -> list[float]:
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t0) * 1000)
    return out


def pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[int(q) - 1] if len(values) > 1 else values[0]


def spec(pool_id: str, **extra: object):
    body = {"id": pool_id, "vm_size": "standard_d2_v3", "vm_count": {"dedicated": 1}, "location": "westeurope", **extra}
    return load_pool({"pool_specification": body}).pool_specification


def wait_for(probe: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if probe():
            return
        time.sleep(0.05)  # polling interval of a deadline-bounded wait
    raise SystemExit(f"timed out waiting for {what}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pools", type=int, default=100)
    parser.add_argument("--calls", type=int, default=300)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-adapter-") as ws:
        info = control.start(ws, relaxed_limits=True)
        try:
            met = run(info, ws, args.pools, args.calls)
        finally:
            control.stop(ws)
    return 0 if met else 1


def run(info: control.LocalBatchInfo, ws: str, n_pools: int, n_calls: int) -> bool:
    acct = BatchAccount(info.account_url("bench"), workspace=ws)
    print(f"localbatch {info.version} at {info.url} (latency injected: {info.latency_ms} ms)")

    # --- single-call latency -------------------------------------------------------------------
    acct.create_pool(spec("lat"))
    acct.create_job("lat-job", "lat")
    acct.add_tasks("lat-job", [TaskDefinition(id="t", command="true")])
    acct.create_job("ten-job", "lat")
    acct.add_tasks("ten-job", [TaskDefinition(id=f"t{i}", command="true") for i in range(10)])
    wait_for(lambda: len(acct.list_tasks("ten-job", state="completed")) == 10, "the 10 tasks to complete")
    calls = {
        "get_job": lambda: acct.get_job("lat-job"),
        "job_task_counts": lambda: acct.job_task_counts("lat-job"),
        "get_task": lambda: acct.get_task("lat-job", "t"),
        "list_tasks (1 task)": lambda: acct.list_tasks("lat-job"),
        "list_jobs": lambda: acct.list_jobs(),
        # not single-request latency: the SDK decodes each task (≈0.2 ms apiece here)
        "list_tasks (10 tasks, payload)": lambda: acct.list_tasks("ten-job", state="completed"),
        "snapshot_pool (2 requests)": lambda: acct.snapshot_pool("lat", active_tasks=False),
    }
    print(f"\nsingle calls ({n_calls} each)")
    print(f"  {'call':30} {'p50 ms':>8} {'p90 ms':>8}")
    worst = 0.0
    for name, fn in calls.items():
        timed(fn, 20)  # warm the connection pool
        values = timed(fn, n_calls)
        p50 = statistics.median(values)
        if "requests" not in name and "payload" not in name:
            worst = max(worst, p50)
        print(f"  {name:30} {p50:8.2f} {pct(values, 90):8.2f}")
    print(
        f"  worst single-request p50: {worst:.2f} ms (target ≤ {TARGET_P50_MS:g} ms: {'met' if worst <= TARGET_P50_MS else 'NOT met'})"
    )
    met = worst <= TARGET_P50_MS

    # --- snapshot of many pools ------------------------------------------------------------------
    acct.delete_pool("lat")
    acct.terminate_job("lat-job")
    for i in range(n_pools):
        acct.create_pool(spec(f"pool-{i:03d}", vm_count={"dedicated": 1 + i % 3}, task_slots_per_node=1 + i % 4))
    nodes = sum(1 + i % 3 for i in range(n_pools))
    wait_for(
        lambda: sum(s.dedicated.total for s in acct.snapshot_pools(active_tasks=False).values()) >= nodes, "the pools' nodes"
    )
    # 10 active jobs with backlog, on 10 different pools (autoscale pools with no nodes keep tasks active)
    formula = "$TargetDedicatedNodes = 0;"
    for j in range(10):
        pid = f"idle-{j}"
        acct.create_pool(
            spec(pid, vm_count={"dedicated": 0}, autoscale={"enabled": True, "formula": formula, "evaluation_interval": 60})
        )
        acct.create_job(f"job-{j}", pid)
        acct.add_tasks(f"job-{j}", [TaskDefinition(id=f"t{k}", command="true") for k in range(5)])
    total = n_pools + 10
    print(f"\nsnapshot of {total} pools in one account")
    for active in (False, True):
        acct.snapshot_pools(active_tasks=active)
        acct.reset_requests()
        values = timed(lambda: acct.snapshot_pools(active_tasks=active), 20)
        per_call = {k: v // 20 for k, v in acct.requests.items()}
        snaps = acct.snapshot_pools(active_tasks=active)
        assert len(snaps) == total
        label = "with active task counts" if active else "facts + node counts only"
        print(
            f"  {label:26} p50 {statistics.median(values):7.1f} ms   requests per snapshot: {sum(per_call.values())} {per_call}"
        )

    # --- bulk add ------------------------------------------------------------------------------
    acct.create_job("bulk", "idle-0")
    tasks = [TaskDefinition(id=f"b{i:05d}", command="true") for i in range(1000)]
    acct.reset_requests()
    t0 = time.perf_counter()
    report = acct.add_tasks("bulk", tasks)
    ms = (time.perf_counter() - t0) * 1000
    t0 = time.perf_counter()
    again = acct.add_tasks("bulk", tasks)
    ms_again = (time.perf_counter() - t0) * 1000
    print(
        f"\nbulk add of 1000 tasks: {report.requests} requests, {ms:.0f} ms ({report.summary()}); "
        f"resubmitted: {again.requests} requests, {ms_again:.0f} ms ({again.summary()})"
    )
    acct.close()
    return met


if __name__ == "__main__":
    sys.exit(main())
