"""The proxy's memory of the Batch jobs it created or read, so that a later task group of the
same job id merges without reading the job again.

A merge needs the job's pool, preparation command, failure policy and dependency flag
(:meth:`~batchfed_lab.batch.jobs.JobInfo.merge_conflict`) and the ids of its tasks (to number
generated ids). The task-id listing is needed anyway, and it fails with ``JobNotFound`` when
the job is gone, so with this memory a merge costs one call fewer. What the memory cannot see —
a job closed or deleted outside the federation — shows up as that ``JobNotFound`` or as the
task add refused (``JobCompleted`` …), and the processor then forgets the job and asks the
service. Entries are dropped when the federation terminates or deletes the job, when a job is
set to complete by itself, and when this proxy (re)gains the leader lease (another leader may
have changed jobs meanwhile). Bounded: least recently used entries go first.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

from ..batch.jobs import JobInfo
from ..scheduler.types import url_key


class KnownJobs:
    def __init__(self, maxsize: int = 10_000):
        self.maxsize = maxsize
        self._lock = threading.Lock()
        self._jobs: OrderedDict[tuple[str, str], JobInfo] = OrderedDict()

    @staticmethod
    def _key(service_url: str, job_id: str) -> tuple[str, str]:
        return url_key(service_url), job_id.lower()

    def get(self, service_url: str, job_id: str) -> JobInfo | None:
        key = self._key(service_url, job_id)
        with self._lock:
            info = self._jobs.get(key)
            if info is not None:
                self._jobs.move_to_end(key)
            return info

    def remember(self, service_url: str, info: JobInfo) -> None:
        key = self._key(service_url, info.id)
        with self._lock:
            self._jobs[key] = info
            self._jobs.move_to_end(key)
            while len(self._jobs) > self.maxsize:
                self._jobs.popitem(last=False)

    def forget(self, service_url: str, job_id: str) -> None:
        with self._lock:
            self._jobs.pop(self._key(service_url, job_id), None)

    def clear(self) -> None:
        with self._lock:
            self._jobs.clear()
