"""Task re-write for placement (SPEC §5), as pure functions.

* Non-unique federations: when a task group uses dependencies, every task id
  and every ``depends_on`` entry gets ``-<first 8 chars of the unique id>`` so
  two task groups of the same job id can share one Batch job.
* Generated ids (``task-00000``) are renumbered after the highest generated
  id already in the target job, so a merged task group never collides. Ids
  the user wrote are kept, whatever their form.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import replace

from ..config.jobs import GENERATED_ID_PREFIX, GENERATED_ID_WIDTH, NON_UNIQUE_TASK_ID_MAX, TaskDefinition
from ..errors import SchedulingError

SUFFIX_LEN = 8


def unique_suffix(unique_id: str) -> str:
    return "-" + unique_id.replace("-", "")[:SUFFIX_LEN]


def suffix_task_ids(tasks: Sequence[TaskDefinition], unique_id: str) -> list[TaskDefinition]:
    """Append the unique-id suffix to every id and dependency of a task group."""
    suffix = unique_suffix(unique_id)
    out = []
    for t in tasks:
        if len(t.id) > NON_UNIQUE_TASK_ID_MAX:
            raise SchedulingError(
                f"task id '{t.id}' is {len(t.id)} characters; in a federation without unique job ids "
                f"task ids with dependencies may have at most {NON_UNIQUE_TASK_ID_MAX}"
            )
        out.append(replace(t, id=t.id + suffix, depends_on=tuple(d + suffix for d in t.depends_on)))
    return out


def highest_generated(existing_ids: Iterable[str], prefix: str = GENERATED_ID_PREFIX) -> int:
    """The largest N of ``<prefix>N`` among ids; -1 when there is none."""
    pattern = re.compile(re.escape(prefix) + r"(\d+)$")
    best = -1
    for tid in existing_ids:
        m = pattern.match(tid)
        if m:
            best = max(best, int(m.group(1)))
    return best


def renumber_generated_ids(
    tasks: Sequence[TaskDefinition],
    existing_ids: Iterable[str],
    prefix: str = GENERATED_ID_PREFIX,
    width: int = GENERATED_ID_WIDTH,
    *,
    highest: int | None = None,
) -> list[TaskDefinition]:
    """Give generated ids numbers after the highest already in the target job.

    ``highest`` — the highest generated number seen when the placement began —
    replaces the scan of ``existing_ids``: a retried placement must produce the
    same ids even though its own first tasks are in the job by then.
    """
    existing = set(existing_ids)
    if highest is None:
        if not existing:
            return list(tasks)
        highest = highest_generated(existing, prefix)
    else:
        # ids above ``highest`` that exist now are this placement's own earlier adds
        existing = set()
        if highest < 0:
            return list(tasks)
    explicit = {t.id for t in tasks if not t.generated_id}
    taken = existing | explicit
    n = highest + 1
    mapping: dict[str, str] = {}
    for t in tasks:
        if not t.generated_id:
            continue
        while True:
            candidate = f"{prefix}{n:0{width}d}"
            n += 1
            if candidate not in taken:
                break
        taken.add(candidate)
        mapping[t.id] = candidate
    if not mapping:
        return list(tasks)
    return [replace(t, id=mapping.get(t.id, t.id), depends_on=tuple(mapping.get(d, d) for d in t.depends_on)) for t in tasks]


def rewrite_for_placement(
    tasks: Sequence[TaskDefinition],
    *,
    unique_id: str,
    unique_job_ids: bool,
    existing_ids: Iterable[str] = (),
    highest: int | None = None,
) -> list[TaskDefinition]:
    """The full re-write the proxy applies before adding a task group to a Batch job."""
    if not unique_job_ids and any(t.depends_on for t in tasks):
        return suffix_task_ids(tasks, unique_id)
    return renumber_generated_ids(tasks, existing_ids, highest=highest)
