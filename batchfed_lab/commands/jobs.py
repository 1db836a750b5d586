"""``fed jobs …``, ``explain``, ``tasks``, ``output``: jobs in, their placement and what they ran."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError
from .params import Param
from .shape import Result, done, frame_result, table

if TYPE_CHECKING:
    from ..client import Client


# The columns the CLI prints; --raw and the DataFrames have them all.
PLACEMENT_TEXT = [
    "job_id",
    "submitter",
    "kind",
    "method",
    "unique_id",
    "state",
    "pool_id",
    "location",
    "enqueued",
    "latency_s",
    "reason",
]
LOCATION_TEXT = ["job_id", "submitter", "kind", "pool_id", "account", "location", "unique_id", "added", "terminated"]
BLOCKED_TEXT = ["job_id", "submitter", "unique_id", "state", "reason", "pool_id", "status", "verdict"]
VERDICT_TEXT = ["job_id", "pool_id", "location", "status", "verdict", "price_per_hour", "est_cost"]
RECURRENCE_TEXT = ["job_id", "state", "pool_id", "account", "location", "created"]
MOVE_TEXT = ["job_id", "move", "from_pool", "to_pool", "why", "when", "state", "moved_tasks"]
TASK_TEXT = ["task_id", "pool_id", "node_id", "state", "exit_code", "start_time", "end_time", "duration_s"]
OUTPUT_TEXT = ["task_id", "blob_path", "size", "modified"]

WAIT = Param(
    "wait",
    ("--wait",),
    kind="optional",
    const="placed",
    choices=("placed", "completed"),
    metavar="[placed|completed]",
    help="wait until every job is placed (alone, or 'placed': fails at once if no pool can take one), "
    "or until every task has completed ('completed': fails naming each failed task and why)",
)


def _jobs_source(a: SimpleNamespace) -> tuple[Any, str | None]:
    """The jobs to read: a ``%%fed`` cell, a positional FILE or ``--jobs FILE`` (one of them)."""
    given = [(v, n) for v, n in ((getattr(a, "cell", None), "<cell>"), (a.file, None), (a.jobs, None)) if v]
    if len(given) > 1:
        raise ConfigError("give the jobs once: a FILE, --jobs FILE or a %%fed cell")
    if not given:
        raise ConfigError("no jobs given: use --jobs FILE (or a FILE argument, or the body of a %%fed cell)")
    src, name = given[0]
    if name is None:
        src = Path(src)  # a command-line value is always a file name, never YAML text
    return src, name


def jobs_add(c: Client, a: SimpleNamespace) -> Result:
    src, name = _jobs_source(a)
    sub = c.submit(a.federation_id, src, pool_config=a.pool_config, name=name)
    if a.wait:
        sub.wait(timeout=a.timeout, until=a.wait)
    df = sub.status()
    from ..frames import frame_records

    return Result(sub, lambda: df[PLACEMENT_TEXT].to_string(index=False), lambda: frame_records(df), rich=True)


def task_logs(c: Client, a: SimpleNamespace) -> Result:
    streams = ("stdout",) if a.stdout_only else ("stdout", "stderr")
    if a.follow:
        return Result(None, "", {"logs": None}, stream=c.task_logs(a.federation_id, a.job_id, follow=True, streams=streams))
    text = c.task_logs(a.federation_id, a.job_id, streams=streams)
    return Result(text, str(text).rstrip("\n") or f"job {a.job_id}: no output yet", {"logs": str(text)}, rich=True)


def results(c: Client, a: SimpleNamespace) -> Result:
    df = c.outputs_frame(a.federation_id, a.job_id, download=a.download)
    empty = f"job {a.job_id} wrote no blobs through output_data"
    result = frame_result(df, OUTPUT_TEXT, empty)
    if a.download and len(df):
        return replace(result, render=lambda: f"{table(df, OUTPUT_TEXT, empty)}\ndownloaded {len(df)} blob(s) into {a.download}")
    return result


def jobs_list(c: Client, a: SimpleNamespace) -> Result:
    df = c.jobs_frame(
        a.federation_id,
        a.job_id,
        schedule_id=a.schedule_id,
        queued=a.queued,
        blocked=a.blocked,
        recurrences=a.recurrences,
        user=a.user,
        moves=a.moves,
    )
    if a.moves:
        return frame_result(df, MOVE_TEXT, "no moves")
    if a.recurrences:
        return frame_result(df, RECURRENCE_TEXT, f"job schedule {a.schedule_id} has no recurrence jobs yet")
    if a.queued:
        return frame_result(df, PLACEMENT_TEXT, "no queued actions")
    if a.blocked:
        return frame_result(df, BLOCKED_TEXT, "no blocked or failed actions")
    return frame_result(df, LOCATION_TEXT, "no placed jobs")


def removal(method: str) -> Callable[[Client, SimpleNamespace], Result]:
    def run(c: Client, a: SimpleNamespace) -> Result:
        call = c.terminate if method == "terminate" else c.delete
        res = call(
            a.federation_id,
            a.job_ids,
            schedule_ids=a.schedule_ids,
            all_jobs=a.all_jobs,
            all_schedules=a.all_schedules,
            force=a.force,
        )
        lines = [f"enqueued {x.method.value} {x.kind.value} {x.target_id}: {x.id}" for x in res.actions] or ["nothing enqueued"]
        data = {
            "unique_ids": res.unique_ids,
            "skipped": res.skipped,
            "actions": [{"job_id": x.target_id, "kind": x.kind.value, "unique_id": x.id} for x in res.actions],
        }
        return done("\n".join(lines), res, data, res.warnings)

    return run


def jobs_zap(c: Client, a: SimpleNamespace) -> Result:
    action = c.zap(a.federation_id, a.unique_id)
    data = {"unique_id": action.id, "job_id": action.target_id, "state": action.state.value}
    return done(f"zapped {action.method.value} {action.kind.value} {action.target_id} ({action.id})", action, data)


def explain(c: Client, a: SimpleNamespace) -> Result:
    from ..frames import frame_records, verdicts_frame

    src, name = _jobs_source(a)
    explanations = c.explain(a.federation_id, src, pool_config=a.pool_config, policy=a.policy, name=name)
    df = verdicts_frame(explanations)
    head = "\n".join(
        f"{e.job_id}: {'→ ' + e.pool_id if e.pool_id else 'would block'} ({e.decision.reason})"
        + "".join(f"\n  re-placement: {line}" for line in e.replacement)
        for e in explanations
    )

    def data() -> list[dict[str, Any]]:
        records = frame_records(df)
        return [
            {
                "job_id": e.job_id,
                "kind": e.kind,
                "pool_id": e.pool_id,
                "reason": e.decision.reason,
                "replacement": list(e.replacement),
                "verdicts": [r for r in records if r["job_id"] == e.job_id],
            }
            for e in explanations
        ]

    return Result(df, lambda: head + "\n" + table(df, VERDICT_TEXT, "the federation has no pools"), data, rich=True)


def tasks(c: Client, a: SimpleNamespace) -> Result:
    df = c.tasks_frame(a.federation_id, a.job_id, schedule_id=a.schedule_id)
    # why a task failed (usererror BlobNotFound …), not only that it did
    columns = [*TASK_TEXT, "result", "failure_category", "failure_code"]
    if a.schedule_id:  # rows of several recurrence jobs: say which
        return frame_result(df, ["job_id", *columns], f"job schedule {a.schedule_id} has no tasks yet")
    return frame_result(df, columns, f"job {a.job_id} has no tasks")


def output(c: Client, a: SimpleNamespace) -> Result:
    stream = "stderr" if a.stderr else "stdout"
    text = c.task_output(a.federation_id, a.job_id, a.task_id, stream, schedule_id=a.schedule_id, max_bytes=a.max_bytes)
    return Result(text, str(text).rstrip("\n"), {"output": str(text)}, rich=True)
