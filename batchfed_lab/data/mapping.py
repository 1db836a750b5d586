"""``input_data`` / ``output_data`` → Batch's own ``resourceFiles`` / ``outputFiles`` (REST shape).

Nothing is installed on nodes: Batch downloads the inputs before the command starts and
uploads the outputs after it ends. The mapping is pure; how a container is reached comes in
as :class:`StorageAccess` (a container URL per account and container — with a SAS, or bare
when the pool's managed identity reads and writes it).

* an input ``container/prefix`` is one container resource file (``storageContainerUrl`` +
  ``blobPrefix``): every blob under the prefix lands at ``local_path/<blob name>``;
* an ``include`` entry naming a blob is an ``httpUrl`` resource file: a missing blob fails
  the task (``BlobNotFound``) instead of leaving it without its input; an entry ending in
  ``*`` is a container resource file with that longer prefix;
* an output ``include`` pattern is one output file; with wildcards its destination ``path``
  is the blob prefix the matching files go under, without them the blob name itself.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Any
from urllib.parse import quote

from ..config.data import StorageInput, StorageOutput
from ..config.jobs import TaskDefinition

__all__ = [
    "ContainerUrlFor",
    "StorageAccess",
    "blob_url",
    "map_tasks",
    "output_files",
    "resource_files",
    "sas_lifetime",
]

#: (storage account name, container, write access) → the container's URL as a task may use it
ContainerUrlFor = Callable[[str, str, bool], str]
_WILDCARDS = frozenset("*?[")


@dataclass
class StorageAccess:
    """How the pool a task group is placed on reaches storage: ``container_url_for`` gives a
    container's URL (with a SAS, or bare); ``identity`` is the ARM id of the pool's user-assigned
    managed identity, sent as ``identityReference`` when set. One URL is asked for per
    container and access, however many tasks use it."""

    container_url_for: ContainerUrlFor
    identity: str | None = None
    _urls: dict[tuple[str, str, bool], str] = field(default_factory=dict, repr=False)

    def container_url(self, account: str, container: str, *, write: bool) -> str:
        key = (account, container, write)
        url = self._urls.get(key)
        if url is None:
            url = self._urls[key] = self.container_url_for(account, container, write)
        return url

    def reference(self) -> dict[str, Any]:
        return {"identityReference": {"resourceId": self.identity}} if self.identity else {}


def _join(*parts: str) -> str:
    return "/".join(p.strip("/") for p in parts if p.strip("/"))


def blob_url(container_url: str, blob: str) -> str:
    """A blob's URL from its container's (a SAS query stays at the end)."""
    base, sep, query = container_url.partition("?")
    return f"{base.rstrip('/')}/{quote(blob, safe='/')}{sep}{query}"


def resource_files(inputs: Sequence[StorageInput], access: StorageAccess) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for entry in inputs:
        url = access.container_url(entry.storage_account_settings, entry.container, write=False)
        prefixes = [entry.prefix] if not entry.include else []
        for pattern in entry.include:
            name = _join(entry.prefix, pattern)
            if pattern.endswith("*"):
                prefixes.append(name[:-1])
                continue
            out.append({"httpUrl": blob_url(url, name), "filePath": _join(entry.local_path, name), **access.reference()})
        for prefix in prefixes:
            rf: dict[str, Any] = {"storageContainerUrl": url}
            if prefix:
                rf["blobPrefix"] = prefix
            if entry.local_path:
                rf["filePath"] = entry.local_path
            out.append({**rf, **access.reference()})
    return out


def output_files(outputs: Sequence[StorageOutput], access: StorageAccess, *, job_id: str, task_id: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for entry in outputs:
        url = access.container_url(entry.storage_account_settings, entry.container, write=True)
        prefix = entry.prefix_for(job_id, task_id)
        for pattern in entry.include:
            path = prefix if _WILDCARDS & set(pattern) else _join(prefix, pattern)
            container: dict[str, Any] = {"containerUrl": url, **access.reference()}
            if path:
                container["path"] = path
            out.append(
                {
                    "filePattern": _join(entry.local_path, pattern),
                    "destination": {"container": container},
                    "uploadOptions": {"uploadCondition": entry.condition},
                }
            )
    return out


def map_tasks(job_id: str, tasks: Sequence[TaskDefinition], access: StorageAccess) -> list[TaskDefinition]:
    """The tasks with their resource files and output files (tasks without data as they are)."""
    mapped = []
    for t in tasks:
        if not t.inputs and not t.outputs:
            mapped.append(t)
            continue
        mapped.append(
            replace(
                t,
                resource_files=tuple(resource_files(t.inputs, access)),
                output_files=tuple(output_files(t.outputs, access, job_id=job_id, task_id=t.id)),
            )
        )
    return mapped


MAX_SAS_LIFETIME = timedelta(days=7)  # the longest a user-delegation SAS may live
SAS_MARGIN = timedelta(days=1)  # time in Batch's own queue before a task starts


def sas_lifetime(tasks: Sequence[TaskDefinition]) -> timedelta:
    """How long the URLs minted for a task group live, from its placement: the tasks' longest
    wall-clock limit plus a day in the queue, at most the 7 days of a user-delegation SAS."""
    walls = [t.max_wall_time_s for t in tasks if t.inputs or t.outputs]
    if not walls or any(w is None for w in walls):
        return MAX_SAS_LIFETIME
    return min(MAX_SAS_LIFETIME, timedelta(seconds=max(w for w in walls if w is not None)) + SAS_MARGIN)
