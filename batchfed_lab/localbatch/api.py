"""The REST operations: one function per Batch call, taking a parsed :class:`Request`.

Each function validates its input, changes the engine's state under the engine lock and returns
a :class:`Response` with the status code the azure-batch 15.1.0 SDK expects for that call
(201 create, 202 delete/terminate/resize, 204 for the void POSTs it declares so, 200 otherwise).
"""

from __future__ import annotations

import json
import mimetypes
import os
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from email.utils import formatdate
from pathlib import Path
from urllib.parse import urlencode

from . import odata
from ._util import (
    API_VERSION,
    ApiError,
    exists,
    format_duration,
    id_key,
    invalid,
    iso,
    iso_now,
    missing,
    not_found,
    parse_duration,
    parse_iso,
)
from .engine import Engine, default_pool_doc
from .formula import DEALLOCATION_OPTIONS, Formula, FormulaError, parse as parse_formula
from .model import (
    MAX_NODES_PER_POOL,
    MAX_TASK_SLOTS_PER_NODE,
    NODE_FILL_TYPES,
    RELAXED_MIN_INTERVAL,
    STRICT_MIN_RECURRENCE,
    Job,
    Pool,
    Schedule,
    Task,
    autoscale_interval,
    name_values,
    opt_bool,
    opt_enum,
    opt_int,
    req_id,
    require_dict,
    validate_job_spec,
    validate_task,
    validate_vm_configuration,
)

MAX_RESULTS = 1000
MAX_TASKS_PER_COLLECTION = 100
VERSION = "1.0.0"


@dataclass
class Request:
    method: str
    account: str
    route: str  # the path below /accounts/<account>, as received (for next links)
    args: tuple[str, ...]  # unquoted path parameters
    query: dict[str, str]
    body: object
    headers: dict[str, str]  # lower-case names
    base: str  # http://127.0.0.1:<port>/accounts/<account>
    request_id: str = ""


@dataclass
class Response:
    status: int
    body: object = None  # dict -> JSON, bytes -> as is
    headers: dict[str, str] = field(default_factory=dict)


def _formula(text: object) -> Formula:
    """Parse a formula from a request body, or answer 400 as Batch does for a bad one."""
    if not isinstance(text, str) or not text.strip():
        raise missing("autoScaleFormula")
    try:
        return parse_formula(text)
    except FormulaError as exc:
        raise ApiError(
            400,
            "AutoScalingFormulaSyntaxError",
            f"The autoscale formula is not supported by localbatch: {exc}.",
            {"Message": str(exc), "Formula": text[:200]},
        ) from None


# == shared pieces ==================================================================================
def _created(doc: dict, url: str) -> Response:
    return Response(201, None, {"Location": url, "ETag": doc["eTag"], "Last-Modified": _http_date(doc), "DataServiceId": url})


def _http_date(doc: dict) -> str:
    return formatdate(parse_iso(doc["lastModified"]).timestamp(), usegmt=True)


def _check_conditions(req: Request, doc: dict) -> None:
    """If-Match / If-None-Match against the object's eTag (412 / 304 as Batch answers)."""
    match = req.headers.get("if-match")
    if match and match != "*" and match.strip('"') != doc.get("eTag"):
        raise ApiError(412, "ConditionNotMet", "The condition specified using HTTP conditional header(s) is not met.")
    none_match = req.headers.get("if-none-match")
    if none_match and (none_match == "*" or none_match.strip('"') == doc.get("eTag")):
        if req.method in ("GET", "HEAD"):
            raise ApiError(304, "ConditionNotMet", "The condition specified using HTTP conditional header(s) is not met.")
        raise ApiError(412, "ConditionNotMet", "The condition specified using HTTP conditional header(s) is not met.")


def _one(req: Request, doc: dict, url: str) -> Response:
    _check_conditions(req, doc)
    out = dict(doc)
    out["url"] = url
    out = odata.project(out, odata.parse_select(req.query.get("$select")))
    return Response(200, None if req.method == "HEAD" else out, {"ETag": doc["eTag"], "Last-Modified": _http_date(doc)})


def _page(req: Request, items: Iterable[tuple[int, dict]], url_of: Callable[[dict], str] | None = None) -> Response:
    """Filter, select and page (seq, doc) items in seq order. Docs carry their url, or
    ``url_of`` gives it for the docs that make the page only (a page of 10 out of a job's
    thousands of tasks must not copy them all)."""
    pred = odata.parse_filter(req.query.get("$filter"))
    select = odata.parse_select(req.query.get("$select"))
    try:
        limit = int(req.query.get("maxresults") or MAX_RESULTS)
    except ValueError:
        raise odata.bad_query("maxresults", req.query.get("maxresults", ""), "must be an integer") from None
    if not 1 <= limit <= MAX_RESULTS:
        raise ApiError(400, "OutOfRangeQueryParameterValue", "maxresults must be from 1 to 1000.", {"QueryParameterName": "maxresults"})
    after = 0
    token = req.query.get("$skiptoken")
    if token:
        if not re.match(r"^seq:\d+$", token):
            raise odata.bad_query("$skiptoken", token, "not a token this service issued")
        after = int(token[4:])
    values: list[dict] = []
    next_link = None
    for seq, doc in items:
        if seq <= after or (pred is not None and not pred(doc)):
            continue
        if len(values) == limit:
            params = {k: v for k, v in req.query.items() if k != "$skiptoken"}
            params["$skiptoken"] = f"seq:{last_seq}"
            params.setdefault("api-version", API_VERSION)
            next_link = f"{req.base}{req.route}?{urlencode(params)}"
            break
        values.append(odata.project(doc if url_of is None else _with_url(doc, url_of(doc)), select))
        last_seq = seq
    body: dict = {"value": values}
    if next_link:
        body["odata.nextLink"] = next_link
    return Response(200, body)


