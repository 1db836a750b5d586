"""Store benchmark: figures and ratios measured in one run (not a timed test).

1. enqueue → claim → complete round trips per second in one process
   (SQLite target ≥ 2,000/s; Azurite: reported, it is an emulator, not Azure);
2. head-of-queue latency (claim + release of the head, and ``head()``) with 100 vs
   100,000 queued actions on SQLite (target: ≤ 2× apart), on one job id and spread
   over 1,000 job ids;
3. how soon a waiting proxy sees an action enqueued through another connection.

Run: ``.venv/bin/python bench/store.py`` (``--quick`` for a smaller run).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from batchfed_lab.store import NewAction, Store
from batchfed_lab.store.sqlite import SqliteStore


def round_trips(store: Store, n: int) -> float:
    store.create_federation("rt", unique_job_ids=False)
    started = time.perf_counter()
    for i in range(n):
        store.enqueue("rt", [NewAction("job", "add", f"job-{i % 50}", {"tasks": [{"id": "t1", "command": "echo hi"}]})])
        claim = store.claim("rt", "bench")
        store.mark_placed(claim)
    return n / (time.perf_counter() - started)


def head_latency(path: Path, queued: int, targets: int, samples: int) -> tuple[float, float]:
    """Median seconds of (claim + release of a head) and of ``head()`` with ``queued`` waiting."""
    store = SqliteStore(path)
    store.create_federation("h", unique_job_ids=False)
    batch = [NewAction("job", "terminate", f"job-{i % targets}", {"i": i}) for i in range(queued)]
    for i in range(0, queued, 20_000):
        store.enqueue("h", batch[i : i + 20_000])
    claim_times, head_times = [], []
    for i in range(samples):
        t0 = time.perf_counter()
        claim = store.claim("h", "bench", ttl=60)
        store.release(claim)  # the queue stays at the same length
        t1 = time.perf_counter()
        store.head("h", f"job-{i % targets}")
        t2 = time.perf_counter()
        claim_times.append(t1 - t0)
        head_times.append(t2 - t1)
    store.close()
    return statistics.median(claim_times), statistics.median(head_times)


def wake_latency(path: Path, rounds: int) -> list[float]:
    """A waiter on one connection, an enqueuer on another (as in another process)."""
    waiter, writer = SqliteStore(path), SqliteStore(path)
    writer.create_federation("w")
    out = []
    for _ in range(rounds):
        marks = waiter.change_marks()
        woke: list[float] = []
        ready = threading.Event()

        def wait(marks=marks, woke=woke, ready=ready) -> None:
            ready.set()
            if waiter.wait_for_change(marks, timeout=5) != marks:
                woke.append(time.perf_counter())

        t = threading.Thread(target=wait)
        t.start()
        ready.wait(5)
        time.sleep(0.005)  # let the waiter settle into its poll loop (a measurement, not a handshake)
        writer.enqueue("w", [NewAction("job", "terminate", "probe", {})])
        committed = time.perf_counter()
        t.join(10)
        out.append(max(0.0, woke[0] - committed) if woke else float("inf"))
    waiter.close()
    writer.close()
    return out


def azurite_round_trips(n: int) -> str:
    from batchfed_lab.errors import StoreError
    from batchfed_lab.store.azure import AzureStore
    from batchfed_lab.store.emulator import Azurite

    try:
        az = Azurite.start()
    except StoreError as exc:
        return f"not measured ({exc})"
    try:
        store = AzureStore.from_connection_string(az.connection_string, prefix="bench" + uuid.uuid4().hex[:8], retries=1)
        rate = round_trips(store, n)
        store.close()
        return f"{rate:,.0f}/s"
    finally:
        az.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller counts (a smoke run)")
    args = parser.parse_args()
    n_rt, n_az, samples, big = (500, 50, 300, 20_000) if args.quick else (5_000, 300, 2_000, 100_000)

    with tempfile.TemporaryDirectory(prefix="bench-store-") as tmp:
        root = Path(tmp)
        store = SqliteStore(root / "rt.sqlite")
        rate = round_trips(store, n_rt)
        store.close()
        met = rate >= 2000
        print(
            f"SQLite   enqueue→claim→complete: {rate:,.0f} round trips/s over {n_rt:,} (target ≥ 2,000/s: {'met' if rate >= 2000 else 'MISSED'})"
        )
        print(f"Azurite  enqueue→claim→complete: {azurite_round_trips(n_az)} over {n_az:,} (emulator on this machine, not Azure)")

        for targets in (1, 1_000):
            small = head_latency(root / f"small-{targets}.sqlite", 100 if targets == 1 else 1_000, targets, samples)
            large = head_latency(root / f"large-{targets}.sqlite", big, targets, samples)
            shape = "one job id" if targets == 1 else f"{targets:,} job ids"
            for what, a, b in (("claim+release of the head", small[0], large[0]), ("head()", small[1], large[1])):
                ratio = b / a
                met = met and ratio <= 2
                print(
                    f"SQLite   {what:<26} {shape:<14} {100 if targets == 1 else 1_000:>6,} queued: {a * 1e6:7.1f} µs   "
                    f"{big:,} queued: {b * 1e6:7.1f} µs   ratio {ratio:4.2f}× (target ≤ 2×: {'met' if ratio <= 2 else 'MISSED'})"
                )

        wakes = sorted(wake_latency(root / "wake.sqlite", 50 if not args.quick else 10))
        print(
            f"SQLite   new action seen by a waiting proxy: median {statistics.median(wakes) * 1e3:.2f} ms, "
            f"p90 {wakes[int(len(wakes) * 0.9) - 1] * 1e3:.2f} ms (target ~10 ms)"
        )
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
