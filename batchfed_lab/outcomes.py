"""What a submission's tasks did: waiting for them to complete, why one failed, and their
stdout / stderr as they grow. :class:`~batchfed_lab.results.Submission` uses these over the
client that made it (tasks and task files, read from whichever pool runs them)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from typing import Any, Protocol

from .errors import BatchfedError, NotFoundError, SubmissionError

SHOWN_FAILURES = 3  # failed tasks named in one line; the count is exact
STREAMS = ("stdout", "stderr")
MAX_POLL = 2.0  # seconds between listings, once the first quick ones found nothing new


class _TaskSource(Protocol):
    def tasks(self, federation_id: str, job_id: str | None = None, *, schedule_id: str | None = None) -> list[Any]: ...

    def task_output_bytes(
        self, federation_id: str, job_id: str, task_id: str, stream: str, offset: int, *, max_bytes: int
    ) -> bytes: ...


def task_name(ft: Any) -> str:
    return f"{ft.job_id}/{ft.task.id}"


def failure_reason(t: Any) -> str | None:
    """Why a completed task failed — Batch's failure code and message (a missing input, a
    command that could not start) or its exit code — or None when it succeeded or runs."""
    if t.state != "completed":
        return None
    if t.failure_code or t.failure_message:
        return ": ".join(str(x) for x in (t.failure_code, t.failure_message) if x)
    if t.exit_code not in (0, None):
        return f"exit code {t.exit_code}"
    if t.result == "failure":
        return "failed"
    return None


def failures_error(tasks: Sequence[Any]) -> SubmissionError | None:
    """One line naming the failed tasks with their reasons, or None when none failed."""
    failed = [(task_name(ft), reason) for ft in tasks if (reason := failure_reason(ft.task))]
    if not failed:
        return None
    named = [f"{name} ({reason})" for name, reason in failed[:SHOWN_FAILURES]]
    if len(failed) > SHOWN_FAILURES:
        named.append(f"+{len(failed) - SHOWN_FAILURES} more")
    return SubmissionError(f"{len(failed)} of {len(tasks)} task(s) failed: {', '.join(named)}")


def job_tasks(source: _TaskSource, federation_id: str, job_ids: Sequence[str]) -> list[Any] | None:
    """Every task of the jobs, or None while one of them is not placed anywhere yet."""
    out: list[Any] = []
    for job_id in job_ids:
        try:
            out += source.tasks(federation_id, job_id)
        except NotFoundError:
            return None
    return out


def wait_completed(
    source: _TaskSource, federation_id: str, job_ids: Sequence[str], deadline: float, timeout: float, poll: float
) -> list[Any]:
    """The jobs' tasks once every one has completed; raises :class:`SubmissionError` naming
    what still runs at the deadline. Batch has no change feed for tasks: the listing is polled,
    quickly at first, then every :data:`MAX_POLL` seconds at most."""
    pause = threading.Event()
    interval = poll
    while True:
        tasks = job_tasks(source, federation_id, job_ids)
        if tasks is not None and tasks and all(ft.task.state == "completed" for ft in tasks):
            return tasks
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            waiting = [ft for ft in tasks or () if ft.task.state != "completed"]
            if not tasks:
                raise SubmissionError(f"no task of {', '.join(job_ids)} listed after {timeout:g}s")
            first = waiting[0]
            raise SubmissionError(
                f"{len(waiting)} of {len(tasks)} task(s) not completed after {timeout:g}s; "
                f"{task_name(first)} is {first.task.state}"
            )
        pause.wait(min(interval, remaining))
        interval = min(interval * 2, max(poll, MAX_POLL))


class TaskLogs:
    """The stdout and stderr of a set of jobs' tasks, as ``[job/task] line`` text.

    Iterating follows them: each new complete line once, as the files grow, until every task
    has completed and its files are read to the end (or :meth:`stop`). Each look reads a file
    from where the last one stopped (a ranged read), at most ``max_bytes`` a look, so a long
    log costs its new bytes only; a line is shown once it ends, the last unfinished one when
    its task completes."""

    def __init__(
        self,
        source: _TaskSource,
        federation_id: str,
        job_ids: Sequence[str],
        *,
        poll: float = 1.0,
        streams: Sequence[str] = STREAMS,
        max_bytes: int = 16 << 20,
    ):
        self.source, self.federation_id, self.job_ids = source, federation_id, list(job_ids)
        self.poll, self.streams, self.max_bytes = poll, tuple(streams), max_bytes
        self._read: dict[tuple[str, str, str], int] = {}  # bytes of each file read so far
        self._partial: dict[tuple[str, str, str], bytes] = {}  # its last line, not ended yet
        self._behind: set[tuple[str, str, str]] = set()  # files whose last look was full: more to read
        self._stop = threading.Event()

    def stop(self) -> None:
        self._stop.set()

    close = stop

    def _label(self, ft: Any, stream: str) -> str:
        return f"[{task_name(ft)}]" if stream == "stdout" else f"[{task_name(ft)} {stream}]"

    def _new_text(self, ft: Any, stream: str, final: bool) -> str:
        key = (ft.job_id, ft.task.id, stream)
        offset = self._read.get(key, 0)
        try:
            chunk = self.source.task_output_bytes(
                self.federation_id, ft.job_id, ft.task.id, stream, offset, max_bytes=self.max_bytes
            )
        except BatchfedError:  # not started yet (no file), or the pool does not answer: next look
            return ""
        self._read[key] = offset + len(chunk)
        if len(chunk) >= self.max_bytes:
            self._behind.add(key)
        else:
            self._behind.discard(key)
        data = self._partial.pop(key, b"") + chunk
        # a completed task's file is read to its end (a look at most max_bytes) before its last line shows
        ended = final and len(chunk) < self.max_bytes
        cut = data.rfind(b"\n") + 1
        if ended or (cut == 0 and len(data) >= self.max_bytes):  # or a line longer than a look: in pieces
            cut = len(data)
        if cut < len(data):
            self._partial[key] = data[cut:]
        if cut == 0:
            return ""
        label = self._label(ft, stream)
        return "".join(f"{label} {line}\n" for line in data[:cut].decode("utf-8", "replace").splitlines())

    def snapshot(self) -> str:
        """Everything written so far, once."""
        tasks = job_tasks(self.source, self.federation_id, self.job_ids) or []
        return "".join(self._new_text(ft, s, final=True) for ft in tasks for s in self.streams)

    def step(self) -> tuple[str, bool]:
        """One look: the new text, and whether every task has completed (nothing more comes)."""
        tasks = job_tasks(self.source, self.federation_id, self.job_ids)
        piece = "".join(self._new_text(ft, s, final=ft.task.state == "completed") for ft in tasks or () for s in self.streams)
        finished = bool(tasks) and all(ft.task.state == "completed" for ft in tasks or ()) and not self._behind
        return piece, finished

    def __iter__(self) -> Iterator[str]:
        interval = self.poll
        while not self._stop.is_set():
            piece, finished = self.step()
            if piece:
                interval = self.poll
                yield piece
            if finished:
                return
            self._stop.wait(interval)
            interval = min(interval * 2, max(self.poll, MAX_POLL))