def _with_url(doc: dict, url: str) -> dict:
    out = dict(doc)
    out["url"] = url
    return out


def _get(objects: dict, ident: str, kind: str):
    found = objects.get(id_key(ident))
    if found is None:
        raise not_found(kind)
    return found


def _pool(eng: Engine, req: Request) -> Pool:
    return _get(eng.account(req.account).pools, req.args[0], "Pool")


def _job(eng: Engine, req: Request) -> Job:
    return _get(eng.account(req.account).jobs, req.args[0], "Job")


def _task(eng: Engine, req: Request) -> Task:
    return _get(_job(eng, req).tasks, req.args[1], "Task")


def _schedule(eng: Engine, req: Request) -> Schedule:
    return _get(eng.account(req.account).schedules, req.args[0], "JobSchedule")


def _body(req: Request) -> dict:
    return require_dict(req.body if req.body is not None else {}, "body")


def _pool_writable(pool: Pool) -> None:
    if pool.doc.get("state") == "deleting":
        raise ApiError(409, "PoolBeingDeleted", "The specified pool has been marked for deletion and is being reclaimed.")


# == pools ==========================================================================================
def create_pool(eng: Engine, req: Request) -> Response:
    body = _body(req)
    pid = req_id(body)
    vm_size = body.get("vmSize")
    if not isinstance(vm_size, str) or not vm_size:
        raise missing("vmSize")
    vmc = validate_vm_configuration(body)
    slots = opt_int(body, "taskSlotsPerNode", 1, MAX_TASK_SLOTS_PER_NODE, 1)
    autoscale = opt_bool(body, "enableAutoScale")
    fields = {"id": pid, "vmSize": vm_size, "virtualMachineConfiguration": vmc, "taskSlotsPerNode": slots}
    formula = None
    if autoscale:
        for prop in ("targetDedicatedNodes", "targetLowPriorityNodes"):
            if body.get(prop) is not None:
                raise invalid(prop, "must not be given when enableAutoScale is true", body[prop])
        formula = _formula(body.get("autoScaleFormula"))
        fields.update(enableAutoScale=True, autoScaleFormula=formula.text)
        fields["autoScaleEvaluationInterval"] = body.get("autoScaleEvaluationInterval") or "PT15M"
        autoscale_interval(fields["autoScaleEvaluationInterval"], eng.options.relaxed_limits)
    else:
        for prop in ("autoScaleFormula", "autoScaleEvaluationInterval"):
            if body.get(prop) is not None:
                raise invalid(prop, "is only allowed when enableAutoScale is true", body[prop])
    dedicated = opt_int(body, "targetDedicatedNodes", 0, MAX_NODES_PER_POOL, 0) or 0
    low = opt_int(body, "targetLowPriorityNodes", 0, MAX_NODES_PER_POOL, 0) or 0
    if dedicated + low > MAX_NODES_PER_POOL:
        raise invalid("targetDedicatedNodes", f"localbatch pools hold at most {MAX_NODES_PER_POOL} nodes", dedicated + low)
    if body.get("resizeTimeout") is not None:
        parse_duration(body["resizeTimeout"], "resizeTimeout")
        fields["resizeTimeout"] = body["resizeTimeout"]
    fields["enableInterNodeCommunication"] = opt_bool(body, "enableInterNodeCommunication")
    policy = body.get("taskSchedulingPolicy")
    if policy is not None:
        opt_enum(require_dict(policy, "taskSchedulingPolicy"), "nodeFillType", NODE_FILL_TYPES, "spread")
        fields["taskSchedulingPolicy"] = {"nodeFillType": policy.get("nodeFillType", "spread").lower()}
    net = body.get("networkConfiguration")
    if net is not None:
        net = require_dict(net, "networkConfiguration")
        if net.get("subnetId") is not None and not isinstance(net.get("subnetId"), str):
            raise invalid("networkConfiguration.subnetId", "must be a string", net.get("subnetId"))
    for prop in ("displayName", "networkConfiguration", "startTask", "userAccounts", "mountConfiguration", "upgradePolicy"):
        if body.get(prop) is not None:
            fields[prop] = body[prop]
    metadata = name_values(body, "metadata")
    if metadata is not None:
        fields["metadata"] = metadata
    with eng.lock:
        acct = eng.account(req.account)
        if id_key(pid) in acct.pools:
            raise exists("Pool")
        doc = default_pool_doc(fields)
        pool = Pool(req.account, id_key(pid), eng.next_seq(), doc)
        acct.pools[pool.key] = pool
        with eng.store_batch():
            eng.save_pool(pool)
            if formula is not None:
                pool.formula = formula
                eng.autoscale_now(pool)  # Azure evaluates the formula when the pool is created
            else:
                eng.request_resize(pool, dedicated, low, "requeue")
        return _created(pool.doc, f"{req.base}/pools/{pid}")


