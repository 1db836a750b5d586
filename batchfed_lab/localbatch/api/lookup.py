"""Reading a request: its JSON body, the objects its path names (404 when absent) and their URLs."""

from __future__ import annotations

from .._util import id_key, not_found
from ..engine import Engine
from ..model import Job, Pool, Schedule, Task, require_dict
from . import support
from .messages import Request


def body_of(req: Request) -> dict:
    return require_dict(req.body if req.body is not None else {}, "body")


def screened_body(eng: Engine, req: Request, tree: support.Tree) -> dict:
    """The request body, with the properties localbatch cannot honour refused (strict) or dropped (--loose)."""
    body = body_of(req)
    support.screen(body, tree, loose=eng.options.loose, where=f"{req.method} {req.route}")
    return body


def find(objects: dict, ident: str, kind: str):
    found = objects.get(id_key(ident))
    if found is None:
        raise not_found(kind)
    return found


def pool_of(eng: Engine, req: Request) -> Pool:
    return find(eng.account(req.account).pools, req.args[0], "Pool")


def job_of(eng: Engine, req: Request) -> Job:
    return find(eng.account(req.account).jobs, req.args[0], "Job")


def task_of(eng: Engine, req: Request) -> Task:
    return find(job_of(eng, req).tasks, req.args[1], "Task")


def schedule_of(eng: Engine, req: Request) -> Schedule:
    return find(eng.account(req.account).schedules, req.args[0], "JobSchedule")


def job_url(req: Request, job: Job) -> str:
    return f"{req.base}/jobs/{job.doc['id']}"


def task_url(req: Request, job: Job, task: Task) -> str:
    return f"{req.base}/jobs/{job.doc['id']}/tasks/{task.doc['id']}"
