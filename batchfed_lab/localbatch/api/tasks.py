"""Task calls: add (one or a collection), list, get, replace, delete, terminate, reactivate and
subtasks."""

from __future__ import annotations

from pathlib import Path

from .._util import ApiError, exists, id_key, missing, parse_duration
from ..engine import Engine
from ..engine.exit_conditions import check_exit_conditions
from ..model import Job, opt_int, require_dict, validate_task
from . import support, views
from .lookup import body_of, job_of, job_url, screened_body, task_of, task_url
from .messages import Request, Response
from .replies import check_conditions, created, one, page, updated

MAX_TASKS_PER_COLLECTION = 100


def _job_accepts_tasks(job: Job) -> None:
    if job.state in ("completed", "terminating"):
        raise ApiError(409, "JobCompleted", "The specified job is already in a completed state.")
    if job.state == "deleting":
        raise ApiError(409, "JobBeingDeleted", "The specified job has been marked for deletion and is being reclaimed.")


def _check_dependencies(job: Job, fields: dict) -> None:
    check_exit_conditions(job.doc, fields)
    if fields.get("dependsOn") and not job.doc.get("usesTaskDependencies"):
        raise ApiError(
            409,
            "TaskDependenciesNotSpecifiedOnJob",
            "The task has dependencies but its job was not created with usesTaskDependencies set to true.",
        )


def add_task(eng: Engine, req: Request) -> Response:
    fields = validate_task(screened_body(eng, req, support.TASK))
    with eng.lock:
        job = job_of(eng, req)
        _job_accepts_tasks(job)
        _check_dependencies(job, fields)
        if id_key(fields["id"]) in job.tasks:
            raise exists("Task")
        with eng.store_batch():
            task = eng.add_task(job, fields)
        eng.wake()
        return created(task.doc, task_url(req, job, task))


def add_task_collection(eng: Engine, req: Request) -> Response:
    body = body_of(req)
    items = body.get("value")
    if not isinstance(items, list):
        raise missing("value")
    if len(items) > MAX_TASKS_PER_COLLECTION:
        raise ApiError(400, "TooManyTasksInCollection", f"A task collection holds at most {MAX_TASKS_PER_COLLECTION} tasks.")
    with eng.lock:
        job = job_of(eng, req)
        _job_accepts_tasks(job)
        results = []
        with eng.store_batch():
            for item in items:
                tid = item.get("id") if isinstance(item, dict) else None
                try:
                    support.screen(item, support.TASK, loose=eng.options.loose, where=f"task {tid} of {req.route}")
                    fields = validate_task(item)
                    _check_dependencies(job, fields)
                    if id_key(fields["id"]) in job.tasks:
                        raise exists("Task")
                    task = eng.add_task(job, fields)
                except ApiError as exc:
                    results.append({"status": "clienterror", "taskId": tid, "error": exc.body(req.request_id)})
                    continue
                results.append(
                    {
                        "status": "success",
                        "taskId": task.doc["id"],
                        "eTag": task.doc["eTag"],
                        "lastModified": task.doc["lastModified"],
                        "location": task_url(req, job, task),
                    }
                )
        eng.wake()
        return Response(200, {"value": results})


def list_tasks(eng: Engine, req: Request) -> Response:
    with eng.lock:
        job = job_of(eng, req)
        tasks_url = f"{job_url(req, job)}/tasks/"
        return page(req, [(t.seq, t.doc) for t in job.tasks.values()], lambda doc: tasks_url + doc["id"], views.task)


def get_task(eng: Engine, req: Request) -> Response:
    with eng.lock:
        task = task_of(eng, req)
        return one(req, task.doc, task_url(req, task.job, task), views.task)


def replace_task(eng: Engine, req: Request) -> Response:
    body = screened_body(eng, req, support.TASK_UPDATE)
    cons = require_dict(body.get("constraints") or {}, "constraints")
    if cons.get("maxWallClockTime") is not None:
        parse_duration(cons["maxWallClockTime"], "constraints.maxWallClockTime")
    if cons.get("retentionTime") is not None:
        parse_duration(cons["retentionTime"], "constraints.retentionTime")
    opt_int(cons, "maxTaskRetryCount", -1, 100, path="constraints.maxTaskRetryCount")
    with eng.lock:
        task = task_of(eng, req)
        check_conditions(req, task.doc)
        if task.state == "completed":
            raise ApiError(409, "TaskCompleted", "The specified task is already completed.")
        new = dict(cons)
        new.setdefault("maxTaskRetryCount", 0)
        task.doc["constraints"] = new
        eng.touch(task.doc)
        eng.save_task(task)
        return updated(task.doc, task_url(req, task.job, task))


def delete_task(eng: Engine, req: Request) -> Response:
    with eng.lock:
        task = task_of(eng, req)
        check_conditions(req, task.doc)
        with eng.store_batch():
            eng.delete_task(task)
        eng.wake()
        return Response(200)


def terminate_task(eng: Engine, req: Request) -> Response:
    with eng.lock:
        task = task_of(eng, req)
        check_conditions(req, task.doc)
        if task.state != "completed":
            with eng.store_batch():
                eng.end_task(task, "TaskEnded", "Task Was Ended by User Request")
        return Response(204)


def reactivate_task(eng: Engine, req: Request) -> Response:
    with eng.lock:
        task = task_of(eng, req)
        _job_accepts_tasks(task.job)
        if task.state != "completed" or task.doc["executionInfo"].get("result") != "failure":
            raise ApiError(
                409,
                "TaskNotCompletedOrFailed" if task.state != "completed" else "TaskCompletedSuccessfully",
                "Only tasks that completed with a failure can be reactivated.",
            )
        with eng.store_batch():
            eng.reactivate(task)
        return Response(204)


def list_subtasks(eng: Engine, req: Request) -> Response:
    with eng.lock:
        task = task_of(eng, req)
        root, url = eng.task_dir(task), task_url(req, task.job, task)
        return Response(200, {"value": [_subtask_doc(s, req.base, root, url) for s in task.subtasks]})


def _subtask_doc(sub: dict, base: str, root: Path, url: str) -> dict:
    """A finished instance as Batch lists it: where it ran (node URL, its own folder) and its
    state's last transition, from running to completed."""
    out = dict(sub)
    node = dict(out.get("nodeInfo") or {})
    if node.get("nodeId"):
        node.setdefault("affinityId", f"TVM:{node['nodeId']}")
        node.setdefault("nodeUrl", f"{base}/pools/{node.get('poolId')}/nodes/{node['nodeId']}")
    node.setdefault("taskRootDirectory", str(root / "subtasks" / str(out.get("id"))))
    node.setdefault("taskRootDirectoryUrl", f"{url}/files/subtasks/{out.get('id')}")
    out["nodeInfo"] = node
    if out.get("state") == "completed":
        out.setdefault("stateTransitionTime", out.get("endTime"))
        out.setdefault("previousState", "running")
        out.setdefault("previousStateTransitionTime", out.get("startTime"))
    return out