def list_pools(eng: Engine, req: Request) -> Response:
    with eng.lock:
        pools = eng.account(req.account).pools.values()
        items = [(p.seq, _with_url(p.doc, f"{req.base}/pools/{p.doc['id']}")) for p in sorted(pools, key=lambda p: p.seq)]
        return _page(req, items)


def get_pool(eng: Engine, req: Request) -> Response:
    with eng.lock:
        pool = _pool(eng, req)
        return _one(req, pool.doc, f"{req.base}/pools/{pool.doc['id']}")


def delete_pool(eng: Engine, req: Request) -> Response:
    with eng.lock:
        pool = _pool(eng, req)
        _check_conditions(req, pool.doc)
        with eng.store_batch():
            eng.delete_pool(pool)
        return Response(202)


def update_pool(eng: Engine, req: Request, replace: bool = False) -> Response:
    """PATCH /pools/{id} (update_pool) and POST .../updateproperties (replace_pool_properties)."""
    body = _body(req)
    metadata = name_values(body, "metadata")
    with eng.lock:
        pool = _pool(eng, req)
        _pool_writable(pool)
        _check_conditions(req, pool.doc)
        if replace:
            pool.doc["metadata"] = metadata or []
            pool.doc.pop("startTask", None)
        elif metadata is not None:
            pool.doc["metadata"] = metadata
        if body.get("startTask") is not None:
            pool.doc["startTask"] = body["startTask"]
        if not replace:
            if body.get("displayName") is not None:
                pool.doc["displayName"] = body["displayName"]
            if body.get("taskSlotsPerNode") is not None:
                pool.doc["taskSlotsPerNode"] = opt_int(body, "taskSlotsPerNode", 1, MAX_TASK_SLOTS_PER_NODE)
        eng.touch(pool.doc)
        eng.save_pool(pool)
        eng.wake()
        return Response(204 if replace else 200, None, {"ETag": pool.doc["eTag"]})


def replace_pool_properties(eng: Engine, req: Request) -> Response:
    return update_pool(eng, req, replace=True)


def resize_pool(eng: Engine, req: Request) -> Response:
    body = _body(req)
    ded = opt_int(body, "targetDedicatedNodes", 0, MAX_NODES_PER_POOL)
    low = opt_int(body, "targetLowPriorityNodes", 0, MAX_NODES_PER_POOL)
    option = opt_enum(body, "nodeDeallocationOption", DEALLOCATION_OPTIONS, "requeue")
    if body.get("resizeTimeout") is not None:
        parse_duration(body["resizeTimeout"], "resizeTimeout")
    with eng.lock:
        pool = _pool(eng, req)
        _pool_writable(pool)
        _check_conditions(req, pool.doc)
        if pool.doc.get("enableAutoScale"):
            raise ApiError(409, "AutoScalingEnabled", "The pool has automatic scaling enabled; disable it before resizing by hand.")
        if pool.doc.get("allocationState") == "stopping":
            raise ApiError(409, "PoolNotSteady", "The pool is stopping a resize; try again when it is steady.")
        ded = pool.doc.get("targetDedicatedNodes", 0) if ded is None else ded
        low = pool.doc.get("targetLowPriorityNodes", 0) if low is None else low
        if ded + low > MAX_NODES_PER_POOL:
            raise invalid("targetDedicatedNodes", f"localbatch pools hold at most {MAX_NODES_PER_POOL} nodes", ded + low)
        with eng.store_batch():
            eng.request_resize(pool, ded, low, option)
        return Response(202)


def stop_resize(eng: Engine, req: Request) -> Response:
    with eng.lock:
        pool = _pool(eng, req)
        _pool_writable(pool)
        if pool.resize is not None:
            pool.resize = None
            _targets_are_current_nodes(pool)
        with eng.store_batch():
            eng.touch(pool.doc)
            eng.save_pool(pool)
            eng.wake()
        return Response(202)


def _targets_are_current_nodes(pool: Pool) -> None:
    staying = [n for n in pool.nodes if not n.leaving]
    pool.doc["targetDedicatedNodes"] = sum(1 for n in staying if n.dedicated)
    pool.doc["targetLowPriorityNodes"] = sum(1 for n in staying if not n.dedicated)


def remove_nodes(eng: Engine, req: Request) -> Response:
    body = _body(req)
    ids = body.get("nodeList")
    if not isinstance(ids, list) or not ids:
        raise missing("nodeList")
    option = opt_enum(body, "nodeDeallocationOption", DEALLOCATION_OPTIONS, "requeue")
    with eng.lock:
        pool = _pool(eng, req)
        _pool_writable(pool)
        by_id = {n.id: n for n in pool.nodes}
        missing_ids = [i for i in ids if i not in by_id]
        if missing_ids:
            raise ApiError(404, "NodeNotFound", f"The specified node does not exist: {missing_ids[0]}.")
        with eng.store_batch():
            for i in ids:
                eng._remove_node(pool, by_id[i], option)
            _targets_are_current_nodes(pool)
            eng._refresh_pool_counts(pool)
            eng.touch(pool.doc)
            eng.save_pool(pool)
        eng.wake()
        return Response(202)


