"""The frame of a federated job's tasks."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import pandas as pd

from ._base import (
    TASK_RESULTS,
    TASK_STATES,
    _frame,
)

if TYPE_CHECKING:
    from ..results import FederatedTask, OutputBlob


# --------------------------------------------------------------------------- tasks
TASK_COLUMNS: dict[str, Any] = {
    "job_id": "object",
    "task_id": "object",
    "pool_id": "object",
    "account": "object",
    "location": "object",
    "node_id": "object",
    "state": TASK_STATES,
    "exit_code": "Int64",
    "result": TASK_RESULTS,
    "retry_count": "int64",
    "start_time": "utc",
    "end_time": "utc",
    "duration_s": "float64",
    "failure_category": "object",
    "failure_code": "object",
    "failure_message": "object",
}


def _task_row(ft: FederatedTask) -> dict[str, Any]:
    """A task's row of :func:`tasks_frame` (a frame keeps the columns it lists)."""
    t = ft.task
    return {
        "job_id": ft.job_id,
        "task_id": t.id,
        "pool_id": ft.pool_id,
        "account": ft.account,
        "location": ft.location,
        "node_id": t.node_id,
        "state": t.state,
        "exit_code": t.exit_code,
        "result": t.result,
        "retry_count": t.retry_count,
        "start_time": t.start_time,
        "end_time": t.end_time,
        "duration_s": (t.end_time - t.start_time).total_seconds() if t.start_time and t.end_time else None,
        "failure_category": t.failure_category,
        "failure_code": t.failure_code,
        "failure_message": t.failure_message,
    }


def tasks_frame(tasks: Sequence[FederatedTask]) -> pd.DataFrame:
    """One row per task of a job on each pool the job lives on.

    ``job_id``, ``task_id``; where: ``pool_id``, ``account``, ``location``, ``node_id``;
    ``state`` (categorical: active / preparing / running / completed); ``exit_code``
    (Int64, ``<NA>`` until it ran); ``result`` (categorical: success / failure);
    ``retry_count``; ``start_time`` and ``end_time`` (UTC) and ``duration_s``;
    ``failure_category`` (Batch's: ``usererror`` / ``servererror``), ``failure_code`` and
    ``failure_message`` when it failed to run.
    """
    rows = [_task_row(ft) for ft in tasks]
    return _frame(rows, TASK_COLUMNS)


# --------------------------------------------------------------------------- results
RESULT_COLUMNS: dict[str, Any] = {
    "job_id": "object",
    "task_id": "object",
    "pool_id": "object",
    "node_id": "object",
    "state": TASK_STATES,
    "exit_code": "Int64",
    "result": TASK_RESULTS,
    "start_time": "utc",
    "end_time": "utc",
    "duration_s": "float64",
    "failure": "object",
    "outputs": "object",
    "output_note": "object",
}


def task_results_frame(
    tasks: Sequence[FederatedTask], outputs: Sequence[OutputBlob] = (), notes: Mapping[tuple[str, str], str] | None = None
) -> pd.DataFrame:
    """``Submission.result()``: one row per task — ``job_id``, ``task_id``, ``pool_id``,
    ``node_id``, ``state``, ``exit_code``, ``result``, ``start_time``, ``end_time``,
    ``duration_s``; ``failure`` (why it failed: Batch's failure code and message, or the exit
    code; None when it succeeded) and ``outputs`` (the ``container/blob`` paths it wrote
    through output_data, a list; blobs under a prefix several tasks share are not listed here,
    see :func:`outputs_frame`); ``output_note``: what Batch said about outputs it did not upload
    (``y.txt: matched no file: nothing uploaded``, an upload condition that did not hold, an
    upload error), keyed in ``notes`` by (job id, task id)."""
    from ..outcomes import failure_reason

    notes = notes or {}
    written: dict[tuple[str, str], list[str]] = {}
    for b in outputs:
        if b.task_id is not None:
            written.setdefault((b.job_id, b.task_id), []).append(b.path)
    rows = [
        {
            **_task_row(ft),
            "failure": failure_reason(ft.task),
            "outputs": sorted(written.get((ft.job_id, ft.task.id), [])),
            "output_note": notes.get((ft.job_id, ft.task.id)),
        }
        for ft in tasks
    ]
    return _frame(rows, RESULT_COLUMNS)


OUTPUT_COLUMNS: dict[str, Any] = {
    "job_id": "object",
    "task_id": "object",
    "storage": "object",
    "blob_path": "object",
    "size": "int64",
    "modified": "utc",
}


def outputs_frame(outputs: Sequence[OutputBlob]) -> pd.DataFrame:
    """``%fed results``: one row per blob a job's tasks wrote through output_data —
    ``job_id``, ``task_id`` (None under a prefix several tasks share), ``storage`` (the
    settings.yaml account name), ``blob_path`` (``container/blob``), ``size`` (bytes),
    ``modified`` (UTC)."""
    rows = [
        {
            "job_id": b.job_id,
            "task_id": b.task_id,
            "storage": b.storage,
            "blob_path": b.path,
            "size": b.size,
            "modified": b.modified,
        }
        for b in sorted(outputs, key=lambda b: (b.job_id, b.task_id or "", b.path))
    ]
    return _frame(rows, OUTPUT_COLUMNS)
