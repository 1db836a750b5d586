"""What the client returns: records, handles and reports that every surface shows.

Plain data with rich display (``text/plain`` + ``text/html``) where a notebook shows them
as they are; the DataFrame views come from :mod:`batchfed_lab.frames`, imported when asked
for. The client builds these; frames and the surfaces read them without importing the client.
"""

from __future__ import annotations

import html
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from .errors import SubmissionError
from .scheduler.decide import JOB_CREATE_FAILED
from .scheduler.types import (  # PoolSnapshot: the capacity records the client returns
    Decision,
    PoolSnapshot,
)
from .store import (
    TERMINAL_STATES,
    Action,
    ActionState,
    Counts,
    DestroyReport,
    Federation,
    PoolMember,
    Store,
)

if TYPE_CHECKING:
    import pandas as pd

    from .batch import TaskInfo

__all__ = [
    "DestroyResult",
    "Explanation",
    "FederatedTask",
    "FederationSummary",
    "OutputBlob",
    "PoolChange",
    "PoolOperation",
    "PoolSnapshot",
    "RemovalResult",
    "Submission",
    "TextOutput",
]


class _HasStore(Protocol):
    """What a :class:`Submission` (and its view) needs of the client that made it."""

    @property
    def store(self) -> Store: ...

    def tasks(self, federation_id: str, job_id: str | None = None, *, schedule_id: str | None = None) -> list[FederatedTask]: ...

    def task_output(
        self,
        federation_id: str,
        job_id: str | None,
        task_id: str,
        stream: str = ...,
        *,
        schedule_id: str | None = ...,
        max_bytes: int | None = ...,
    ) -> TextOutput: ...

    def task_output_bytes(
        self, federation_id: str, job_id: str, task_id: str, stream: str, offset: int, *, max_bytes: int
    ) -> bytes: ...

    def job_outputs(self, federation_id: str, job_id: str, tasks: Sequence[FederatedTask] | None = None) -> list[OutputBlob]: ...

    def cancel(self, federation_id: str, job_ids: Iterable[str]) -> RemovalResult: ...

    def output_notes(self, federation_id: str, job_id: str, tasks: Sequence[FederatedTask]) -> dict[str, str]: ...
    def current_tasks(self, federation_id: str, job_id: str) -> list[FederatedTask]: ...

    def move_history(self, federation_id: str, job_id: str) -> list[str]: ...


class TextOutput(str):
    """Text (a task's stdout, the proxy log) that a notebook shows as it is, not as a repr."""

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        p.text(str(self))

    def _repr_html_(self) -> str:
        return f"<pre>{html.escape(str(self))}</pre>"


@dataclass(frozen=True)
class FederationSummary:
    """A federation with its pools and its action counts (what ``list`` shows)."""

    federation: Federation
    pools: tuple[PoolMember, ...]
    counts: Counts

    @property
    def id(self) -> str:
        return self.federation.id


@dataclass(frozen=True)
class DestroyResult:
    """What ``destroy`` removed, and warnings about work that was still queued or located."""

    report: DestroyReport
    warnings: tuple[str, ...] = ()
    deleted_jobs: int = 0  # Batch jobs (and job schedules) deleted with ``delete_jobs``


@dataclass(frozen=True)
class PoolChange:
    """Pools added or removed, with warnings (jobs still living on a removed pool)."""

    pools: tuple[PoolMember, ...]
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class PoolOperation:
    """A pool created, deleted or resized in a Batch account. ``changed`` is False when there
    was nothing to do (it existed already, or was gone); a resize carries its targets."""

    pool_id: str
    service_url: str
    changed: bool = True
    dedicated: int | None = None
    low_priority: int | None = None


@dataclass
class RemovalResult:
    """Actions enqueued by terminate / delete, and targets skipped (no location)."""

    actions: list[Action] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def unique_ids(self) -> list[str]:
        return [a.id for a in self.actions]


@dataclass(frozen=True)
class FederatedTask:
    """One task of a federation job on one of the pools the job lives on."""

    job_id: str
    pool_id: str
    account: str | None
    location: str | None
    task: TaskInfo


@dataclass(frozen=True)
class OutputBlob:
    """One blob a job's task wrote through ``output_data`` (``task_id`` None when several
    tasks share the prefix it is under)."""

    job_id: str
    task_id: str | None
    storage: str  # the settings.yaml storage account name
    container: str
    blob: str
    size: int
    modified: datetime | None

    @property
    def path(self) -> str:
        return f"{self.container}/{self.blob}"


