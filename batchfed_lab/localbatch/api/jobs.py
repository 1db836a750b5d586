"""Job calls: create, list (all or a schedule's), get, update, terminate, delete, disable, enable
and task counts."""

from __future__ import annotations

from .._util import ApiError, id_key, invalid, missing, parse_duration
from ..engine import Engine
from ..model import Job, name_values, opt_enum, opt_int, require_dict, validate_job_spec
from . import support, views
from .lookup import job_of, job_url, schedule_of, screened_body
from .messages import Request, Response
from .replies import check_conditions, created, one, page, updated, with_url


def create_job(eng: Engine, req: Request) -> Response:
    fields = validate_job_spec(screened_body(eng, req, support.JOB), with_id=True)
    with eng.lock:
        with eng.store_batch():
            job = eng.add_job(eng.account(req.account), fields)
        return created(job.doc, f"{req.base}/jobs/{job.doc['id']}")


def list_jobs(eng: Engine, req: Request, schedule_key: str | None = None) -> Response:
    with eng.lock:
        jobs = sorted(eng.account(req.account).jobs.values(), key=lambda j: j.seq)
        if schedule_key is not None:
            jobs = [j for j in jobs if j.schedule_key == schedule_key]
        return page(req, [(j.seq, with_url(j.doc, job_url(req, j))) for j in jobs], view=views.job)


def list_schedule_jobs(eng: Engine, req: Request) -> Response:
    with eng.lock:
        sched = schedule_of(eng, req)
        return list_jobs(eng, req, sched.key)


def get_job(eng: Engine, req: Request) -> Response:
    with eng.lock:
        job = job_of(eng, req)
        return one(req, job.doc, job_url(req, job), views.job)


def _job_writable(job: Job) -> None:
    if job.state == "deleting":
        raise ApiError(409, "JobBeingDeleted", "The specified job has been marked for deletion and is being reclaimed.")
    if job.state == "terminating":
        raise ApiError(409, "JobBeingTerminated", "The specified job is being terminated.")
    if job.state == "completed":
        raise ApiError(409, "JobCompleted", "The specified job is already in a completed state.")


# == update =========================================================================================
def update_job(eng: Engine, req: Request) -> Response:
    """PATCH (only the given properties change) or PUT (the updatable properties are replaced)."""
    body = screened_body(eng, req, support.JOB_UPDATE)
    replace = req.method == "PUT"
    _validate_job_update(body)
    metadata = name_values(body, "metadata")
    with eng.lock:
        job = job_of(eng, req)
        _job_writable(job)
        check_conditions(req, job.doc)
        _apply_job_update(eng, job, body, metadata, replace)
        eng.touch(job.doc)
        with eng.store_batch():
            eng.save_job(job)
            eng.check_job_complete(job)
        eng.wake()
        return updated(job.doc, job_url(req, job))


def _validate_job_update(body: dict) -> None:
    """The checks that need no job: types and ranges of the given properties."""
    opt_int(body, "priority", -1000, 1000)
    mpt = body.get("maxParallelTasks")
    if mpt is not None and (isinstance(mpt, bool) or not isinstance(mpt, int) or (mpt != -1 and mpt < 1)):
        raise invalid("maxParallelTasks", "must be -1 (no limit) or at least 1", mpt)
    if body.get("onAllTasksComplete") is not None:
        opt_enum(body, "onAllTasksComplete", ("noaction", "terminatejob"), "noaction")
    if body.get("constraints") is not None:
        cons = require_dict(body["constraints"], "constraints")
        if cons.get("maxWallClockTime") is not None:
            parse_duration(cons["maxWallClockTime"], "constraints.maxWallClockTime")
        opt_int(cons, "maxTaskRetryCount", -1, 100, path="constraints.maxTaskRetryCount")