def enable_autoscale(eng: Engine, req: Request) -> Response:
    body = _body(req)
    text = body.get("autoScaleFormula")
    interval = body.get("autoScaleEvaluationInterval")
    if interval is not None:
        autoscale_interval(interval, eng.options.relaxed_limits)
    with eng.lock:
        pool = _pool(eng, req)
        _pool_writable(pool)
        _check_conditions(req, pool.doc)
        formula = _formula(text if text is not None else pool.doc.get("autoScaleFormula"))
        pool.doc.update(enableAutoScale=True, autoScaleFormula=formula.text)
        pool.doc["autoScaleEvaluationInterval"] = interval or pool.doc.get("autoScaleEvaluationInterval") or "PT15M"
        pool.formula = formula
        with eng.store_batch():
            eng.autoscale_now(pool)
        return Response(200, None, {"ETag": pool.doc["eTag"]})


def disable_autoscale(eng: Engine, req: Request) -> Response:
    with eng.lock:
        pool = _pool(eng, req)
        _pool_writable(pool)
        pool.doc["enableAutoScale"] = False
        for k in ("autoScaleFormula", "autoScaleEvaluationInterval", "autoScaleRun"):
            pool.doc.pop(k, None)
        pool.formula = None
        pool.next_autoscale = None
        eng.touch(pool.doc)
        eng.save_pool(pool)
        return Response(200, None, {"ETag": pool.doc["eTag"]})


def evaluate_autoscale(eng: Engine, req: Request) -> Response:
    formula = _formula(_body(req).get("autoScaleFormula"))
    with eng.lock:
        pool = _pool(eng, req)
        if not pool.doc.get("enableAutoScale"):
            raise ApiError(409, "AutoScalingNotEnabled", "The pool does not have automatic scaling enabled; evaluation needs it.")
        _result, run = eng.evaluate(pool, formula)
        return Response(200, run)


def list_nodes(eng: Engine, req: Request) -> Response:
    with eng.lock:
        pool = _pool(eng, req)
        return _page(req, [(i + 1, eng.node_doc(pool, n)) for i, n in enumerate(pool.nodes)])


def get_node(eng: Engine, req: Request) -> Response:
    with eng.lock:
        pool = _pool(eng, req)
        node = next((n for n in pool.nodes if n.id == req.args[1]), None)
        if node is None:
            raise not_found("Node")
        doc = eng.node_doc(pool, node)
        return Response(200, odata.project(doc, odata.parse_select(req.query.get("$select"))))


_COUNT_FIELDS = (
    "creating", "idle", "offline", "preempted", "rebooting", "reimaging", "running", "starting",
    "startTaskFailed", "leavingPool", "unknown", "unusable", "waitingForStartTask", "deallocated",
    "deallocating", "total", "upgradingOS",
)


def node_counts(eng: Engine, req: Request) -> Response:
    with eng.lock:
        items = []
        for pool in sorted(eng.account(req.account).pools.values(), key=lambda p: p.seq):
            doc: dict = {"poolId": pool.doc["id"]}
            for name, dedicated in (("dedicated", True), ("lowPriority", False)):
                counts = dict.fromkeys(_COUNT_FIELDS, 0)
                for node in pool.nodes:
                    if node.dedicated == dedicated:
                        counts[{"leavingpool": "leavingPool"}.get(node.state, node.state)] += 1
                        counts["total"] += 1
                doc[name] = counts
            items.append((pool.seq, doc))
        return _page(req, items)


def preempt(eng: Engine, req: Request) -> Response:
    """Admin: preempt low-priority nodes now (body: optional nodeIds, durationSeconds)."""
    body = _body(req)
    ids = body.get("nodeIds")
    if ids is not None and (not isinstance(ids, list) or not all(isinstance(i, str) for i in ids)):
        raise invalid("nodeIds", "must be a list of node ids", ids)
    seconds = body.get("durationSeconds", 2.0)
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not 0 <= seconds <= 86400:
        raise invalid("durationSeconds", "must be a number of seconds from 0 to 86400", seconds)
    with eng.lock:
        pool = _pool(eng, req)
        with eng.store_batch():
            return Response(200, eng.preempt(pool, ids, float(seconds)))


def autoscale_admin(eng: Engine, req: Request) -> Response:
    """Admin: evaluate and apply the pool's autoscale formula now, without waiting for its interval."""
    with eng.lock:
        pool = _pool(eng, req)
        if pool.formula is None:
            raise ApiError(409, "AutoScalingNotEnabled", "The pool does not have automatic scaling enabled.")
        with eng.store_batch():
            return Response(200, eng.autoscale_now(pool))


def server_info(eng: Engine, req: Request) -> Response:
    """Admin: who is answering (no secrets)."""
    return Response(200, {"service": "localbatch", "version": VERSION, "apiVersion": API_VERSION, "account": req.account,
                          "pid": os.getpid(), "relaxedLimits": eng.options.relaxed_limits})