@dataclass(frozen=True)
class Explanation:
    """A dry run for one job: the per-pool verdicts and the pool that would be chosen now."""

    federation_id: str
    job_id: str
    kind: str
    decision: Decision
    pools: tuple[PoolSnapshot, ...] = ()
    matrix: tuple[Any, ...] = ()  # scheduler.matching.Check rows: pool × constraint
    #: pool key → (node price per hour, the job's estimated cost there), from the price table
    costs: Mapping[str, tuple[float | None, float | None]] = field(default_factory=dict)
    replacement: tuple[str, ...] = ()  # the re-placement rules that would apply, one line per failure kind

    @property
    def pool_id(self) -> str | None:
        """The pool that would be chosen now, or None (the action would block)."""
        return self.decision.pool.rsplit("#", 1)[-1] if self.decision.pool else None

    def frame(self) -> pd.DataFrame:
        """The verdicts as a DataFrame (see :func:`batchfed_lab.frames.verdicts_frame`)."""
        from .frames import verdicts_frame

        return verdicts_frame([self])

    def matrix_frame(self) -> pd.DataFrame:
        """Pool × constraint, pass / fail with required and actual (see :func:`batchfed_lab.frames.matrix_frame`)."""
        from .frames import matrix_frame

        return matrix_frame([self])

    def __repr__(self) -> str:
        where = self.pool_id or "nowhere"
        return f"Explanation({self.job_id!r} → {where}: {self.decision.reason})"

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        frame = self.frame()
        head = html.escape(repr(self))
        return {
            "text/plain": f"{self!r}\n{frame.to_string(index=False)}",
            "text/html": f"<p>{head}</p>{frame.to_html(index=False)}",
        }


SHOWN_TASK_FAILURES = 3  # task failures named in one line; the count is exact
_MESSAGE_CHARS = 120


def tasks_not_added(a: Action) -> str | None:
    """A placed action's tasks Batch did not take (e.g. ``TaskIdInUse``: a merged task group
    reuses a task id the job has), as one line — ``1 of 2 task(s) not added: a (TaskIdInUse:
    …)`` — from what the proxy recorded on the action; None when every task was added."""
    progress = a.progress or {}
    count = progress.get("task_failure_count")
    if a.state is not ActionState.PLACED or not isinstance(count, int) or count <= 0:
        return None
    failures = [f for f in progress.get("task_failures") or () if isinstance(f, dict)]
    named = [_failure_text(f) for f in failures[:SHOWN_TASK_FAILURES]]
    if count > len(named):
        named.append(f"+{count - len(named)} more")
    added = progress.get("tasks_added")
    of = f" of {added + count}" if isinstance(added, int) else ""
    return f"{count}{of} task(s) not added: {', '.join(named)}"


def _failure_text(f: dict[str, Any]) -> str:
    message = " ".join(str(f.get("message") or "").split())  # one line, whatever Batch wrote
    if len(message) > _MESSAGE_CHARS:
        message = message[: _MESSAGE_CHARS - 1] + "…"
    code = f.get("code") or "error"
    return f"{f.get('task_id')} ({code}: {message})" if message else f"{f.get('task_id')} ({code})"


def action_note(a: Action) -> str | None:
    """What a user should read about an action: why it is blocked, the error it failed with,
    or the tasks a placement could not add."""
    if a.state is ActionState.BLOCKED:
        return a.reason
    if a.state is ActionState.PLACED:
        return tasks_not_added(a)
    return a.error or a.reason


def unplaceable(a: Action) -> bool:
    """Blocked where no pool of the federation can take it now: every pool is excluded by a
    constraint or a federation rule (none merely skipped by load), or there is no pool. It
    stays queued and is retried (a pool added or changed may take it), but waiting alone does
    not place it. An unreachable service records no verdicts: not this."""
    if a.state is not ActionState.BLOCKED or a.verdicts is None:
        return False
    return all(isinstance(v, dict) and v.get("status") == "excluded" and not _transient(v) for v in a.verdicts)


def _transient(verdict: dict[str, Any]) -> bool:
    """A pool where the job could not be created in this attempt (e.g. the job is still being
    deleted there): the next attempt tries it again."""
    return verdict.get("constraint") == "job_create" and JOB_CREATE_FAILED in str(verdict.get("reason") or "")