def _apply_job_update(eng: Engine, job: Job, body: dict, metadata: list | None, replace: bool) -> None:
    """Change the job's document; the checks that need the job's state happen here, before each change."""
    doc = job.doc
    on_all = body.get("onAllTasksComplete")
    if on_all is not None:
        if doc.get("onAllTasksComplete") == "terminatejob" and on_all.lower() == "noaction":
            raise invalid("onAllTasksComplete", "cannot change from terminatejob back to noaction", on_all)
        doc["onAllTasksComplete"] = on_all.lower()
    elif replace:
        doc["onAllTasksComplete"] = doc.get("onAllTasksComplete", "noaction")
    if body.get("poolInfo") is not None:
        pool_id = require_dict(body["poolInfo"], "poolInfo").get("poolId")
        if not isinstance(pool_id, str):
            raise missing("poolInfo.poolId")
        if id_key(pool_id) != job.pool_key and job.state != "disabled":
            raise ApiError(409, "JobNotDisabled", "A job's pool can only be changed while the job is disabled.")
        doc["poolInfo"] = {"poolId": pool_id}
    for prop, default in (("priority", 0), ("maxParallelTasks", -1), ("allowTaskPreemption", False)):
        if body.get(prop) is not None:
            doc[prop] = body[prop]
        elif replace:
            doc[prop] = default
    if body.get("constraints") is not None or replace:
        doc["constraints"] = dict(body.get("constraints") or {})
        doc["constraints"].setdefault("maxTaskRetryCount", 0)
        if doc["constraints"].get("maxWallClockTime"):
            eng.watch_wall_clock(job)
    if metadata is not None or replace:
        doc["metadata"] = metadata or []


# == state ==========================================================================================
def terminate_job(eng: Engine, req: Request) -> Response:
    body = req.body if isinstance(req.body, dict) else {}  # the body is optional here
    support.screen(body, support.JOB_TERMINATE, loose=eng.options.loose, where=f"{req.method} {req.route}")
    reason = body.get("terminateReason") or "UserTerminate"
    if not isinstance(reason, str):
        raise invalid("terminateReason", "must be a string", reason)
    with eng.lock:
        job = job_of(eng, req)
        check_conditions(req, job.doc)
        if job.state == "deleting":
            raise ApiError(409, "JobBeingDeleted", "The specified job has been marked for deletion and is being reclaimed.")
        if job.state == "completed":
            raise ApiError(409, "JobCompleted", "The specified job is already in a completed state.")
        with eng.store_batch():
            eng.terminate_job(job, reason)
        return Response(202)


def delete_job(eng: Engine, req: Request) -> Response:
    with eng.lock:
        job = job_of(eng, req)
        check_conditions(req, job.doc)
        eng.delete_job(job)
        return Response(202)


def disable_job(eng: Engine, req: Request) -> Response:
    body = screened_body(eng, req, support.JOB_DISABLE)
    option = opt_enum(body, "disableTasks", ("requeue", "terminate", "wait"), "requeue")
    with eng.lock:
        job = job_of(eng, req)
        if job.state not in ("active", "disabling", "disabled"):
            raise ApiError(409, "InvalidJobState", f"The job is {job.state}; only active jobs can be disabled.")
        with eng.store_batch():
            for task in job.tasks.values():
                if task.state == "running" and option != "wait":
                    if option == "terminate":
                        eng.end_task(task, "TaskEnded", "The task was ended because its job was disabled (terminate).")
                    else:
                        eng.requeue(task, count=True)
            eng.set_state(job.doc, "disabling")
            eng.set_state(job.doc, "disabled")
            eng.touch(job.doc)
            eng.save_job(job)
        return Response(202)


def enable_job(eng: Engine, req: Request) -> Response:
    with eng.lock:
        job = job_of(eng, req)
        if job.state not in ("disabled", "disabling", "enabling", "active"):
            raise ApiError(409, "InvalidJobState", f"The job is {job.state}; only disabled jobs can be enabled.")
        eng.set_state(job.doc, "enabling")
        eng.set_state(job.doc, "active")
        eng.touch(job.doc)
        eng.save_job(job)
        eng.wake()
        return Response(202)


def task_counts(eng: Engine, req: Request) -> Response:
    with eng.lock:
        job = job_of(eng, req)
        counts = dict.fromkeys(("active", "running", "completed", "succeeded", "failed"), 0)
        slots = dict(counts)
        for task in job.tasks.values():
            state = "active" if task.state == "preparing" else task.state
            n = task.doc.get("requiredSlots", 1)
            counts[state] += 1
            slots[state] += n
            if state == "completed":
                ok = "succeeded" if task.doc["executionInfo"].get("result") == "success" else "failed"
                counts[ok] += 1
                slots[ok] += n
        return Response(200, {"taskCounts": counts, "taskSlotCounts": slots})