# == jobs ===========================================================================================
def create_job(eng: Engine, req: Request) -> Response:
    fields = validate_job_spec(_body(req), with_id=True)
    with eng.lock:
        with eng.store_batch():
            job = eng.add_job(eng.account(req.account), fields)
        return _created(job.doc, f"{req.base}/jobs/{job.doc['id']}")


def _job_url(req: Request, job: Job) -> str:
    return f"{req.base}/jobs/{job.doc['id']}"


def list_jobs(eng: Engine, req: Request, schedule_key: str | None = None) -> Response:
    with eng.lock:
        jobs = sorted(eng.account(req.account).jobs.values(), key=lambda j: j.seq)
        if schedule_key is not None:
            jobs = [j for j in jobs if j.schedule_key == schedule_key]
        return _page(req, [(j.seq, _with_url(j.doc, _job_url(req, j))) for j in jobs])


def list_schedule_jobs(eng: Engine, req: Request) -> Response:
    with eng.lock:
        sched = _schedule(eng, req)
        return list_jobs(eng, req, sched.key)


def get_job(eng: Engine, req: Request) -> Response:
    with eng.lock:
        job = _job(eng, req)
        return _one(req, job.doc, _job_url(req, job))


def _job_writable(job: Job) -> None:
    if job.state == "deleting":
        raise ApiError(409, "JobBeingDeleted", "The specified job has been marked for deletion and is being reclaimed.")
    if job.state == "terminating":
        raise ApiError(409, "JobBeingTerminated", "The specified job is being terminated.")
    if job.state == "completed":
        raise ApiError(409, "JobCompleted", "The specified job is already in a completed state.")


def update_job(eng: Engine, req: Request) -> Response:
    """PATCH (only the given properties change) or PUT (the updatable properties are replaced)."""
    body = _body(req)
    replace = req.method == "PUT"
    opt_int(body, "priority", -1000, 1000)
    mpt = body.get("maxParallelTasks")
    if mpt is not None and (isinstance(mpt, bool) or not isinstance(mpt, int) or (mpt != -1 and mpt < 1)):
        raise invalid("maxParallelTasks", "must be -1 (no limit) or at least 1", mpt)
    on_all = body.get("onAllTasksComplete")
    if on_all is not None:
        opt_enum(body, "onAllTasksComplete", ("noaction", "terminatejob"), "noaction")
    if body.get("constraints") is not None:
        cons = require_dict(body["constraints"], "constraints")
        if cons.get("maxWallClockTime") is not None:
            parse_duration(cons["maxWallClockTime"], "constraints.maxWallClockTime")
        opt_int(cons, "maxTaskRetryCount", -1, 100, path="constraints.maxTaskRetryCount")
    metadata = name_values(body, "metadata")
    with eng.lock:
        job = _job(eng, req)
        _job_writable(job)
        _check_conditions(req, job.doc)
        doc = job.doc
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
                eng._timed_jobs.add(job)
        if metadata is not None or replace:
            doc["metadata"] = metadata or []
        eng.touch(doc)
        with eng.store_batch():
            eng.save_job(job)
            eng.check_job_complete(job)
        eng.wake()
        return Response(200, None, {"ETag": doc["eTag"]})


def terminate_job(eng: Engine, req: Request) -> Response:
    body = req.body if isinstance(req.body, dict) else {}
    reason = body.get("terminateReason") or "UserTerminate"
    if not isinstance(reason, str):
        raise invalid("terminateReason", "must be a string", reason)
    with eng.lock:
        job = _job(eng, req)
        _check_conditions(req, job.doc)
        if job.state == "deleting":
            raise ApiError(409, "JobBeingDeleted", "The specified job has been marked for deletion and is being reclaimed.")
        if job.state == "completed":
            raise ApiError(409, "JobCompleted", "The specified job is already in a completed state.")
        with eng.store_batch():
            eng.terminate_job(job, reason)
        return Response(202)


def delete_job(eng: Engine, req: Request) -> Response:
    with eng.lock:
        job = _job(eng, req)
        _check_conditions(req, job.doc)
        eng.delete_job(job)
        return Response(202)


def disable_job(eng: Engine, req: Request) -> Response:
    body = _body(req)
    option = opt_enum(body, "disableTasks", ("requeue", "terminate", "wait"), "requeue")
    with eng.lock:
        job = _job(eng, req)
        if job.state not in ("active", "disabling", "disabled"):
            raise ApiError(409, "InvalidJobState", f"The job is {job.state}; only active jobs can be disabled.")
        with eng.store_batch():
            for task in job.tasks.values():
                if task.state == "running" and option != "wait":
                    if option == "terminate":
                        eng.end_task(task, "TaskEnded", "The task was ended because its job was disabled (terminate).")
                    else:
                        eng._requeue(task, count=True)
            eng.set_state(job.doc, "disabling")
            eng.set_state(job.doc, "disabled")
            eng.touch(job.doc)
            eng.save_job(job)
        return Response(202)


def enable_job(eng: Engine, req: Request) -> Response:
    with eng.lock:
        job = _job(eng, req)
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
        job = _job(eng, req)
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


