"""A low-priority preemption storm: whenever tasks run on the low-priority pool, its nodes
are preempted (localbatch's admin call), again and again, while jobs keep arriving.

Preempted tasks must be requeued (``requeueCount``, not a retry) and every task must end
completed with exit code 0; actions that met a pool with no schedulable node are blocked
and placed once the nodes are back.
"""

from __future__ import annotations

import time
from pathlib import Path

from batchfed_lab.localbatch import control

from .common import Outcome, located_counts, running_stack, timed, wait_for

NAME = "preemption"
TITLE = "low-priority preemption storm"


def run(root: Path, short: bool = False) -> Outcome:
    jobs, tasks_per_job, storms = (10, 4, 8) if short else (60, 5, 40)

    def body(out: Outcome) -> None:
        fed = "storm"
        total = jobs * tasks_per_job
        out.figure("jobs x tasks", f"{jobs} x {tasks_per_job} (sleep 0.3 s each) on eus-lowpri (2 low-priority nodes x 2 slots)")
        with running_stack(root) as stack:
            stack.federation(fed, ["eus-lowpri"])
            stack.start_proxy()
            store = stack.client.store
            acct = stack.account("lab2")

            def lowpri_running() -> int:
                snap = next(p for p in acct.list_pools() if p.pool_id == "eus-lowpri")
                return snap.low_priority.running

            task = "{command: 'sleep 0.3; echo survived'}"
            constraints = "{pool: {low_priority_nodes: {exclusive: true}}}"

            def submit(first: int, last: int) -> None:
                body = "job_specifications:\n" + "".join(
                    f"- id: {fed}-{i:04d}\n  federation_constraints: {constraints}\n"
                    f"  tasks: [{', '.join([task] * tasks_per_job)}]\n"
                    for i in range(first, last)
                )
                stack.client.submit(fed, body)

            submitted = 0
            requeued: list[str] = []
            preempted_nodes = 0
            rounds = 0
            t0 = time.monotonic()
            for _r in range(storms):
                # jobs keep arriving during the storm
                if submitted < jobs:
                    n = min(jobs - submitted, max(1, jobs // storms + 1))
                    submit(submitted, submitted + n)
                    submitted += n
                # strike while something runs there
                try:
                    wait_for(lowpri_running, 30, "a task to run on the low-priority nodes")
                except AssertionError:
                    break  # nothing left to run
                res = control.preempt("lab2", "eus-lowpri", duration_seconds=0.3, workspace=stack.client.workspace)
                requeued += res["requeuedTasks"]
                preempted_nodes += len(res["preemptedNodes"])
                rounds += 1
            if submitted < jobs:
                submit(submitted, jobs)
            storm_s = time.monotonic() - t0
            wait_for(lambda: store.counts(fed).placed + store.counts(fed).failed >= jobs, 300, "every action to finish")
            counts = store.counts(fed)
            client = control.batch_client("lab2", stack.client.workspace)
            try:

                def snapshot() -> list:
                    return [t for j in client.list_jobs() if j.id.startswith(f"{fed}-") for t in client.list_tasks(j.id)]

                ok = True
                try:
                    wait_for(
                        lambda: (ts := snapshot()) and len(ts) == total and all(t.state == "completed" for t in ts),
                        300,
                        "every task to complete",
                    )
                except AssertionError:
                    ok = False
                tasks = snapshot()
            finally:
                client.close()
            done = sum(1 for t in tasks if t.state == "completed")
            exit0 = sum(1 for t in tasks if t.execution_info and t.execution_info.exit_code == 0)
            requeue_total = sum((t.execution_info.requeue_count or 0) for t in tasks if t.execution_info)
            retries = sum((t.execution_info.retry_count or 0) for t in tasks if t.execution_info)
            pools, _ = located_counts(stack, fed)
            blocked_ever = sum(1 for a in store.list_actions(fed) if a.attempts > 1)
            out.figure("preemption rounds", rounds)
            out.figure("nodes preempted", preempted_nodes)
            out.figure("tasks requeued (preempt answers)", len(requeued))
            out.figure("requeueCount total (localbatch)", requeue_total)
            out.figure("retryCount total", retries)
            out.figure("actions placed / failed", f"{counts.placed} / {counts.failed}")
            out.figure("actions that waited (more than one attempt)", blocked_ever)
            out.figure("tasks completed / exit 0", f"{done} / {exit0} of {total}")
            out.figure("storm (s)", storm_s)
            out.bound(f"the storm struck {storms} times", rounds == storms)
            out.bound("tasks were requeued", len(requeued) > 0 and requeue_total >= len(requeued))
            out.bound("preemption is not a retry (retryCount 0)", retries == 0)
            out.bound("every action placed", counts.placed == jobs and counts.failed == 0 and len(pools) == jobs)
            out.bound("every task completed with exit code 0", ok and done == exit0 == total)

    return timed(NAME, TITLE, body)
