"""The first steps of a move action (see :mod:`.moves`), before it is placed like any add.

1. terminate the job on the pool it leaves (idempotent; a job already gone is fine);
2. list its tasks there: once the job is terminated their states are final, so the tasks
   that finished are known for sure and never run again;
3. journal which tasks move and mark the old location terminated — one claimed step.

A proxy killed before step 3 does it all again with the same result (the job stays
terminated, its tasks' states do not change); after it, the journal has the moving tasks. The
tasks themselves are rebuilt from the placements they came from, as they were placed (ids
kept), so the journal holds their ids only.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ..config.jobs import TaskDefinition
from ..errors import BatchNotFoundError, NotFoundError
from ..scheduler import Requirements, job_requirements, resolve, rewrite_for_placement, summarize_tasks
from ..scheduler.replacement import TaskState, done, move_exclusions, moved_batch_job_id, tasks_to_move
from ..scheduler.types import PoolSnapshot, pool_key, url_key
from ..store.records import ActionKind, Claim, Location
from ..store.rules import MOVE_KEY
from .payload import AddPayload, parse_add

if TYPE_CHECKING:
    from .placement import Target
    from .processor import ActionProcessor


def move_record(payload: Any) -> dict[str, Any] | None:
    record = payload.get(MOVE_KEY) if isinstance(payload, dict) else None
    return record if isinstance(record, dict) else None


def move_number(payload: Any) -> int | None:
    """Which move of its job a move action is (1 for the first), None for any other action."""
    record = move_record(payload)
    return None if record is None else max(1, len(record.get("kinds") or ()))


def batch_job_id_for(job_id: str, target: Target, locations: Sequence[Location], move: int | None) -> str:
    """The id of the job on the target pool's Batch account: the one recorded for that pool
    (a retry, a later task group); for a move into an account that still holds the job on
    another pool, a derived one (Batch job ids are unique per account); else the job id.
    The same on every retry of a move: a crash between the job create and its journal finds
    the job it created."""
    url = url_key(target.service_url)
    here = [loc for loc in locations if url_key(loc.batch_service_url) == url]
    same_pool = [loc for loc in here if loc.pool_id.lower() == target.pool_id.lower()]
    if same_pool:
        return same_pool[0].batch_id
    if move is not None and here:
        return moved_batch_job_id(job_id, move)
    return job_id


def exclusions_for(payload: Any, pools: Iterable[PoolSnapshot], job_id: str) -> dict[str, str] | None:
    """The pools a move action may not go to (None for any other action)."""
    record = move_record(payload)
    if record is None:
        return None
    return move_exclusions(pools, dict(record.get("left") or {}), record.get("regions"), job_id)


def requirements_of(
    payload: AddPayload, tasks: list[TaskDefinition] | None, data_regions: Mapping[str, str | None] | None = None
) -> Requirements:
    """What an add needs: its whole task group, or (a move) only the tasks that move; with where
    its inputs live (storage account -> region), for data locality."""
    job = payload.job
    defaults = {"native_default": payload.native_default, "windows_default": payload.windows_default}
    if tasks is None:
        return job_requirements(job, **defaults, data_regions=data_regions)
    group = summarize_tasks(tasks, job.federation_constraints.pool.container_registries)
    return resolve(job.federation_constraints, group, **defaults, data_regions=data_regions)


def prepare_move(proc: ActionProcessor, claim: Claim, payload: AddPayload) -> tuple[Claim, list[TaskDefinition]]:
    """Steps 1–3 (once; a retry reads the journal): the claim after them and the tasks that move."""
    a = claim.action
    record = move_record(a.payload)
    assert record is not None
    sources = a.progress.get("move_sources") or _sources_now(proc, a.federation_id, a.target_id, record)
    placed = placed_tasks(proc, a.federation_id, sources)
    if a.progress.get("move_ready"):
        keep = set(a.progress.get("moved_tasks") or ())
        return claim, tasks_to_move(placed, [t.id for t in placed if t.id not in keep])
    src = record["from"]
    batch_id = src.get("batch_job_id") or a.target_id  # the job as Batch knows it on the pool left
    account = proc.account_for(src["service_url"])
    rules = payload.job.federation_constraints.replacement
    try:
        account.terminate_job(batch_id, reason=f"moved: {record.get('why')}")
        listed = account.list_tasks(batch_id)
    except BatchNotFoundError:  # deleted outside the federation: nothing there finished for us
        listed = []
    finished = sorted(t.id for t in listed if done(TaskState(t.id, t.state, t.exit_code, t.failure_code), rules))
    moving = tasks_to_move(placed, finished)
    proc.store._crashpoint("move.terminated")  # test hook: kill -9 between the Batch calls and the journal
    proc.known_jobs.forget(src["service_url"], batch_id)
    try:
        proc.store.mark_terminated(
            a.federation_id, a.target_id, kind=ActionKind.JOB, batch_service_url=src["service_url"], pool_id=src["pool_id"]
        )
    except NotFoundError:  # the location was deleted meanwhile (a delete of the job raced the move)
        pass
    journal = {
        "move_ready": True,
        "move_sources": sources,
        "moved_tasks": [t.id for t in moving],
        "finished_tasks": len(finished),
    }
    claim = proc.journal(claim, journal)
    proc.store._crashpoint("move.journaled")  # test hook: kill -9 before the moving tasks are placed
    return claim, moving


def _sources_now(proc: ActionProcessor, federation_id: str, job_id: str, record: Mapping[str, Any]) -> list[str]:
    """The placements the move leaves: those its decision saw, and any task group of the job
    placed on that pool since (it ran ahead of the move in the job's FIFO, and the move's
    terminate ends its tasks too)."""
    src = record["from"]
    seen = list(record.get("sources") or [])
    for loc in proc.store.get_locations(federation_id, job_id, kind=ActionKind.JOB):
        if pool_key(loc.batch_service_url, loc.pool_id) == pool_key(src["service_url"], src["pool_id"]):
            seen += [u for u in loc.unique_ids if u not in seen]
    return seen


def placed_tasks(proc: ActionProcessor, federation_id: str, sources: Iterable[str]) -> list[TaskDefinition]:
    """The tasks the placements ``sources`` (action ids) put on their pool, as placed: an add's
    task group re-written as its placement did, a move's the tasks it carried."""
    fed, _ = proc._federation(federation_id)
    out: dict[str, TaskDefinition] = {}
    for aid in sources:
        action = proc.store.get_action(federation_id, aid)
        record = move_record(action.payload)
        if record is not None:
            keep = set(action.progress.get("moved_tasks") or ())
            inner = placed_tasks(proc, federation_id, action.progress.get("move_sources") or record.get("sources") or [])
            tasks = tasks_to_move(inner, [t.id for t in inner if t.id not in keep])
        else:
            spec = parse_add(action.payload, f"action {aid}").job
            highest = int(action.progress.get("generated_after", -1))
            collisions = set(action.progress.get("collisions") or ())
            rewritten = rewrite_for_placement(
                spec.task_definitions, unique_id=aid, unique_job_ids=fed.unique_job_ids, highest=highest
            )
            tasks = [t for t in rewritten if t.id not in collisions]
        for t in tasks:
            out.setdefault(t.id, t)
    return list(out.values())