# == tasks ==========================================================================================
def _job_accepts_tasks(job: Job) -> None:
    if job.state in ("completed", "terminating"):
        raise ApiError(409, "JobCompleted", "The specified job is already in a completed state.")
    if job.state == "deleting":
        raise ApiError(409, "JobBeingDeleted", "The specified job has been marked for deletion and is being reclaimed.")


def _check_dependencies(job: Job, fields: dict) -> None:
    if fields.get("dependsOn") and not job.doc.get("usesTaskDependencies"):
        raise ApiError(
            409,
            "TaskDependenciesNotSpecifiedOnJob",
            "The task has dependencies but its job was not created with usesTaskDependencies set to true.",
        )


def _task_url(req: Request, job: Job, task: Task) -> str:
    return f"{req.base}/jobs/{job.doc['id']}/tasks/{task.doc['id']}"


def add_task(eng: Engine, req: Request) -> Response:
    fields = validate_task(_body(req))
    with eng.lock:
        job = _job(eng, req)
        _job_accepts_tasks(job)
        _check_dependencies(job, fields)
        if id_key(fields["id"]) in job.tasks:
            raise exists("Task")
        with eng.store_batch():
            task = eng.add_task(job, fields)
        eng.wake()
        return _created(task.doc, _task_url(req, job, task))


def add_task_collection(eng: Engine, req: Request) -> Response:
    body = _body(req)
    items = body.get("value")
    if not isinstance(items, list):
        raise missing("value")
    if len(items) > MAX_TASKS_PER_COLLECTION:
        raise ApiError(400, "TooManyTasksInCollection", f"A task collection holds at most {MAX_TASKS_PER_COLLECTION} tasks.")
    with eng.lock:
        job = _job(eng, req)
        _job_accepts_tasks(job)
        results = []
        with eng.store_batch():
            for item in items:
                tid = item.get("id") if isinstance(item, dict) else None
                try:
                    fields = validate_task(item)
                    _check_dependencies(job, fields)
                    if id_key(fields["id"]) in job.tasks:
                        raise exists("Task")
                    task = eng.add_task(job, fields)
                except ApiError as exc:
                    results.append({"status": "clienterror", "taskId": tid, "error": exc.body(req.request_id)})
                    continue
                results.append({"status": "success", "taskId": task.doc["id"], "eTag": task.doc["eTag"],
                                "lastModified": task.doc["lastModified"], "location": _task_url(req, job, task)})
        eng.wake()
        return Response(200, {"value": results})


def list_tasks(eng: Engine, req: Request) -> Response:
    with eng.lock:
        job = _job(eng, req)
        tasks_url = f"{_job_url(req, job)}/tasks/"
        return _page(req, [(t.seq, t.doc) for t in job.tasks.values()], lambda doc: tasks_url + doc["id"])


def get_task(eng: Engine, req: Request) -> Response:
    with eng.lock:
        task = _task(eng, req)
        return _one(req, task.doc, _task_url(req, task.job, task))


def replace_task(eng: Engine, req: Request) -> Response:
    body = _body(req)
    cons = require_dict(body.get("constraints") or {}, "constraints")
    if cons.get("maxWallClockTime") is not None:
        parse_duration(cons["maxWallClockTime"], "constraints.maxWallClockTime")
    if cons.get("retentionTime") is not None:
        parse_duration(cons["retentionTime"], "constraints.retentionTime")
    opt_int(cons, "maxTaskRetryCount", -1, 100, path="constraints.maxTaskRetryCount")
    with eng.lock:
        task = _task(eng, req)
        _check_conditions(req, task.doc)
        if task.state == "completed":
            raise ApiError(409, "TaskCompleted", "The specified task is already completed.")
        new = dict(cons)
        new.setdefault("maxTaskRetryCount", 0)
        task.doc["constraints"] = new
        eng.touch(task.doc)
        eng.save_task(task)
        return Response(200, None, {"ETag": task.doc["eTag"]})


def delete_task(eng: Engine, req: Request) -> Response:
    with eng.lock:
        task = _task(eng, req)
        _check_conditions(req, task.doc)
        with eng.store_batch():
            eng.delete_task(task)
        eng.wake()
        return Response(200)


def terminate_task(eng: Engine, req: Request) -> Response:
    with eng.lock:
        task = _task(eng, req)
        _check_conditions(req, task.doc)
        if task.state != "completed":
            with eng.store_batch():
                eng.end_task(task, "TaskEnded", "Task Was Ended by User Request")
        return Response(204)


def reactivate_task(eng: Engine, req: Request) -> Response:
    with eng.lock:
        task = _task(eng, req)
        _job_accepts_tasks(task.job)
        if task.state != "completed" or task.doc["executionInfo"].get("result") != "failure":
            raise ApiError(409, "TaskNotCompletedOrFailed" if task.state != "completed" else "TaskCompletedSuccessfully",
                           "Only tasks that completed with a failure can be reactivated.")
        with eng.store_batch():
            eng.reactivate(task)
        return Response(204)


def list_subtasks(eng: Engine, req: Request) -> Response:
    with eng.lock:
        task = _task(eng, req)
        return Response(200, {"value": [dict(s) for s in task.subtasks]})


