"""Tasks: our :class:`~batchfed_lab.config.jobs.TaskDefinition` → SDK create options, bulk add
with per-task results, task listings, and the task operations of an account
(:class:`TaskOperations`: add, list, read a task's files).

Bulk add (:func:`add_task_collection`) posts ``addtaskcollection`` requests of at most 100
tasks (the service limit) itself instead of using the SDK's ``create_tasks`` helper, because
that helper raises on any per-task client error (losing the successes of the same call),
retries per-task server errors without limit and re-queues a chunk forever on an unknown
error. Here:

* ``success`` → ``added``; ``clienterror`` with code ``TaskExists`` → ``exists`` (success:
  re-adding the same ids after a crash is idempotent);
* any other ``clienterror`` → ``failed`` with its code and message: returned, never raised,
  never counted as success;
* ``servererror`` or a task missing from the response → re-posted, at most
  ``max_server_retries`` times, then ``failed``;
* a request holds at most 100 tasks and 1 MB of JSON (Batch's limits): tasks are packed by
  their serialized size, and a task larger than a request may be is ``failed`` with Batch's
  code ``RequestBodyTooLarge`` without being sent;
* a whole-request ``RequestBodyTooLarge`` all the same halves the chunk (and every later
  chunk); a single task that is still too large is ``failed`` with that code;
* any other whole-request error (job gone, auth, service down after the pipeline's own
  retries) raises :class:`~batchfed_lab.errors.BatchError`: the caller may simply resubmit.

Commands run the way Batch runs them: *not* under a shell. Our task commands are shell text
(``python x.py > out && …``), so :func:`command_line` wraps them in ``/bin/sh -c '…'``
(``cmd /c …`` on Windows pools) unless ``shell=False``.
"""

from __future__ import annotations

import json
import shlex
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from azure.batch import models as bm
from azure.batch._utils.model_base import SdkJSONEncoder  # how the SDK writes request bodies
from azure.core.exceptions import AzureError, HttpResponseError

from ..config.jobs import TaskDefinition
from ..errors import BatchError
from ._util import enum_text, path_segment
from .connection import BatchConnection
from .errors import batch_call, error_code, translate

__all__ = [
    "MAX_TASKS_PER_REQUEST",
    "TaskAddReport",
    "TaskAddResult",
    "TaskCounts",
    "TaskInfo",
    "TaskOperations",
    "TaskOptions",
    "add_task_collection",
    "as_task_options",
    "command_line",
    "task_create_options",
    "task_info",
]

MAX_TASKS_PER_REQUEST = 100  # Batch's limit per addtaskcollection call
MAX_REQUEST_BYTES = 1024 * 1024  # Batch's limit on an addtaskcollection body
_ENVELOPE_BYTES = len('{"value": []}')
TOO_LARGE = "RequestBodyTooLarge"
TASK_EXISTS = "TaskExists"
TASK_SELECT = ["id", "state", "executionInfo", "nodeInfo", "creationTime"]

AddStatus = Literal["added", "exists", "failed"]


def command_line(command: str, *, windows: bool = False, shell: bool = True) -> str:
    """The Batch command line for shell text (Batch itself runs no shell)."""
    if not shell:
        return command
    return f"cmd /c {command}" if windows else f"/bin/sh -c {shlex.quote(command)}"


def task_create_options(task: TaskDefinition, *, windows: bool = False, shell: bool = True) -> bm.BatchTaskCreateOptions:
    """One task's create options: multi-instance, container, constraints, dependencies."""
    constraints = None
    if task.max_task_retries is not None or task.max_wall_time_s is not None:
        constraints = bm.BatchTaskConstraints(
            max_task_retry_count=task.max_task_retries,
            max_wall_clock_time=timedelta(seconds=task.max_wall_time_s) if task.max_wall_time_s is not None else None,
        )
    multi = None
    if task.num_instances > 1:
        multi = bm.MultiInstanceSettings(
            number_of_instances=task.num_instances,
            # Batch requires a coordination command; "nothing to coordinate" is a no-op
            coordination_command_line=command_line(
                task.coordination_command or ("exit 0" if windows else "true"), windows=windows, shell=shell
            ),
        )
    return bm.BatchTaskCreateOptions(
        id=task.id,
        command_line=command_line(task.command, windows=windows, shell=shell),
        environment_settings=[bm.EnvironmentSetting(name=k, value=v) for k, v in task.environment.items()] or None,
        container_settings=bm.BatchTaskContainerSettings(image_name=task.docker_image) if task.docker_image else None,
        constraints=constraints,
        multi_instance_settings=multi,
        depends_on=bm.BatchTaskDependencies(task_ids=list(task.depends_on)) if task.depends_on else None,
        # mapped from input_data / output_data at placement (batchfed_lab.data.mapping), REST-shaped
        resource_files=[bm.ResourceFile(rf) for rf in task.resource_files] or None,
        output_files=[bm.OutputFile(of) for of in task.output_files] or None,
    )


