"""Widget refresh cost for a 100-pool federation — target ≤ 100 ms per tick.

Prints, from one run:
  * widget side: ``PoolCapacity.refresh()`` against a fake client that returns 100 pool
    snapshots (node counts change every tick, so every tick re-renders and re-sends the
    table): ms per tick (p50 / p95), and the JSON encoding of the state update a frontend
    would receive (bytes, ms);
  * the static fallback (text/plain + text/html) of the same view;
  * end to end: the same refresh against a real localbatch account with 100 pools through
    the client (pool snapshots over REST included), ms per tick;
  * ``SubmissionView.refresh()`` for 50 placed jobs with their tasks (real stack).

Usage: ``.venv/bin/python bench/widgets.py [--pools 100] [--ticks 50]``. Starts its own
localbatch and proxy in a temporary workspace and stops them (by pid) at the end.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from batchfed_lab.client import connect
from batchfed_lab.scheduler.types import NodeCounts, PoolFacts, PoolSnapshot, VmSize
from batchfed_lab.widgets import PoolCapacity, SubmissionView

TARGET_MS = 100.0
REGIONS = ["westeurope", "eastus", "japaneast", "australiaeast", "brazilsouth"]


def pct(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100)[q - 1] if len(values) > 1 else values[0]


class FakeClient:
    """What PoolCapacity calls on a client, answering from memory: 100 pools whose node
    states shift every call, so the widget re-renders and re-sends each tick."""

    def __init__(self, pools: int):
        size = VmSize("standard_d4_v3", 4, 16384)
        self.facts = [
            PoolFacts(
                f"pool-{i:03d}",
                f"http://127.0.0.1:1/accounts/acct{i % 3}",
                f"acct{i % 3}",
                REGIONS[i % len(REGIONS)],
                "standard_d4_v3",
                size,
                task_slots_per_node=4,
                autoscale=i % 7 == 0,
                target_dedicated=4,
            )
            for i in range(pools)
        ]
        self.calls = 0

    def federations(self):
        return [SimpleNamespace(id="bench")]

    def pool_snapshots(self, federation_id: str):
        self.calls += 1
        k = self.calls
        return [
            PoolSnapshot(
                f,
                NodeCounts(idle=(i + k) % 3, running=2 - (i + k) % 3, other=1),
                NodeCounts(idle=(i * k) % 2, running=1, other=0),
                active_tasks=(i * 7 + k) % 11,
            )
            for i, f in enumerate(self.facts)
        ]


def timed_ticks(view, ticks: int) -> list[float]:
    out = []
    for _ in range(ticks):
        t0 = time.perf_counter()
        view.refresh()
        out.append((time.perf_counter() - t0) * 1000)
    return out


def widget_side(pools: int, ticks: int) -> float:
    view = PoolCapacity(FakeClient(pools), "bench", autostart=False)
    _ = view.widget  # build the ipywidgets tree: refresh() then sets its traits
    view.refresh()  # warm-up (imports, first render)
    ms = timed_ticks(view, ticks)
    body = view._body  # the trait a tick changes most: the table
    t0 = time.perf_counter()
    payload = json.dumps({"method": "update", "state": body.get_state(key="value")})
    enc_ms = (time.perf_counter() - t0) * 1000
    t0 = time.perf_counter()
    bundle = view._repr_mimebundle_()
    fallback_ms = (time.perf_counter() - t0) * 1000
    print(
        f"widget side, {pools} pools (fake client): refresh p50 {pct(ms, 50):.1f} ms, p95 {pct(ms, 95):.1f} ms "
        f"over {ticks} ticks; table update {len(payload) / 1024:.0f} KiB, JSON-encoded in {enc_ms:.1f} ms"
    )
    print(
        f"static fallback: text/plain {len(bundle['text/plain']) / 1024:.0f} KiB + text/html {len(bundle['text/html']) / 1024:.0f} KiB "
        f"in {fallback_ms:.1f} ms (includes one refresh)"
    )
    view.close()
    return pct(ms, 95)


def end_to_end(pools: int, ticks: int) -> tuple[float, float]:
    with tempfile.TemporaryDirectory(prefix="bench-widgets-") as tmp:
        client = connect(tmp)
        try:
            t0 = time.perf_counter()
            client.up()
            client.create_federation("bench")
            specs = [
                {
                    "pool_specification": {
                        "id": f"pool-{i:03d}",
                        "vm_size": "standard_d2_v3",
                        "location": REGIONS[i % len(REGIONS)],
                        "vm_count": {"dedicated": 1, "low_priority": i % 2},
                        "task_slots_per_node": 2,
                    }
                }
                for i in range(pools)
            ]
            client.add_pools("bench", pool_config=specs, account="bench", create=True)
            view = PoolCapacity(client, "bench", autostart=False)
            view.wait_steady(timeout=120)
            print(f"real stack: localbatch + proxy + {pools} pools ready in {time.perf_counter() - t0:.1f} s")
            _ = view.widget
            ms = timed_ticks(view, ticks)
            print(
                f"end to end, {pools} pools (client.pool_snapshots over REST + render + traits): "
                f"refresh p50 {pct(ms, 50):.1f} ms, p95 {pct(ms, 95):.1f} ms over {ticks} ticks"
            )
            view.close()

            jobs = "job_specifications:\n" + "".join(
                f"- id: job-{j:02d}\n  tasks:\n  - command: echo {j}\n  - command: echo {j}b\n" for j in range(50)
            )
            sub = client.submit("bench", jobs)
            sview = SubmissionView(sub, autostart=False)
            _ = sview.widget
            sview.wait(timeout=120)
            sms = timed_ticks(sview, 10)
            print(f"SubmissionView, 50 finished jobs (tasks counted once, then cached): refresh p50 {pct(sms, 50):.1f} ms")
            sview.close()
            return pct(ms, 50), pct(ms, 95)
        finally:
            client.down()
            client.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pools", type=int, default=100)
    ap.add_argument("--ticks", type=int, default=50)
    args = ap.parse_args()
    widget_p95 = widget_side(args.pools, args.ticks)
    _e2e_p50, e2e_p95 = end_to_end(args.pools, max(10, args.ticks // 2))
    print(
        f"target ≤ {TARGET_MS:.0f} ms per tick: widget side p95 {widget_p95:.1f} ms ({widget_p95 / TARGET_MS:.2f} of budget), "
        f"end to end p95 {e2e_p95:.1f} ms ({e2e_p95 / TARGET_MS:.2f} of budget)"
    )


if __name__ == "__main__":
    main()