# -- task files ---------------------------------------------------------------------------------
def _safe_path(root: Path, rel: str) -> Path:
    """Resolve ``rel`` under ``root``; refuse anything that would leave it (.., absolute, links)."""
    parts = [p for p in rel.replace("\\", "/").split("/") if p not in ("", ".")]
    if rel.startswith("/") or ".." in parts or "\0" in rel:
        raise ApiError(400, "InvalidUri", "The file path must stay inside the task folder.", {"FilePath": rel[:200]})
    base = root.resolve()
    target = (base / "/".join(parts)).resolve()
    if target != base and base not in target.parents:
        raise ApiError(400, "InvalidUri", "The file path must stay inside the task folder.", {"FilePath": rel[:200]})
    return target


def _file_props(path: Path) -> dict:
    st = path.stat()
    created = iso(_dt_from(st.st_ctime))
    return {
        "creationTime": created,
        "lastModified": iso(_dt_from(st.st_mtime)),
        "contentLength": 0 if path.is_dir() else st.st_size,
        "contentType": "application/octet-stream",
        "fileMode": oct(st.st_mode & 0o777)[2:].rjust(4, "0"),
    }


def _dt_from(t: float):
    import datetime as _dt

    return _dt.datetime.fromtimestamp(t, _dt.timezone.utc)


def list_task_files(eng: Engine, req: Request) -> Response:
    with eng.lock:
        task = _task(eng, req)
        root = eng.task_dir(task)
        files_url = f"{_task_url(req, task.job, task)}/files"
    recursive = req.query.get("recursive", "false").lower() == "true"
    items: list[tuple[int, dict]] = []
    if root.is_dir():
        paths = sorted(root.rglob("*") if recursive else root.iterdir())
        for i, path in enumerate(paths):
            rel = path.relative_to(root).as_posix()
            try:
                props = _file_props(path)
            except OSError:
                continue  # removed while listing
            items.append((i + 1, {"name": rel, "url": f"{files_url}/{rel}", "isDirectory": path.is_dir(), "properties": props}))
    return _page(req, items)


def get_task_file(eng: Engine, req: Request) -> Response:
    with eng.lock:
        task = _task(eng, req)
        root = eng.task_dir(task)
        url = f"{_task_url(req, task.job, task)}/files/{req.args[2]}"
    path = _safe_path(root, req.args[2])
    if not path.is_file():
        raise not_found("File")
    props = _file_props(path)
    headers = {
        "Content-Type": mimetypes.guess_type(path.name)[0] or "application/octet-stream",
        "ocp-creation-time": formatdate(path.stat().st_ctime, usegmt=True),
        "ocp-batch-file-isdirectory": "false",
        "ocp-batch-file-url": url,
        "ocp-batch-file-mode": props["fileMode"],
        "Last-Modified": formatdate(path.stat().st_mtime, usegmt=True),
    }
    if req.method == "HEAD":
        headers["Content-Length"] = str(props["contentLength"])
        return Response(200, None, headers)
    data = path.read_bytes()
    rng = req.headers.get("ocp-range")
    if rng:
        m = re.match(r"^bytes=(\d+)-(\d*)$", rng.strip())
        if not m:
            raise ApiError(400, "InvalidHeaderValue", "ocp-range must look like bytes=start-end.", {"HeaderName": "ocp-range"})
        start = int(m.group(1))
        end = int(m.group(2)) + 1 if m.group(2) else len(data)
        data = data[start:end]
    return Response(200, data, headers)


def delete_task_file(eng: Engine, req: Request) -> Response:
    with eng.lock:
        root = eng.task_dir(_task(eng, req))
    path = _safe_path(root, req.args[2])
    if not path.exists():
        raise not_found("File")
    if path.is_dir():
        if req.query.get("recursive", "false").lower() != "true":
            raise ApiError(409, "DirectoryNotEmpty", "The directory is not empty; pass recursive=true.")
        import shutil

        shutil.rmtree(path)
    else:
        path.unlink()
    return Response(200)


# == job schedules ==================================================================================
def _validate_schedule_config(cfg: object, relaxed: bool) -> dict:
    cfg = require_dict(cfg, "schedule")
    out = {}
    for prop in ("doNotRunUntil", "doNotRunAfter"):
        if cfg.get(prop) is not None:
            try:
                out[prop] = iso(parse_iso(str(cfg[prop])))
            except ValueError:
                raise invalid(f"schedule.{prop}", "must be an ISO 8601 time", cfg[prop]) from None
    if cfg.get("startWindow") is not None:
        parse_duration(cfg["startWindow"], "schedule.startWindow")
        out["startWindow"] = cfg["startWindow"]
    if cfg.get("recurrenceInterval") is not None:
        seconds = parse_duration(cfg["recurrenceInterval"], "schedule.recurrenceInterval")
        floor = RELAXED_MIN_INTERVAL if relaxed else STRICT_MIN_RECURRENCE
        if seconds < floor:
            raise invalid("schedule.recurrenceInterval", f"must be at least {format_duration(floor)}", cfg["recurrenceInterval"])
        out["recurrenceInterval"] = cfg["recurrenceInterval"]
    return out