TaskOptions = TaskDefinition | bm.BatchTaskCreateOptions  # a task as a caller may give it


def as_task_options(tasks: Sequence[TaskOptions], *, windows: bool, shell: bool) -> list[bm.BatchTaskCreateOptions]:
    """Create options for each task; SDK options pass through as they are."""
    return [
        t if isinstance(t, bm.BatchTaskCreateOptions) else task_create_options(t, windows=windows, shell=shell) for t in tasks
    ]


@dataclass(frozen=True, slots=True)
class TaskAddResult:
    task_id: str
    status: AddStatus
    code: str | None = None
    message: str | None = None

    @property
    def ok(self) -> bool:
        return self.status != "failed"


@dataclass(frozen=True)
class TaskAddReport:
    """Per-task outcome of one bulk add, in submission order, plus the requests it took."""

    results: tuple[TaskAddResult, ...]
    requests: int

    @property
    def added(self) -> list[str]:
        return [r.task_id for r in self.results if r.status == "added"]

    @property
    def existing(self) -> list[str]:
        return [r.task_id for r in self.results if r.status == "exists"]

    @property
    def failed(self) -> list[TaskAddResult]:
        return [r for r in self.results if r.status == "failed"]

    @property
    def succeeded(self) -> int:
        return sum(1 for r in self.results if r.ok)

    @property
    def ok(self) -> bool:
        return not self.failed

    def summary(self) -> str:
        text = f"{len(self.added)} added, {len(self.existing)} existed, {len(self.failed)} failed"
        if self.failed:
            first = self.failed[0]
            text += f" (first: {first.task_id}: {first.code})"
        return text


# one ``addtaskcollection`` request: its tasks → the answer's ``value`` list as the service
# wrote it ({"taskId", "status", "error": {"code", "message": {"value"}}}); no SDK models
Post = Callable[[list[bm.BatchTaskCreateOptions]], Sequence[Mapping[str, Any]]]
_SUCCESS = str(bm.BatchTaskAddStatus.SUCCESS.value).lower()
_CLIENT_ERROR = str(bm.BatchTaskAddStatus.CLIENT_ERROR.value).lower()


def _one_line(text: Any) -> str | None:
    if text is None:
        return None
    value = text.get("value") if isinstance(text, Mapping) else getattr(text, "value", text)  # {lang, value} or str
    lines = str(value).strip().splitlines()
    return lines[0] if lines else None


class _BulkAdd:
    """One bulk add: shared chunk limit (halved on RequestBodyTooLarge) and results."""

    def __init__(self, post: Post, max_server_retries: int, chunk_size: int, what: str):
        self._sizes: dict[int, int] = {}  # id(task) → its JSON size (a retry re-packs the same objects)
        self._post = post
        self._what = what
        self._retries = max_server_retries
        self._limit = max(1, min(chunk_size, MAX_TASKS_PER_REQUEST))
        self._lock = threading.Lock()
        self.results: dict[str, TaskAddResult] = {}
        self.requests = 0

    def _record(self, result: TaskAddResult) -> None:
        with self._lock:
            self.results[result.task_id] = result

    def run(self, tasks: list[bm.BatchTaskCreateOptions], attempt: int = 0) -> None:
        """Add ``tasks`` (any number) in chunks of the current limit."""
        i = 0
        while i < len(tasks):
            with self._lock:
                limit = self._limit
            chunk: list[bm.BatchTaskCreateOptions] = []
            size = _ENVELOPE_BYTES
            while i < len(tasks) and len(chunk) < limit:
                task_size = self._size(tasks[i]) + 2  # and the ", " between tasks
                if _ENVELOPE_BYTES + task_size > MAX_REQUEST_BYTES:
                    why = f"the task is larger than a request may be ({task_size:,} bytes; Batch takes ≤ 1 MB)"
                    self._record(TaskAddResult(tasks[i].id, "failed", TOO_LARGE, why))
                elif chunk and size + task_size > MAX_REQUEST_BYTES:
                    break
                else:
                    chunk.append(tasks[i])
                    size += task_size
                i += 1
            if chunk:
                self._chunk(chunk, attempt)

    def _size(self, task: bm.BatchTaskCreateOptions) -> int:
        size = self._sizes.get(id(task))
        if size is None:
            size = len(json.dumps(task, cls=SdkJSONEncoder, exclude_readonly=True).encode("utf-8"))
            self._sizes[id(task)] = size
        return size

    def _chunk(self, chunk: list[bm.BatchTaskCreateOptions], attempt: int) -> None:
        with self._lock:
            self.requests += 1
        try:
            values = self._post(chunk)
        except HttpResponseError as exc:
            if error_code(exc) != TOO_LARGE:
                raise translate(exc, f"{self._what} ({len(chunk)} task(s) in the request)") from exc
            if len(chunk) == 1:
                self._record(TaskAddResult(chunk[0].id, "failed", TOO_LARGE, "the task is larger than a request may be"))
                return
            half = len(chunk) // 2
            with self._lock:
                self._limit = min(self._limit, half)
            self.run(chunk, attempt)  # re-chunked at the halved limit
            return
        retry: list[bm.BatchTaskCreateOptions] = []
        by_id = {t.id: t for t in chunk}
        seen = set()
        for r in values:
            task_id = r.get("taskId")
            if task_id is None:
                continue  # a result naming no task: that task counts as missing below
            status = str(r.get("status") or "").lower()
            error = r.get("error") or {}
            code = error.get("code")
            message = _one_line(error.get("message")) if error else None
            seen.add(task_id)
            if status == _SUCCESS:
                self._record(TaskAddResult(task_id, "added"))
            elif status == _CLIENT_ERROR and code == TASK_EXISTS:
                self._record(TaskAddResult(task_id, "exists", code))
            elif status == _CLIENT_ERROR:
                self._record(TaskAddResult(task_id, "failed", code or "ClientError", message))
            elif task_id in by_id and attempt < self._retries:
                retry.append(by_id[task_id])
            else:  # servererror (or an unknown status) with no retries left
                self._record(TaskAddResult(task_id, "failed", code or f"status:{status}", message))
        for t in chunk:  # the service owes a result per task; a missing one is retried like a server error
            if t.id not in seen:
                if attempt < self._retries:
                    retry.append(t)
                else:
                    self._record(TaskAddResult(t.id, "failed", "NoResult", "the service returned no result for it"))
        if retry:
            self.run(retry, attempt + 1)


