"""localbatch's own calls, beside the Batch ones: preempt nodes, autoscale now, who is answering."""

from __future__ import annotations

import os

from .._util import API_VERSION, ApiError, invalid
from ..engine import Engine
from ..engine.conditions import CONDITIONS, set_condition
from .lookup import body_of, pool_of
from .messages import VERSION, Request, Response


def preempt(eng: Engine, req: Request) -> Response:
    """Admin: preempt low-priority nodes now (body: optional nodeIds, durationSeconds)."""
    body = body_of(req)
    ids = body.get("nodeIds")
    if ids is not None and (not isinstance(ids, list) or not all(isinstance(i, str) for i in ids)):
        raise invalid("nodeIds", "must be a list of node ids", ids)
    seconds = body.get("durationSeconds", 2.0)
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not 0 <= seconds <= 86400:
        raise invalid("durationSeconds", "must be a number of seconds from 0 to 86400", seconds)
    with eng.lock:
        pool = pool_of(eng, req)
        with eng.store_batch():
            return Response(200, eng.preempt(pool, ids, float(seconds)))


def node_condition(eng: Engine, req: Request) -> Response:
    """Admin: make nodes unusable or their start task failed (body: condition, optional
    nodeIds); a null condition heals them."""
    body = body_of(req)
    ids = body.get("nodeIds")
    if ids is not None and (not isinstance(ids, list) or not all(isinstance(i, str) for i in ids)):
        raise invalid("nodeIds", "must be a list of node ids", ids)
    condition = body.get("condition")
    if condition is not None and condition not in CONDITIONS:
        raise invalid("condition", f"must be one of {', '.join(CONDITIONS)} or null", condition)
    with eng.lock:
        pool = pool_of(eng, req)
        with eng.store_batch():
            return Response(200, set_condition(eng, pool, ids, condition))


def autoscale_admin(eng: Engine, req: Request) -> Response:
    """Admin: evaluate and apply the pool's autoscale formula now, without waiting for its interval."""
    with eng.lock:
        pool = pool_of(eng, req)
        if pool.formula is None:
            raise ApiError(409, "AutoScalingNotEnabled", "The pool does not have automatic scaling enabled.")
        with eng.store_batch():
            return Response(200, eng.autoscale_now(pool))


def server_info(eng: Engine, req: Request) -> Response:
    """Admin: who is answering (no secrets)."""
    return Response(
        200,
        {
            "service": "localbatch",
            "version": VERSION,
            "apiVersion": API_VERSION,
            "account": req.account,
            "pid": os.getpid(),
            "relaxedLimits": eng.options.relaxed_limits,
        },
    )