def create_schedule(eng: Engine, req: Request) -> Response:
    body = _body(req)
    sid = req_id(body)
    if body.get("schedule") is None:
        raise missing("schedule")
    cfg = _validate_schedule_config(body["schedule"], eng.options.relaxed_limits)
    if body.get("jobSpecification") is None:
        raise missing("jobSpecification")
    spec = validate_job_spec(body["jobSpecification"], with_id=False)
    spec.pop("id", None)
    metadata = name_values(body, "metadata")
    with eng.lock:
        acct = eng.account(req.account)
        if id_key(sid) in acct.schedules:
            raise exists("JobSchedule")
        t = iso_now()
        first = cfg.get("doNotRunUntil") or t
        doc = {"id": sid, "creationTime": t, "schedule": cfg, "jobSpecification": spec,
               "executionInfo": {"nextRunTime": max(first, t)}}
        if body.get("displayName") is not None:
            doc["displayName"] = body["displayName"]
        if metadata is not None:
            doc["metadata"] = metadata
        eng.set_state(doc, "active")
        eng.touch(doc)
        sched = Schedule(req.account, id_key(sid), eng.next_seq(), doc)
        acct.schedules[sched.key] = sched
        with eng.store_batch():
            eng.save_schedule(sched)
        eng.wake()
        return _created(doc, f"{req.base}/jobschedules/{sid}")


def _schedule_doc(req: Request, sched: Schedule) -> dict:
    out = _with_url(sched.doc, f"{req.base}/jobschedules/{sched.doc['id']}")
    recent = (out.get("executionInfo") or {}).get("recentJob")
    if recent:
        out["executionInfo"] = dict(out["executionInfo"], recentJob=dict(recent, url=f"{req.base}/jobs/{recent['id']}"))
    return out


def list_schedules(eng: Engine, req: Request) -> Response:
    with eng.lock:
        scheds = sorted(eng.account(req.account).schedules.values(), key=lambda s: s.seq)
        return _page(req, [(s.seq, _schedule_doc(req, s)) for s in scheds])


def get_schedule(eng: Engine, req: Request) -> Response:
    with eng.lock:
        sched = _schedule(eng, req)
        doc = _schedule_doc(req, sched)
        return _one(req, doc, doc["url"])


def update_schedule(eng: Engine, req: Request) -> Response:
    body = _body(req)
    replace = req.method == "PUT"
    cfg = _validate_schedule_config(body["schedule"], eng.options.relaxed_limits) if body.get("schedule") is not None else None
    spec = validate_job_spec(body["jobSpecification"], with_id=False) if body.get("jobSpecification") is not None else None
    if replace and (cfg is None or spec is None):
        raise missing("schedule" if cfg is None else "jobSpecification")
    metadata = name_values(body, "metadata")
    with eng.lock:
        sched = _schedule(eng, req)
        _check_conditions(req, sched.doc)
        if sched.doc["state"] in ("completed", "terminating", "deleting"):
            raise ApiError(409, "JobScheduleCompleted", "The specified job schedule is already in a completed state.")
        if cfg is not None:
            sched.doc["schedule"] = cfg
            info = sched.doc.setdefault("executionInfo", {})
            info["nextRunTime"] = max(cfg.get("doNotRunUntil") or iso_now(), iso_now())
        if spec is not None:
            sched.doc["jobSpecification"] = spec
        if metadata is not None or replace:
            sched.doc["metadata"] = metadata or []
        eng.touch(sched.doc)
        eng.save_schedule(sched)
        eng.wake()
        return Response(200, None, {"ETag": sched.doc["eTag"]})


def terminate_schedule(eng: Engine, req: Request) -> Response:
    with eng.lock:
        sched = _schedule(eng, req)
        if sched.doc["state"] == "deleting":
            raise ApiError(409, "JobScheduleBeingDeleted", "The specified job schedule is being deleted.")
        if sched.doc["state"] != "completed":
            with eng.store_batch():
                eng.terminate_schedule(sched)
        return Response(202)


def delete_schedule(eng: Engine, req: Request) -> Response:
    with eng.lock:
        sched = _schedule(eng, req)
        with eng.store_batch():
            eng.delete_schedule(sched)
        return Response(202)


def _switch_schedule(eng: Engine, req: Request, state: str) -> Response:
    with eng.lock:
        sched = _schedule(eng, req)
        if sched.doc["state"] not in ("active", "disabled"):
            raise ApiError(409, "JobScheduleCompleted", "The specified job schedule is already in a completed state.")
        eng.set_state(sched.doc, state)
        info = sched.doc.setdefault("executionInfo", {})
        if state == "active" and sched.doc["schedule"].get("recurrenceInterval") and (info.get("nextRunTime") or "") < iso_now():
            info["nextRunTime"] = iso_now()  # recurrences missed while disabled are not replayed
        eng.touch(sched.doc)
        eng.save_schedule(sched)
        eng.wake()
        return Response(204)


def disable_schedule(eng: Engine, req: Request) -> Response:
    return _switch_schedule(eng, req, "disabled")


def enable_schedule(eng: Engine, req: Request) -> Response:
    return _switch_schedule(eng, req, "active")


def dumps(body: object) -> bytes:
    return json.dumps(body, separators=(",", ":")).encode("utf-8")
