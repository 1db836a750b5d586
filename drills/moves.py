"""Re-placement under a preemption storm, with kill -9 of the proxy in the middle of it.

Jobs arrive on a low-priority pool (``eus-lowpri``: 2 nodes x 2 slots) and its nodes are
preempted every two seconds while anything runs there. A job whose task was preempted twice
in a row moves (``retry_in_place: 1``; the default waits for the third) and, after that many
preemptions, asks for dedicated nodes (``prefer: dedicated``), so it goes to a dedicated pool
of the other account.
Meanwhile the proxy is killed with SIGKILL and restarted several times: a move caught half
way must be finished by the next proxy without losing or repeating work.

Counted in localbatch, not in the proxy's bookkeeping: every task of every job completed
with exit code 0 exactly once over all pools (a task cut short by a preemption or a move
does not complete; one that completed is never run again).
"""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

from batchfed_lab.localbatch import control
from batchfed_lab.store import ActionState

from .common import Outcome, running_stack, timed, wait_for

NAME = "moves"
TITLE = "moves off a preempted low-priority pool, proxy killed -9 meanwhile"

FEDERATION = """\
federation:
  proxy_options:
    polling_interval: {federations: 5, actions: 1, recurrences: 5, moves: 0.3}
    logging: {level: info}
    scheduling:
      after_success: {blackout_interval: 0, evaluate_autoscale: false}
"""
TASK_SECONDS = 2.5  # longer than the strike period: a task preempted twice in a row moves
TASK = f"{{command: 'sleep {TASK_SECONDS}; echo survived'}}"
RULES = "{preempted: {retry_in_place: 1, prefer: dedicated, prefer_after: 2}}"
CONSTRAINTS = "{pool: {low_priority_nodes: {exclusive: true}}, replacement: " + RULES + "}"


def _body(fed: str, first: int, last: int, tasks_per_job: int) -> str:
    return "job_specifications:\n" + "".join(
        f"- id: {fed}-{i:04d}\n  federation_constraints: {CONSTRAINTS}\n  tasks: [{', '.join([TASK] * tasks_per_job)}]\n"
        for i in range(first, last)
    )


def run(root: Path, short: bool = False) -> Outcome:
    jobs, tasks_per_job, kills = (16, 1, 1) if short else (200, 1, 3)
    period = 2.0  # at most one strike per period, while tasks run there
    batches = 2 if short else 10

    def body(out: Outcome) -> None:
        fed = "moving"
        total = jobs * tasks_per_job
        out.figure("jobs x tasks", f"{jobs} x {tasks_per_job} (sleep {TASK_SECONDS} s each), first on eus-lowpri only")
        out.figure("strike period (s)", period)
        with running_stack(root, federation_yaml=FEDERATION) as stack:
            stack.federation(fed, ["eus-lowpri", "we-native", "eus-hpc"])
            proxy = stack.start_proxy()
            store, ws = stack.client.store, stack.client.workspace
            lab2 = stack.account("lab2")

            def lowpri_running() -> bool:
                snap = next(p for p in lab2.list_pools() if p.pool_id == "eus-lowpri")
                return snap.low_priority.running > 0

            def finished() -> bool:
                c = store.counts(fed)
                return c.queued + c.blocked == 0 and _completions(stack, fed)[1] >= total

            strikes = submitted = killed = 0
            per_batch = -(-jobs // batches)
            kill_after = {max(1, (k + 1) * batches // (kills + 1)) for k in range(kills)}  # after these batches
            t0 = time.monotonic()
            next_batch = next_strike = next_check = t0
            done = False
            while not done and time.monotonic() - t0 < (180 if short else 1200):
                now = time.monotonic()
                if submitted < jobs and now >= next_batch:
                    n = min(jobs - submitted, per_batch)
                    stack.client.submit(fed, _body(fed, submitted, submitted + n, tasks_per_job))
                    submitted += n
                    next_batch = now + 2 * period
                    if -(-submitted // per_batch) in kill_after and killed < kills:
                        stack.kill9(proxy)
                        proxy = stack.start_proxy()
                        killed += 1
                if now >= next_strike and lowpri_running():
                    control.preempt("lab2", "eus-lowpri", duration_seconds=0.2, workspace=ws)
                    strikes += 1
                    next_strike = now + period
                if submitted == jobs and now >= next_check:
                    done, next_check = finished(), now + 2.0
                time.sleep(0.1)  # the storm's pace, not a synchronisation: the loop waits on finished()
            storm_s = time.monotonic() - t0
            wait_for(finished, 120, "every job to finish")
            _report(out, stack, fed, total, strikes, (killed, kills), storm_s)

    return timed(NAME, TITLE, body)


def _report(out: Outcome, stack, fed: str, total: int, strikes: int, kills: tuple[int, int], storm_s: float) -> None:  # type: ignore[no-untyped-def]
    """The figures, counted in localbatch and the store, and the bounds."""
    store = stack.client.store
    runs, done_ok = _completions(stack, fed)
    moves = store.list_moves(fed)
    placed_moves = [m for m in moves if m.state is ActionState.PLACED]
    to_dedicated = sum(1 for m in placed_moves if m.payload["move"].get("prefer_dedicated"))
    twice = sum(1 for n in runs.values() if n > 1)
    counts = store.counts(fed)
    killed, asked = kills
    out.figure("preemption strikes", strikes)
    out.figure("proxy kills (-9)", killed)
    out.figure("moves queued / placed", f"{len(moves)} / {len(placed_moves)}")
    out.figure("moves asking for dedicated nodes", to_dedicated)
    out.figure("actions placed / failed", f"{counts.placed} / {counts.failed}")
    out.figure("tasks completed (exit 0) / expected", f"{done_ok} / {total}")
    out.figure("tasks completed twice", twice)
    out.figure("storm (s)", storm_s)
    out.bound(f"the storm struck ({strikes} strikes) and the proxy was killed {asked} times", strikes > 0 and killed == asked)
    out.bound("jobs moved (moves counted)", len(placed_moves) > 0)
    out.bound("every move placed, none failed", len(placed_moves) == len(moves) and counts.failed == 0)
    out.bound(f"every task completed with exit code 0 ({done_ok} = {total})", done_ok == total)
    out.bound("0 tasks completed twice", twice == 0)


def _completions(stack, fed: str) -> tuple[Counter[tuple[str, str]], int]:  # type: ignore[no-untyped-def]
    """(successful completions per (job, task) over every pool, how many tasks completed once or more)."""
    runs: Counter[tuple[str, str]] = Counter()
    for account in stack.urls:
        acct = stack.account(account)
        for job in acct.list_jobs():
            if not job.id.startswith(f"{fed}-"):
                continue
            for t in acct.list_tasks(job.id):
                if t.state == "completed" and t.exit_code == 0 and not t.failure_code:
                    runs[(job.id, t.id)] += 1
    return runs, len(runs)