def add_task_collection(
    post: Post,
    tasks: Sequence[bm.BatchTaskCreateOptions],
    *,
    concurrency: int = 1,
    max_server_retries: int = 3,
    chunk_size: int = MAX_TASKS_PER_REQUEST,
    what: str = "add tasks",
) -> TaskAddReport:
    """Add ``tasks`` through ``post`` (one ``addtaskcollection`` request per call).
    ``what`` starts the message of a raised error."""
    ids = [t.id for t in tasks]
    seen: set[str] = set()
    for task_id in ids:
        if task_id.lower() in seen:  # Batch ids are case-insensitive
            # a request with a duplicate id fails as a whole on Azure; refuse before sending anything
            raise BatchError(f"{what}: task id '{task_id}' appears twice in one submission", code="DuplicateTaskId")
        seen.add(task_id.lower())
    bulk = _BulkAdd(post, max_server_retries, chunk_size, what)
    task_list = list(tasks)
    if concurrency <= 1 or len(task_list) <= chunk_size:
        bulk.run(task_list)
    else:
        step = max(1, min(chunk_size, MAX_TASKS_PER_REQUEST))
        parts = [task_list[i : i + step] for i in range(0, len(task_list), step)]
        with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="batchfed-addtasks") as pool:
            for future in [pool.submit(bulk.run, part) for part in parts]:
                future.result()  # re-raises the first whole-request error
    return TaskAddReport(tuple(bulk.results[i] for i in ids if i in bulk.results), bulk.requests)


# --- listings ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TaskCounts:
    active: int = 0
    running: int = 0
    completed: int = 0
    succeeded: int = 0
    failed: int = 0


@dataclass(frozen=True, slots=True)
class TaskInfo:
    id: str
    state: str  # active | preparing | running | completed
    exit_code: int | None = None
    result: str | None = None  # success | failure (completed tasks)
    node_id: str | None = None
    pool_id: str | None = None
    start_time: datetime | None = None
    end_time: datetime | None = None
    retry_count: int = 0
    failure_code: str | None = None
    failure_message: str | None = None
    requeue_count: int = 0  # preempted or moved off a removed node: not a retry
    failure_category: str | None = None  # usererror | servererror (Batch's failureInfo.category)


def task_info(t: bm.BatchTask) -> TaskInfo:
    ex = t.execution_info
    node = t.node_info
    failure = ex.failure_info if ex else None
    return TaskInfo(
        id=t.id or "",
        state=enum_text(t.state, "active"),
        exit_code=ex.exit_code if ex else None,
        result=enum_text(ex.result, "") or None if ex else None,
        node_id=node.node_id if node else None,
        pool_id=node.pool_id if node else None,
        start_time=ex.start_time if ex else None,
        end_time=ex.end_time if ex else None,
        retry_count=(ex.retry_count or 0) if ex else 0,
        failure_code=failure.code if failure else None,
        failure_message=_one_line(failure.message) if failure else None,
        requeue_count=(ex.requeue_count or 0) if ex else 0,
        failure_category=(enum_text(failure.category, "") or None) if failure else None,
    )


