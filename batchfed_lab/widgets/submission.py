"""``SubmissionView``: where the actions of one submission went — per action its state,
pool, region and submit → placed latency; per placed job a task progress bar — updated
live until every action is settled and every placed job's tasks have finished."""

from __future__ import annotations

import threading
import time
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

from . import _html as h
from ._live import LiveView, _plain

if TYPE_CHECKING:
    import pandas as pd

    from ..results import Submission

__all__ = ["SubmissionView"]

TERMINAL = {"placed", "done", "failed", "zapped"}
MAX_ROWS = 50  # widget rows with a progress bar; beyond that the table alone (one HTML trait)


class SubmissionView(LiveView):
    """Watch a :class:`~batchfed_lab.client.Submission` (what ``%%fed submit`` returns).

    ``frame()`` has one row per action: the placement columns of ``Submission.status()``
    plus ``tasks``, ``tasks_running``, ``tasks_completed``, ``tasks_failed`` (nullable: no
    count for job schedules and for actions that are not placed). :meth:`wait` blocks
    until everything is placed and finished, in any mode.
    """

    kind = "submission"

    def __init__(self, submission: Submission, *, interval: float = 1.0, tasks: bool = True, autostart: bool = True):
        super().__init__(interval=interval, autostart=autostart)
        self.submission = submission
        self.client = submission.client
        self.with_tasks = tasks
        self._final_tasks: dict[str, tuple[int, int, int, int]] = {}  # job id → counts once all completed

    # -- model ---------------------------------------------------------------------------
    def _task_counts(self, job_id: str) -> tuple[int, int, int, int] | None:
        if job_id in self._final_tasks:
            return self._final_tasks[job_id]
        from ..errors import BatchfedError

        try:
            tasks = self.client.tasks(self.submission.federation_id, job_id)
        except BatchfedError:  # not placed yet, or the pool does not answer: counted next tick
            return None
        total = len(tasks)
        running = sum(1 for t in tasks if t.task.state in ("running", "preparing"))
        completed = sum(1 for t in tasks if t.task.state == "completed")
        failed = sum(1 for t in tasks if t.task.state == "completed" and t.task.result == "failure")
        counts = (total, running, completed, failed)
        if total and completed == total:
            self._final_tasks[job_id] = counts
        return counts

    def _fetch(self) -> Any:
        df = self.submission.status()
        counts: dict[str, tuple[int, int, int, int] | None] = {}
        if self.with_tasks:
            for row in df.itertuples(index=False):
                if row.kind == "job" and row.method == "add" and row.state == "placed" and row.job_id not in counts:
                    counts[row.job_id] = self._task_counts(row.job_id)
        for i, col in enumerate(("tasks", "tasks_running", "tasks_completed", "tasks_failed")):
            df[col] = [counts[j][i] if counts.get(j) is not None else None for j in df["job_id"]]  # type: ignore[index]  # counts.get(j) is not None guards it
            df[col] = df[col].astype("Int64")
        return df

    def frame(self) -> pd.DataFrame:
        """The actions as of the last refresh (refreshes first if there was none)."""
        if self._model is None:
            self.refresh()
        return self._model.copy()

    def _finished(self) -> bool:
        df = self._model
        if df is None or len(df) == 0:
            return False
        if not set(df["state"].astype(str)) <= TERMINAL:
            return False
        if not self.with_tasks:
            return True
        for r in self._rows():
            if r.kind == "job" and r.method == "add" and r.state == "placed" and (not r.tasks or r.tasks_completed != r.tasks):
                return False
        return True

    def settled(self) -> bool:
        """No action is still queued (each is placed, blocked, failed, zapped or done)."""
        df = self._model
        return df is not None and len(df) > 0 and not (df["state"].astype(str) == "queued").any()

    def wait(self, timeout: float = 120.0, *, until: str = "finished") -> pd.DataFrame:
        """Refresh in the caller's thread until ``until`` holds, then return :meth:`frame`.

        ``finished``: every action placed (or done, failed, zapped) and the tasks of every
        placed job completed. ``settled``: no action still queued — a blocked action counts
        (use it to show a job that cannot be placed). Raises ``TimeoutError`` naming what
        is still open after ``timeout`` seconds."""
        if until not in ("finished", "settled"):
            raise ValueError("until must be 'finished' or 'settled'")
        check = self._finished if until == "finished" else self.settled
        pause = threading.Event()  # Event.wait: interruptible, unlike time.sleep in a kernel
        deadline = time.monotonic() + timeout
        while True:
            self.refresh()
            if check():
                return self.frame()
            if time.monotonic() > deadline:
                raise TimeoutError(f"submission not {until} after {timeout:g}s: {self._open_summary()}")
            pause.wait(min(self.interval, 0.25))

    def _open_summary(self) -> str:
        df = self._model
        if df is None:
            return "no status yet"
        open_rows = []
        for r in self._rows():
            if r.state not in TERMINAL:
                open_rows.append(f"{r.job_id} {r.state}" + (f" ({r.reason})" if r.reason else ""))
            elif r.kind == "job" and r.method == "add" and r.state == "placed" and (not r.tasks or r.tasks_completed != r.tasks):
                open_rows.append(f"{r.job_id} tasks {r.tasks_completed or 0}/{r.tasks or '?'}")
        return "; ".join(open_rows[:5]) or "nothing open"

    # -- rendering -----------------------------------------------------------------------------
    def _summary(self) -> str:
        df = self._model
        sub = self.submission
        if df is None:
            return f"submission to {sub.federation_id}: {len(sub.unique_ids)} actions"
        states = df["state"].astype(str).value_counts()
        by_state = ", ".join(f"{n} {s}" for s, n in states.items() if n)
        tasks = df.drop_duplicates("job_id")
        total = int(tasks["tasks"].fillna(0).sum())
        done = int(tasks["tasks_completed"].fillna(0).sum())
        failed = int(tasks["tasks_failed"].fillna(0).sum())
        task_text = f" · tasks {done}/{total} completed" + (f", {failed} failed" if failed else "") if total else ""
        return f"submission to {sub.federation_id}: {len(df)} actions ({by_state}){task_text}"

    @staticmethod
    def _latency(v: Any) -> str:
        return "" if v is None else f"{v:.2f} s"

    @staticmethod
    def _tasks_text(row: Any) -> str:
        if not row.tasks:
            return ""
        extra = f", {row.tasks_failed} failed" if row.tasks_failed else ""
        return f"{row.tasks_completed}/{row.tasks}{extra}"

    def _rows(self) -> list[SimpleNamespace]:
        """The frame's rows with plain values (None for NA/NaN) so checks need no pandas."""
        if self._model is None:
            return []
        return [SimpleNamespace(**{k: _plain(v) for k, v in rec.items()}) for rec in self._model.to_dict("records")]

    def _render_table_html(self, with_progress: bool) -> str:
        rows = []
        for r in self._rows():
            cells = [
                f"<b>{h.esc(r.job_id)}</b>",
                h.esc(r.submitter or ""),
                h.esc(f"{r.method} {r.kind}"),
                h.badge(str(r.state)),
                h.esc(r.pool_id or ""),
                h.esc(r.location or ""),
                h.esc(self._latency(r.latency_s)),
            ]
            if with_progress:
                if r.tasks:
                    cells.append(
                        h.meter(int(r.tasks_completed or 0), int(r.tasks))
                        + (f' <span style="color:#c92a2a">{r.tasks_failed} failed</span>' if r.tasks_failed else "")
                    )
                else:
                    cells.append("")
            cells.append(h.esc(r.reason or ""))
            rows.append(cells)
        heads = (
            ["job", "submitter", "action", "state", "pool", "region", "latency"]
            + (["tasks completed"] if with_progress else [])
            + ["reason"]
        )
        return h.table(heads, rows)

    def _render_html(self) -> str:
        return (
            f'<div class="batchfed-submission"><div style="font-weight:600">{h.esc(self._summary())}</div>'
            f"{self._render_table_html(True)}{self._status_html()}</div>"
        )

    def _render_text(self) -> str:
        rows = [
            [
                r.job_id,
                r.submitter or "",
                r.state,
                r.pool_id or "",
                r.location or "",
                self._latency(r.latency_s),
                self._tasks_text(r),
                r.reason or "",
            ]
            for r in self._rows()
        ]
        return "\n".join(
            [
                self._summary(),
                h.text_table(["job", "submitter", "state", "pool", "region", "latency", "tasks", "reason"], rows),
                self.status_text(),
            ]
        )

    # -- widget --------------------------------------------------------------------------------
    def _build(self) -> Any:
        import ipywidgets as w

        self._head = w.HTML()
        self._status = w.HTML()
        self._lines: list[tuple[Any, Any]] = []
        rows = []
        n = len(self.submission.unique_ids)
        if n <= MAX_ROWS:
            for _ in range(n):
                label = w.HTML(layout=w.Layout(width="auto"))
                bar = w.IntProgress(value=0, min=0, max=1, layout=w.Layout(width="180px"))
                self._lines.append((label, bar))
                rows.append(w.HBox([bar, label]))
            self._table = None
        else:
            self._table = w.HTML()
            rows.append(self._table)
        box = w.VBox([self._head, *rows, self._status])
        box.add_class("batchfed-submission-widget")
        return box

    def _update(self) -> None:
        self._head.value = f"<b>{h.esc(self._summary())}</b>"
        self._status.value = self._status_html()
        if self._table is not None:
            self._table.value = self._render_table_html(False)
            return
        for (label, bar), r in zip(self._lines, self._rows()):
            where = f" → {h.esc(r.pool_id)} ({h.esc(r.location or '')})" if r.pool_id else ""
            lat = f" in {self._latency(r.latency_s)}" if r.latency_s is not None else ""
            why = f' <span style="color:#868e96">{h.esc(r.reason)}</span>' if r.reason else ""
            tasks = self._tasks_text(r)
            by = f" by {h.esc(r.submitter)}" if r.submitter else ""
            label.value = (
                f"<b>{h.esc(r.job_id)}</b>{by} {h.badge(str(r.state))}{where}{lat}" + (f" · tasks {tasks}" if tasks else "") + why
            )
            if r.tasks:
                bar.max = int(r.tasks)
                bar.value = int(r.tasks_completed or 0)
                bar.bar_style = "danger" if r.tasks_failed else ("success" if r.tasks_completed == r.tasks else "info")
            else:
                bar.bar_style = {"failed": "danger", "zapped": "danger", "blocked": "warning"}.get(str(r.state), "")
