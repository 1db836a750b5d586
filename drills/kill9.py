"""kill -9 the proxy again and again while several processes submit a stream of actions.

Figures are counted in localbatch (jobs and tasks that exist), not in the proxy's own
bookkeeping: placed = distinct job ids that exist, lost = submitted ids that do not,
duplicated = extra copies of a job (on a second pool) or of a task.
"""

from __future__ import annotations

import time
from pathlib import Path

from .common import Outcome, Submitters, located_counts, running_stack, timed, wait_for

NAME = "kill9"
TITLE = "kill -9 the proxy during a stream from concurrent submitter processes"


def run(root: Path, short: bool = False) -> Outcome:
    total, kills, submitters = (400, 3, 4) if short else (5000, 10, 4)

    def body(out: Outcome) -> None:
        fed = "crash"
        out.figure("actions", total)
        out.figure("submitter processes", submitters)
        with running_stack(root) as stack:
            stack.federation(fed, ["we-native", "eus-hpc", "eus-lowpri", "jp-custom"])
            proxy = stack.start_proxy()
            store = stack.client.store
            subs = Submitters(root, fed, fed, total, submitters)
            restarts: list[float] = []
            pending: list[int] = []  # actions not yet placed at each kill
            try:
                step = max(10, total // (kills + 1))
                for _ in range(kills):
                    # kill once more work was placed since the last restart: mid-stream, mid-action
                    base = store.counts(fed).placed
                    wait_for(
                        lambda: (
                            store.counts(fed).placed >= min(base + step, total)
                            or (not subs.running() and store.counts(fed).placed >= total)
                        ),
                        300,
                        "placements",
                    )
                    pending.append(total - store.counts(fed).placed)
                    stack.kill9(proxy)
                    t0 = time.monotonic()
                    proxy = stack.start_proxy()
                    restarts.append(time.monotonic() - t0)
                ids = subs.join()
            finally:
                subs.kill()
            out.figure("kills", len(restarts))
            out.figure("worst restart (s)", max(restarts) if restarts else 0.0)
            out.figure("unique ids returned", len(set(ids)))
            t_drain = time.monotonic()
            wait_for(lambda: store.counts(fed).placed + store.counts(fed).failed >= total, 600, f"all {total} actions to finish")
            out.figure("drain after the last kill (s)", time.monotonic() - t_drain)
            counts = store.counts(fed)
            pools, tasks = located_counts(stack, fed)
            lost = total - len(pools)
            dup_jobs = sum(n - 1 for n in pools.values())
            dup_tasks = sum(n - 1 for n in tasks.values())
            out.figure("placed (store)", counts.placed)
            out.figure("failed / queued / blocked (store)", f"{counts.failed} / {counts.queued} / {counts.blocked}")
            out.figure("placed (jobs in localbatch)", len(pools))
            out.figure("lost", lost)
            out.figure("duplicated jobs", dup_jobs)
            out.figure("duplicated tasks", dup_tasks)
            out.bound(f"every submit returned its id ({len(set(ids))} = {total})", len(set(ids)) == total == len(ids))
            out.bound(f"placed = all ({len(pools)} = {total})", len(pools) == total and counts.placed == total)
            out.bound("lost = 0", lost == 0 and counts.failed == 0)
            out.bound("duplicated = 0 (jobs and tasks)", dup_jobs == 0 and dup_tasks == 0)
            out.figure("actions pending at each kill", " ".join(map(str, pending)))
            out.bound(
                f"{kills} kills, each mid-stream (actions still pending)", len(restarts) == kills and min(pending, default=0) > 0
            )

    return timed(NAME, TITLE, body)
