"""What jobs wrote through ``output_data``, and ending jobs: ``job_outputs`` lists the blobs
under each output prefix of a job (from the job specifications its actions carry, with
``{job_id}`` / ``{task_id}`` filled in for the tasks Batch has), ``outputs_frame`` shows and
downloads them (``%fed results``), ``cancel`` ends jobs whether queued or running."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..config.data import StorageOutput
from ..errors import BatchfedError, ConflictError, DataError, NotFoundError
from ..results import FederatedTask, OutputBlob, RemovalResult
from ..store import ActionMethod, ActionState
from .tasks import TasksMixin

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger("batchfed.client")


UPLOAD_LOGS = ("fileuploadout.txt", "fileuploaderr.txt")  # where Batch says what it uploaded
_UPLOAD_NEWS = re.compile(r"matched no file|not uploaded|: File\w+:|Error")


def _task_file_lines(places: Sequence[tuple[Any, str]], task_id: str, name: str) -> list[str]:
    """The lines of a task's file from the first of ``places`` (account, Batch job id) that has it."""
    for account, batch_id in places:
        try:
            data: bytes = account.read_task_file(batch_id, task_id, name, max_bytes=64 << 10)
            return data.decode("utf-8", "replace").splitlines()
        except BatchfedError:  # not on this pool, or Batch wrote no such file
            continue
    return []


def _without_stamp(line: str) -> str:
    stamp, sep, rest = line.partition(" ")
    return rest if sep and stamp[:4].isdigit() else line


def _listing(list_blobs: Any, account: Any, remote: str) -> list[Any]:
    """The blobs under ``remote``; none when its container does not exist (nothing uploaded yet)."""
    try:
        return list(list_blobs(account, remote))
    except DataError as exc:
        if "ContainerNotFound" in str(exc):
            return []
        raise


class OutputsMixin(TasksMixin):
    """A job's output blobs, and cancelling jobs."""

    def _output_entries(self, federation_id: str, job_id: str) -> list[StorageOutput]:
        """The distinct output_data entries of every task group submitted under the job id."""
        from ..proxy import parse_add

        seen: dict[str, StorageOutput] = {}
        actions = self.actions(federation_id, job_id)
        if not actions:
            raise NotFoundError(f"job '{job_id}' was never submitted to federation '{federation_id}'")
        for a in actions:
            if a.method is not ActionMethod.ADD or a.kind.value != "job" or a.state is not ActionState.PLACED:
                continue
            try:
                spec = parse_add(a.payload, f"action {a.id}").job
            except BatchfedError:  # a payload this client cannot read lists nothing
                continue
            for t in spec.task_definitions:
                for o in t.outputs:
                    seen.setdefault(o.model_dump_json(), o)
        return list(seen.values())

    def job_outputs(self, federation_id: str, job_id: str, tasks: Sequence[FederatedTask] | None = None) -> list[OutputBlob]:
        """The blobs under the job's output prefixes: per task where the prefix names
        ``{task_id}``, else once for the prefix (``task_id`` None, unless the job has one task)."""
        entries = self._output_entries(federation_id, job_id)
        if not entries:
            return []
        if tasks is None:
            tasks = self.tasks(federation_id, job_id)
        task_ids = sorted({ft.task.id for ft in tasks if ft.job_id == job_id})
        from ..data.accounts import resolve_account
        from ..data.transfer import list_blobs

        out: dict[tuple[str, str, str], OutputBlob] = {}
        for entry in entries:
            account = resolve_account(self.workspace, entry.storage_account_settings)
            targets = (
                [(t, entry.prefix_for(job_id, t)) for t in task_ids] if entry.per_task else [(None, entry.prefix_for(job_id, ""))]
            )
            for task_id, prefix in targets:
                owner = task_id if entry.per_task else (task_ids[0] if len(task_ids) == 1 else None)
                for item in _listing(list_blobs, account, f"{entry.container}/{prefix}".rstrip("/")):
                    key = (entry.storage_account_settings, entry.container, item.name)
                    out[key] = OutputBlob(
                        job_id, owner, entry.storage_account_settings, entry.container, item.name, item.size, item.last_modified
                    )
        return list(out.values())

    def output_notes(self, federation_id: str, job_id: str, tasks: Sequence[FederatedTask]) -> dict[str, str]:
        """Task id → what Batch said about outputs it did not upload (a pattern that matched no
        file, a condition that did not hold), from the task's ``fileuploadout.txt``, and the
        upload errors of ``fileuploaderr.txt``. Only for jobs with output_data."""
        if not self._output_entries(federation_id, job_id):
            return {}
        places = [(self.account(loc.batch_service_url), loc.batch_id) for loc in self._job_locations(federation_id, job_id)]
        notes: dict[str, str] = {}
        for ft in tasks:
            if ft.job_id != job_id or ft.task.state != "completed":
                continue
            lines = [line for name in UPLOAD_LOGS for line in _task_file_lines(places, ft.task.id, name)]
            said = [_without_stamp(line) for line in lines if _UPLOAD_NEWS.search(line)]
            if said:
                notes[ft.task.id] = "; ".join(said)
        return notes

    def outputs_frame(self, federation_id: str, job_id: str, *, download: str | Path | None = None) -> pd.DataFrame:
        """``%fed results``: the job's output blobs (see :func:`batchfed_lab.frames.outputs_frame`);
        with ``download``, each is also saved under ``DIR/<container>/<blob>``."""
        from ..frames import outputs_frame

        blobs = self.job_outputs(federation_id, job_id)
        if download is not None:
            self._download_outputs(blobs, Path(download))
        return outputs_frame(blobs)

    def _download_outputs(self, blobs: Iterable[OutputBlob], folder: Path) -> None:
        from ..data.accounts import resolve_account
        from ..data.transfer import download

        for b in blobs:
            target = folder / b.container / b.blob
            target.parent.mkdir(parents=True, exist_ok=True)
            download(resolve_account(self.workspace, b.storage), b.path, target)

    def cancel(self, federation_id: str, job_ids: Iterable[str]) -> RemovalResult:
        """End jobs: their queued or blocked task groups are dropped (zapped), and the jobs are
        terminated where they run (Batch ends their running tasks). A group being placed
        right now cannot be zapped: the terminate, queued behind it, ends it once placed."""
        result = RemovalResult()
        targets = list(dict.fromkeys(job_ids))
        for job_id in targets:
            for a in self.queued(federation_id, job_id):
                if a.method is not ActionMethod.ADD:
                    continue
                try:
                    self.zap(federation_id, a.id)
                    result.warnings.append(f"dropped queued {a.kind.value} {a.target_id} ({a.id})")
                except (ConflictError, NotFoundError) as exc:
                    log.info("cancel %s: %s; terminating after it", a.id, exc)
        removal = self.terminate(federation_id, targets, force=True)
        result.actions, result.skipped = removal.actions, removal.skipped
        result.warnings += removal.warnings
        return result
