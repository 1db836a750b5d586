"""The user surfaces on a real stack: ``%fed pools`` and ``%%fed submit`` in an IPython shell,
and the same through ``batchfed`` (click's runner).

Prints, from one run:
  * ``%fed pools`` on a federation of 100 pools (2 accounts, 4 locations, 10 placed jobs of 4 tasks so the
    active-task count has work to do): first call (it imports pandas when the kernel has not yet)
    and p50/p90 of the next — target ≤ 200 ms;
  * ``%%fed submit`` of one job with 1,000 explicit tasks, and of a 1,000-task parametric sweep:
    time until the magic returns (validated and enqueued; not placed) — target ≤ 1 s;
  * the CLI equivalents (``fed pools --raw``, ``fed jobs add``) in-process, for comparison.

The submissions are placed while the script goes on (6,000 short tasks on two cores), so
what is measured after them runs on a busy machine.

Usage: ``.venv/bin/python bench/surfaces.py [--pools 100] [--tasks 1000] [--repeat 10]``. Builds
its own stack (tests/stack.py) in a temporary workspace and stops it by pid at the end.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from stack import embedded_stack, job_yaml, many_pools  # noqa: E402

POOLS_TARGET_MS = 200.0
SUBMIT_TARGET_MS = 1000.0


def run_ms(fn: Callable[[], object], n: int = 1) -> list[float]:
    """Milliseconds of ``n`` calls of ``fn``."""
    times = []
    for _ in range(n):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return times


def p(values: list[float], q: int) -> float:
    """The ``q``-th percentile (the value itself for a single run)."""
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] if len(values) > 1 else values[0]


def explicit_tasks(job_id: str, n: int) -> str:
    return "job_specifications:\n- id: " + job_id + "\n  tasks:\n" + "".join(f"  - command: echo task {i}\n" for i in range(n))


def sweep(job_id: str, n: int) -> str:
    return (
        f"job_specifications:\n- id: {job_id}\n  tasks:\n  - command: echo {{0}}\n"
        f"    task_factory: {{parametric_sweep: {{product: [{{start: 0, stop: {n}}}]}}}}\n"
    )


def verdict(ms: float, target: float) -> str:
    return f"{'OK ' if ms <= target else 'OVER'} (target ≤ {target:g} ms)"


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pools", type=int, default=100)
    ap.add_argument("--tasks", type=int, default=1000)
    ap.add_argument("--repeat", type=int, default=10)
    args = ap.parse_args()

    from click.testing import CliRunner
    from IPython.core.interactiveshell import InteractiveShell
    from traitlets.config import Config

    from batchfed_lab.cli import main as cli

    pools = many_pools(args.pools)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp, embedded_stack(Path(tmp) / "ws", pools=pools, federations={"bench": None}) as s:
        print(f"stack with {len(pools)} pools over {len(s.urls)} accounts up in {time.perf_counter() - t0:.1f} s")
        for i in range(10):
            s.client.submit("bench", job_yaml(f"busy-{i}", "sleep 60", tasks=4)).wait(30)  # 2 run, 2 wait per pool

        cfg = Config()
        cfg.HistoryManager.hist_file = ":memory:"
        ip = InteractiveShell.instance(config=cfg)
        ip.run_line_magic("load_ext", "batchfed_lab")

        first = run_ms(lambda: ip.run_line_magic("fed", "pools bench"), 1)[0]
        runs = run_ms(lambda: ip.run_line_magic("fed", "pools bench"), args.repeat)
        df = ip.run_line_magic("fed", "pools bench")
        print(f"\n%fed pools bench ({len(df)} rows, {int(df['active_tasks'].sum())} active tasks)")
        print(
            f"  first {first:7.1f} ms   p50 {p(runs, 50):7.1f} ms   p90 {p(runs, 90):7.1f} ms   {verdict(p(runs, 50), POOLS_TARGET_MS)}"
        )

        runner = CliRunner()
        env = {"BATCHFED_HOME": str(s.root)}
        cli_pools = run_ms(lambda: runner.invoke(cli, ["fed", "pools", "bench", "--raw"], env=env), args.repeat)
        print(f"  the CLI in-process, fed pools bench --raw: p50 {p(cli_pools, 50):7.1f} ms (a new store connection per command)")
        print(f"\n%%fed submit bench: one job with {args.tasks} tasks (returns once validated and enqueued)")
        for label, make in (("explicit tasks", explicit_tasks), ("parametric sweep", sweep)):
            times = []
            for i in range(3):
                body = make(f"{label.split()[0]}-{i}", args.tasks)
                times += run_ms(lambda body=body: ip.run_cell_magic("fed", "submit bench", body), 1)
            print(
                f"  {label:17s} best {min(times):7.1f} ms   worst {max(times):7.1f} ms   {verdict(max(times), SUBMIT_TARGET_MS)}"
            )

        jobs = Path(tmp) / "jobs.yaml"
        jobs.write_text(explicit_tasks("cli-job", args.tasks))
        cli_submit = run_ms(lambda: runner.invoke(cli, ["fed", "jobs", "add", "bench", str(jobs)], env=env), 1)
        print(f"  the CLI in-process, fed jobs add bench FILE: {cli_submit[0]:7.1f} ms")
        InteractiveShell.clear_instance()
    return 0


if __name__ == "__main__":
    sys.exit(main())
