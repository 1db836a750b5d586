"""Job schedule calls: create, list, get, update, terminate, delete, disable and enable. The
schedule's jobs are listed by ``jobs.list_schedule_jobs``."""

from __future__ import annotations

from .._util import (
    ApiError,
    exists,
    format_duration,
    id_key,
    invalid,
    iso,
    iso_now,
    missing,
    parse_duration,
    parse_iso,
)
from ..engine import Engine
from ..model import (
    RELAXED_MIN_INTERVAL,
    STRICT_MIN_RECURRENCE,
    Schedule,
    name_values,
    req_id,
    require_dict,
    validate_job_spec,
)
from . import support, views
from .lookup import schedule_of, screened_body
from .messages import Request, Response
from .replies import check_conditions, created, one, page, updated, with_url


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
    body = screened_body(eng, req, support.SCHEDULE)
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
        doc = {
            "id": sid,
            "creationTime": t,
            "schedule": cfg,
            "jobSpecification": spec,
            "executionInfo": {"nextRunTime": max(first, t)},
        }
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
        return created(doc, f"{req.base}/jobschedules/{sid}")


def _schedule_doc(req: Request, sched: Schedule) -> dict:
    out = views.schedule(with_url(sched.doc, f"{req.base}/jobschedules/{sched.doc['id']}"))
    recent = (out.get("executionInfo") or {}).get("recentJob")
    if recent:
        out["executionInfo"] = dict(out["executionInfo"], recentJob=dict(recent, url=f"{req.base}/jobs/{recent['id']}"))
    return out


def list_schedules(eng: Engine, req: Request) -> Response:
    with eng.lock:
        scheds = sorted(eng.account(req.account).schedules.values(), key=lambda s: s.seq)
        return page(req, [(s.seq, _schedule_doc(req, s)) for s in scheds])


def get_schedule(eng: Engine, req: Request) -> Response:
    with eng.lock:
        sched = schedule_of(eng, req)
        doc = _schedule_doc(req, sched)
        return one(req, doc, doc["url"])


def update_schedule(eng: Engine, req: Request) -> Response:
    """PATCH (only the given properties change) or PUT (schedule and job specification required)."""
    body = screened_body(eng, req, support.SCHEDULE_UPDATE)
    replace = req.method == "PUT"
    cfg = _validate_schedule_config(body["schedule"], eng.options.relaxed_limits) if body.get("schedule") is not None else None
    spec = validate_job_spec(body["jobSpecification"], with_id=False) if body.get("jobSpecification") is not None else None
    if replace and (cfg is None or spec is None):
        raise missing("schedule" if cfg is None else "jobSpecification")
    metadata = name_values(body, "metadata")
    with eng.lock:
        sched = schedule_of(eng, req)
        check_conditions(req, sched.doc)
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
        return updated(sched.doc, f"{req.base}/jobschedules/{sched.doc['id']}")


def terminate_schedule(eng: Engine, req: Request) -> Response:
    with eng.lock:
        sched = schedule_of(eng, req)
        if sched.doc["state"] == "deleting":
            raise ApiError(409, "JobScheduleBeingDeleted", "The specified job schedule is being deleted.")
        if sched.doc["state"] != "completed":
            with eng.store_batch():
                eng.terminate_schedule(sched)
        return Response(202)


def delete_schedule(eng: Engine, req: Request) -> Response:
    with eng.lock:
        sched = schedule_of(eng, req)
        with eng.store_batch():
            eng.delete_schedule(sched)
        return Response(202)


def _switch_schedule(eng: Engine, req: Request, state: str) -> Response:
    with eng.lock:
        sched = schedule_of(eng, req)
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
