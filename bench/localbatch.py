"""Benchmark localbatch through the azure-batch SDK, as every caller uses it.

1. No-op tasks started per second on one 4-slot pool (1 node x 4 slots), measured from the
   tasks' recorded start times, plus end-to-end throughput (submit -> all completed).
   Target: >= 50 starts/s on 2 cores.
2. SDK call latency over loopback (get/list, one client, keep-alive). Target: p50 <= 5 ms.

It starts its own localbatch in a temporary workspace and stops it (by pid) at the end.
Usage: python bench/localbatch.py [--tasks N] [--calls N] [--latency-ms X]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from azure.batch import models as bm

from batchfed_lab.localbatch import control

TARGET_STARTS_PER_SECOND = 50.0
TARGET_P50_MS = 5.0


def _pool(client, pool_id: str, slots: int) -> None:
    client.create_pool(
        bm.BatchPoolCreateOptions(
            id=pool_id,
            vm_size="standard_d4s_v3",
            virtual_machine_configuration=bm.VirtualMachineConfiguration(
                image_reference=bm.BatchVmImageReference(
                    publisher="canonical", offer="0001-com-ubuntu-server-jammy", sku="22_04-lts"
                ),
                node_agent_sku_id="batch.node.ubuntu 22.04",
            ),
            target_dedicated_nodes=1,
            task_slots_per_node=slots,
        )
    )
    deadline = time.monotonic() + 30
    while client.get_pool(pool_id).current_dedicated_nodes != 1:
        if time.monotonic() > deadline:
            raise SystemExit("the pool never got its node")
        time.sleep(0.01)


def task_throughput(client, tasks: int) -> dict:
    _pool(client, "bench", 4)
    client.create_job(bm.BatchJobCreateOptions(id="noop", pool_info=bm.BatchPoolInfo(pool_id="bench")))
    t0 = time.perf_counter()
    client.create_tasks("noop", [bm.BatchTaskCreateOptions(id=f"t{i:05d}", command_line="true") for i in range(tasks)])
    submitted = time.perf_counter()
    while client.get_job_task_counts("noop").task_counts.completed < tasks:
        time.sleep(0.02)
    done = time.perf_counter()
    listed = list(client.list_tasks("noop", select=["id", "executionInfo"]))
    starts = sorted(t.execution_info.start_time.timestamp() for t in listed)
    ends = sorted(t.execution_info.end_time.timestamp() for t in listed)
    failed = sum(1 for t in listed if t.execution_info.result != bm.BatchTaskExecutionResult.SUCCESS)
    span = max(starts[-1] - starts[0], 1e-9)
    return {
        "tasks": tasks,
        "failed": failed,
        "submit_seconds": submitted - t0,
        "starts_per_second": (tasks - 1) / span,
        "end_to_end_per_second": tasks / (done - t0),
        "run_seconds": ends[-1] - starts[0],
    }


def call_latency(client, calls: int) -> dict[str, dict[str, float]]:
    ops = {
        "get_pool": lambda: client.get_pool("bench"),
        "get_job": lambda: client.get_job("noop"),
        "get_job_task_counts": lambda: client.get_job_task_counts("noop"),
        "list_pools": lambda: list(client.list_pools()),
        "list_jobs": lambda: list(client.list_jobs()),
        "list_pool_node_counts": lambda: list(client.list_pool_node_counts()),
        # as the adapter lists tasks: a state filter and $select of what it reads
        "list_tasks(page of 1, $select)": lambda: list(
            next(
                client.list_tasks(
                    "noop",
                    filter="state eq 'completed'",
                    select=["id", "state", "executionInfo", "nodeInfo", "creationTime"],
                    max_results=1,
                ).by_page()
            )
        ),
    }
    # informational, payload-bound: the SDK's own model decoding grows with every task document
    heavy = {
        "list_tasks(page of 10, full)": lambda: list(
            next(client.list_tasks("noop", filter="state eq 'completed'", max_results=10).by_page())
        ),
        "list_tasks(all, $select)": lambda: list(client.list_tasks("noop", select=["id", "state", "executionInfo"])),
    }
    out = {}
    for name, op in {**ops, **heavy}.items():
        op()  # warm the connection
        samples = []
        for _ in range(calls):
            t = time.perf_counter()
            op()
            samples.append((time.perf_counter() - t) * 1000)
        samples.sort()
        out[name] = {
            "p50": statistics.median(samples),
            "p95": samples[int(len(samples) * 0.95) - 1],
            "max": samples[-1],
            "no-op": name in ops,
        }
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=500)
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--latency-ms", type=float, default=0.0, help="inject this much latency per request")
    args = parser.parse_args()

    ws = Path(tempfile.mkdtemp(prefix="bench-localbatch-"))
    try:
        info = control.start(ws, latency_ms=args.latency_ms, allocation_delay_ms=0)
        print(f"localbatch pid {info.pid} at {info.url}  (cores: {os.cpu_count()}, injected latency {args.latency_ms:g} ms)")
        client = control.batch_client("bench", ws)
        tp = task_throughput(client, args.tasks)
        print(f"\nno-op tasks on a 1 node x 4 slot pool: {tp['tasks']} tasks ({tp['failed']} failed)")
        print(f"  submit (create_tasks):   {tp['submit_seconds']:.2f} s")
        print(
            f"  task starts per second:  {tp['starts_per_second']:.0f}/s   target >= {TARGET_STARTS_PER_SECOND:g}/s  "
            f"{'OK' if tp['starts_per_second'] >= TARGET_STARTS_PER_SECOND else 'BELOW TARGET'}"
        )
        print(f"  end to end (submit -> all completed): {tp['end_to_end_per_second']:.0f} tasks/s")
        lat = call_latency(client, args.calls)
        print(f"\nSDK call latency over loopback ({args.calls} calls each, ms):")
        print(f"  {'call':32s} {'p50':>7s} {'p95':>7s} {'max':>7s}")
        for name, row in lat.items():
            print(f"  {name:32s} {row['p50']:7.2f} {row['p95']:7.2f} {row['max']:7.2f}")
        worst = max(row["p50"] for row in lat.values() if row["no-op"])  # the full task listing is not a no-op call
        budget = TARGET_P50_MS + args.latency_ms
        print(f"  worst no-op p50 {worst:.2f} ms   target <= {budget:g} ms  {'OK' if worst <= budget else 'ABOVE TARGET'}")
        client.close()
        met = tp["starts_per_second"] >= TARGET_STARTS_PER_SECOND and worst <= budget
    finally:
        control.stop(ws)
        shutil.rmtree(ws, ignore_errors=True)
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