# --- calls --------------------------------------------------------------------------------------


class TaskOperations(BatchConnection):
    """Add tasks to an account's jobs, list and read them."""

    def add_tasks(
        self,
        job_id: str,
        tasks: Sequence[TaskOptions],
        *,
        windows: bool = False,
        shell: bool = True,
        concurrency: int = 1,
        max_server_retries: int = 3,
        chunk_size: int = 100,
    ) -> TaskAddReport:
        """Add tasks in requests of ≤100, with a per-task result each (:func:`add_task_collection`).
        Raises only when a whole request fails for another reason than its size."""
        options = as_task_options(tasks, windows=windows, shell=shell)
        what = self._what(f"add tasks to job '{job_id}'")
        path = f"/jobs/{path_segment(job_id)}/addtaskcollection"

        def post(chunk: list[bm.BatchTaskCreateOptions]) -> list[dict[str, Any]]:
            answer = self._rest("POST", path, what, body={"value": chunk})
            values = answer.get("value") if isinstance(answer, dict) else None
            # no usable answer: every task of the chunk counts as missing (retried, then NoResult)
            return [r for r in values if isinstance(r, dict)] if isinstance(values, list) else []

        with batch_call(what):  # connection errors; HTTP errors are translated inside
            return add_task_collection(
                post,
                options,
                concurrency=concurrency,
                max_server_retries=max_server_retries,
                chunk_size=chunk_size,
                what=what,
            )

    def task_ids(self, job_id: str) -> set[str]:
        """Ids of every task already in the job (for renumbering generated ids, SPEC §5)."""
        what = self._what(f"list task ids of job '{job_id}'")
        with batch_call(what):
            return {t["id"] for t in self._pages(f"/jobs/{path_segment(job_id)}/tasks", what, {"$select": "id"}) if t.get("id")}

    def list_tasks(self, job_id: str, *, state: str | None = None) -> list[TaskInfo]:
        """Tasks of a job: state, exit code, node, start/end times (``state`` filters)."""
        flt = f"state eq '{state}'" if state else None
        with batch_call(self._what(f"list tasks of job '{job_id}'")):
            tasks = [task_info(t) for t in self._client.list_tasks(job_id, filter=flt, select=TASK_SELECT)]
        return [t for t in tasks if state is None or t.state == state]

    def get_task(self, job_id: str, task_id: str) -> TaskInfo:
        with batch_call(self._what(f"get task '{task_id}' of job '{job_id}'")):
            return task_info(self._client.get_task(job_id, task_id, select=TASK_SELECT))

    def read_task_file(
        self, job_id: str, task_id: str, path: str = "stdout.txt", *, offset: int = 0, max_bytes: int | None = None
    ) -> bytes:
        """A file of a task's folder (``stdout.txt``, ``stderr.txt``, ...): at most ``max_bytes``
        from byte ``offset`` on, asked of the service as a range (``ocp-range``) so only those
        bytes travel — following a growing log costs its new bytes. At or past the end: ``b""``."""
        what = self._what(f"read {path} of task '{task_id}' in job '{job_id}'")
        if offset < 0 or (max_bytes is not None and max_bytes <= 0):
            raise ValueError("offset must be >= 0 and max_bytes > 0")
        last = "" if max_bytes is None else str(offset + max_bytes - 1)
        ranged = offset > 0 or max_bytes is not None
        try:
            out = bytearray()
            blocks = self._client.download_task_file(
                job_id, task_id, path, ocp_range=f"bytes={offset}-{last}" if ranged else None
            )
            for block in blocks:
                out += block
                if max_bytes is not None and len(out) >= max_bytes:  # a service that ignored the range
                    return bytes(out[:max_bytes])
            return bytes(out)
        except HttpResponseError as exc:
            if exc.status_code == 416:  # a range starting past the end: nothing new yet
                return b""
            err = translate(exc, what)
            if exc.status_code == 404 and err.code is None:
                err.code = "FileNotFound"  # a service whose 404 has no body names no code
            raise err from exc
        except AzureError as exc:
            raise translate(exc, what) from exc

    def task_output(self, job_id: str, task_id: str, stream: str = "stdout", *, max_bytes: int | None = None) -> str:
        """``stdout.txt`` / ``stderr.txt`` as text (undecodable bytes replaced)."""
        if stream not in ("stdout", "stderr"):
            raise ValueError("stream must be 'stdout' or 'stderr'")
        return self.read_task_file(job_id, task_id, f"{stream}.txt", max_bytes=max_bytes).decode("utf-8", "replace")