class Submission:
    """Handle on the actions one submit enqueued: ``unique_ids``, ``status()``, ``wait()``."""

    def __init__(self, client: _HasStore, federation_id: str, actions: Sequence[Action]):
        self.client = client
        self.federation_id = federation_id
        self._actions = list(actions)

    @property
    def unique_ids(self) -> list[str]:
        return [a.id for a in self._actions]

    @property
    def job_ids(self) -> list[str]:
        return [a.target_id for a in self._actions]

    def actions(self) -> list[Action]:
        """The actions as the store has them now."""
        return [self.client.store.get_action(self.federation_id, a.id) for a in self._actions]

    def status(self) -> pd.DataFrame:
        """One row per action (see :func:`batchfed_lab.frames.placements_frame`)."""
        from .frames import placements_frame

        return placements_frame(self.actions())

    def done(self) -> bool:
        return all(a.state in TERMINAL_STATES for a in self.actions())

    def wait(self, timeout: float = 60.0, *, until: str = "placed", poll: float = 0.25) -> list[Action]:
        """Wait until every action is placed (``until="placed"``), or also every task of the
        placed jobs has completed (``until="completed"``: raises :class:`SubmissionError` naming
        the failed tasks and why, or what still runs at ``timeout``; tasks are polled from
        ``poll`` seconds up to 2 s apart). Placement: raises :class:`SubmissionError` when
        one failed or was zapped, when a placement left tasks out (:func:`tasks_not_added`), as soon as one is blocked where no pool of the federation can
        take it (see :func:`unplaceable`), or when some are still queued or blocked at
        ``timeout``. A block by load (blackout, no idle node) or by an unreachable service
        clears by itself: it is waited for."""
        if until not in ("placed", "completed"):
            raise ValueError(f"until must be 'placed' or 'completed', not {until!r}")
        deadline = time.monotonic() + timeout
        placed = self._wait_placed(deadline, timeout)
        if until == "completed":
            from .outcomes import failures_error, wait_completed

            jobs = [a.target_id for a in placed if a.kind.value == "job" and a.state is ActionState.PLACED]
            error = failures_error(wait_completed(self.client, self.federation_id, jobs, deadline, timeout, poll))
            if error is not None:
                raise error
        return placed

    def _wait_placed(self, deadline: float, timeout: float) -> list[Action]:
        store = self.client.store
        while True:
            marks = store.change_marks()  # before reading: a change in between wakes us at once
            current = self.actions()
            bad = [a for a in current if a.state in (ActionState.FAILED, ActionState.ZAPPED)]
            if bad:
                a = bad[0]
                raise SubmissionError(
                    f"{a.kind.value} {a.target_id} ({a.id}) {a.state.value}: {a.error or a.reason or 'no reason recorded'}"
                )
            stuck = [a for a in current if unplaceable(a)]
            if stuck:
                a = stuck[0]
                raise SubmissionError(f"{a.kind.value} {a.target_id} ({a.id}) is blocked: {a.reason}")
            if all(a.state in TERMINAL_STATES for a in current):
                self._check_tasks_added(current)
                return current
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                waiting = [a for a in current if a.state not in TERMINAL_STATES]
                a = waiting[0]
                why = f": {a.reason}" if a.state is ActionState.BLOCKED and a.reason else ""
                raise SubmissionError(
                    f"{len(waiting)} of {len(current)} action(s) not placed after {timeout:g}s; "
                    f"{a.kind.value} {a.target_id} is {a.state.value}{why}"
                )
            store.wait_for_change(marks, timeout=min(remaining, 1.0))

    def _jobs(self) -> list[str]:
        return [a.target_id for a in self._actions if a.kind.value == "job"]

    def result(self) -> pd.DataFrame:
        """One row per task of the submitted jobs: state, exit code, node, times, the failure
        reason, the blobs it wrote through ``output_data`` and what Batch said about outputs it
        did not upload (see
        :func:`batchfed_lab.frames.task_results_frame`)."""
        from .frames import task_results_frame
        from .outcomes import job_tasks

        tasks = job_tasks(self.client, self.federation_id, self._jobs()) or []
        blobs = [b for job in self._jobs() for b in self.client.job_outputs(self.federation_id, job, tasks)]
        notes = {(job, t): n for job in self._jobs() for t, n in self.client.output_notes(self.federation_id, job, tasks).items()}
        return task_results_frame(tasks, blobs, notes)

    def logs(self, *, follow: bool = False, poll: float = 1.0, streams: Sequence[str] = ("stdout", "stderr")) -> Any:
        """The tasks' stdout and stderr as ``[job/task] line`` text; with ``follow``, an
        iterator of new text as the files grow, until every task has completed (the widget
        :class:`batchfed_lab.widgets.LogsView` shows it live without blocking the kernel)."""
        from .outcomes import TaskLogs

        logs = TaskLogs(self.client, self.federation_id, self._jobs(), poll=poll, streams=streams)
        return logs if follow else TextOutput(logs.snapshot())

    def cancel(self) -> RemovalResult:
        """Terminate the submitted jobs: what is queued is dropped, running tasks are ended."""
        return self.client.cancel(self.federation_id, self._jobs())

    @staticmethod
    def _check_tasks_added(placed: list[Action]) -> None:
        """A placement that left tasks out is not what was asked for: say which, and why."""
        for a in placed:
            missing = tasks_not_added(a)
            if missing:
                raise SubmissionError(f"{a.kind.value} {a.target_id} ({a.id}) placed, but {missing}")

    def __repr__(self) -> str:
        return f"Submission({self.federation_id!r}, {len(self._actions)} action(s): {', '.join(self.job_ids)})"

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        frame = self.status()
        head = html.escape(repr(self))
        return {
            "text/plain": f"{self!r}\n{frame.to_string(index=False)}",
            "text/html": f"<p>{head}</p>{frame.to_html(index=False)}",
        }
