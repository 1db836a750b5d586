"""localbatch killed (-9) and restarted while jobs are being placed and tasks run.

The restart is the ordinary one (``control.start`` without a port, as ``batchfed up``
does). Afterwards every submitted task must exist and complete with exit code 0: a task
that was running when the server died is requeued and run again, a task that was queued
is still there, and the proxy carries on with the actions it had not placed yet.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from batchfed_lab.localbatch import control

from .common import Outcome, located_counts, running_stack, timed, wait_for

NAME = "localbatch_restart"
TITLE = "localbatch killed and restarted mid-run"


def run(root: Path, short: bool = False) -> Outcome:
    jobs, tasks_per_job, kills, min_down = (60, 2, 1, 3.0) if short else (400, 3, 3, 10.0)

    def body(out: Outcome) -> None:
        fed = "lbr"
        total_tasks = jobs * tasks_per_job
        out.figure("jobs x tasks", f"{jobs} x {tasks_per_job}")
        with running_stack(root) as stack:
            stack.federation(fed, ["we-native", "eus-hpc", "eus-lowpri", "jp-custom", "jp-auto"])
            stack.start_proxy()
            store = stack.client.store
            ws = stack.client.workspace
            task = "{command: 'sleep 0.2; echo done'}"
            submitted = 0

            def submit(n: int) -> None:
                nonlocal submitted
                body = "job_specifications:\n" + "".join(
                    f"- id: {fed}-{i:04d}\n  tasks: [{', '.join([task] * tasks_per_job)}]\n"
                    for i in range(submitted, submitted + n)
                )
                stack.client.submit(fed, body)
                submitted += n

            for _ in range(0, jobs, 10):
                submit(10)
            outages: list[float] = []
            restarts: list[float] = []
            ports: list[int] = []
            running_at_kill: list[int] = []
            for k in range(kills):
                # kill while tasks run and actions are still being placed
                target = (k + 1) * jobs // (kills + 2)
                wait_for(lambda: store.counts(fed).placed >= target, 120, f"{target} placements")
                rec = control.info(ws)
                assert rec is not None
                ports.append(rec.port)
                running_at_kill.append(_running_tasks(stack, fed))
                met = _unreachable_lines(ws)
                os.kill(rec.pid, signal.SIGKILL)
                down = time.monotonic()
                wait_for(lambda: not _alive(rec.pid), 10, "localbatch to die")
                # new work during the outage: the proxy must call Batch even if it had placed
                # everything before the kill
                submit(10)
                # stay down until the proxy has met the outage (its Batch calls found nobody
                # listening and it said so), so recovery is really exercised
                # and at least `min_down` s: longer than a few retries, so an outage that outlasts
                # them must not fail actions
                wait_for(
                    lambda: _unreachable_lines(ws) > met and time.monotonic() - down >= min_down,
                    60,
                    "the proxy to meet the outage",
                )
                t0 = time.monotonic()
                after = control.start(ws, allocation_delay_ms=50, relaxed_limits=True)
                outages.append(time.monotonic() - down)
                restarts.append(time.monotonic() - t0)
                ports.append(after.port)
            total_tasks = submitted * tasks_per_job
            out.figure("jobs submitted (with 10 during each outage)", submitted)
            wait_for(lambda: store.counts(fed).placed + store.counts(fed).failed >= submitted, 300, "every action to finish")
            counts = store.counts(fed)

            def all_done() -> bool:
                return _task_states(stack, fed).get("completed", 0) >= total_tasks

            t_done = time.monotonic()
            ok_done = True
            try:
                wait_for(all_done, 300, "every task to complete")
            except AssertionError:
                ok_done = False
            states = _task_states(stack, fed)
            exits = _exit_codes(stack, fed)
            pools, tasks = located_counts(stack, fed)
            requeued = _requeued(stack, fed)
            out.figure("kills", kills)
            out.figure("tasks running at each kill", " ".join(map(str, running_at_kill)))
            out.figure("outage (s)", " ".join(f"{x:.2f}" for x in outages))
            out.figure("restart time (s)", " ".join(f"{x:.2f}" for x in restarts))
            out.figure("ports before/after", " → ".join(map(str, ports)))
            out.figure("actions placed / failed", f"{counts.placed} / {counts.failed}")
            out.figure("tasks in localbatch", sum(tasks.values()))
            out.figure("task states", ", ".join(f"{k} {v}" for k, v in sorted(states.items())))
            out.figure("tasks requeued by the restart", requeued)
            out.figure("exit codes", ", ".join(f"{k}: {v}" for k, v in sorted(exits.items(), key=str)))
            out.figure("time to complete after the last restart (s)", time.monotonic() - t_done)
            out.bound("every action placed, none failed", counts.placed == submitted and counts.failed == 0)
            out.bound(f"no task forgotten: {sum(tasks.values())} of {total_tasks} exist", sum(tasks.values()) == total_tasks)
            out.bound("every task completed with exit code 0", ok_done and exits == {0: total_tasks})
            out.bound("no duplicated job", sum(n - 1 for n in pools.values()) == 0)
            out.bound("tasks were running at each kill", min(running_at_kill) > 0)

    return timed(NAME, TITLE, body)


def _unreachable_lines(ws) -> int:  # type: ignore[no-untyped-def]
    """Lines of the proxy logs that report a Batch service not answering."""
    return sum(p.read_text(errors="replace").count("unreachable") for p in ws.logs_dir.glob("fedproxy-*.log"))


def _alive(pid: int) -> bool:
    from batchfed_lab.runtime import alive

    return alive(pid)


def _all_tasks(stack, fed: str):  # type: ignore[no-untyped-def]
    for account in stack.urls:
        acct = stack.account(account)
        for job in acct.list_jobs():
            if job.id.startswith(f"{fed}-"):
                yield from acct.list_tasks(job.id)


def _task_states(stack, fed: str) -> dict[str, int]:  # type: ignore[no-untyped-def]
    states: dict[str, int] = {}
    for t in _all_tasks(stack, fed):
        states[t.state] = states.get(t.state, 0) + 1
    return states


def _running_tasks(stack, fed: str) -> int:  # type: ignore[no-untyped-def]
    return _task_states(stack, fed).get("running", 0)


def _exit_codes(stack, fed: str) -> dict[int | None, int]:  # type: ignore[no-untyped-def]
    codes: dict[int | None, int] = {}
    for t in _all_tasks(stack, fed):
        codes[t.exit_code] = codes.get(t.exit_code, 0) + 1
    return codes


def _requeued(stack, fed: str) -> int:  # type: ignore[no-untyped-def]
    """Sum of requeueCount over the federation's tasks (read with the SDK: the adapter's
    TaskInfo does not carry it)."""
    n = 0
    for account in stack.urls:
        client = control.batch_client(account, stack.client.workspace)
        try:
            for job in client.list_jobs():
                if job.id.startswith(f"{fed}-"):
                    for t in client.list_tasks(job.id):
                        n += (t.execution_info.requeue_count or 0) if t.execution_info else 0
        finally:
            client.close()
    return n
