"""Pool calls: create, list, get, update, delete, resize, remove nodes and autoscale."""

from __future__ import annotations

from .._util import ApiError, exists, id_key, invalid, missing, parse_duration
from ..engine import Engine, default_pool_doc
from ..engine.start_task import check_start_task
from ..formula import DEALLOCATION_OPTIONS, Formula, FormulaError
from ..formula import parse as parse_formula
from ..model import (
    MAX_NODES_PER_POOL,
    MAX_TASK_SLOTS_PER_NODE,
    NODE_FILL_TYPES,
    Pool,
    autoscale_interval,
    name_values,
    opt_bool,
    opt_enum,
    opt_int,
    req_id,
    require_dict,
    validate_vm_configuration,
)
from . import support, views
from .lookup import body_of, pool_of, screened_body
from .messages import Request, Response
from .replies import check_conditions, created, one, page, updated, with_url

# properties a new pool keeps as given
_KEPT_AS_GIVEN = ("displayName", "networkConfiguration", "startTask", "userAccounts", "mountConfiguration", "upgradePolicy")


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


def _pool_writable(pool: Pool) -> None:
    if pool.doc.get("state") == "deleting":
        raise ApiError(409, "PoolBeingDeleted", "The specified pool has been marked for deletion and is being reclaimed.")


def _check_node_total(total: int) -> None:
    if total > MAX_NODES_PER_POOL:
        raise invalid("targetDedicatedNodes", f"localbatch pools hold at most {MAX_NODES_PER_POOL} nodes", total)


# == create =========================================================================================
def create_pool(eng: Engine, req: Request) -> Response:
    body = screened_body(eng, req, support.POOL)
    fields = _required_pool_fields(body)
    formula = _scaling_fields(body, fields, eng.options.relaxed_limits)
    dedicated = opt_int(body, "targetDedicatedNodes", 0, MAX_NODES_PER_POOL, 0) or 0
    low = opt_int(body, "targetLowPriorityNodes", 0, MAX_NODES_PER_POOL, 0) or 0
    _check_node_total(dedicated + low)
    _optional_pool_fields(body, fields)
    with eng.lock:
        pool = _add_pool(eng, req, fields)
        with eng.store_batch():
            eng.save_pool(pool)
            if formula is not None:
                pool.formula = formula
                eng.autoscale_now(pool)  # Azure evaluates the formula when the pool is created
            else:
                eng.request_resize(pool, dedicated, low, "requeue")
        return created(pool.doc, f"{req.base}/pools/{fields['id']}")


def _required_pool_fields(body: dict) -> dict:
    pid = req_id(body)
    vm_size = body.get("vmSize")
    if not isinstance(vm_size, str) or not vm_size:
        raise missing("vmSize")
    vmc = validate_vm_configuration(body)
    slots = opt_int(body, "taskSlotsPerNode", 1, MAX_TASK_SLOTS_PER_NODE, 1)
    return {"id": pid, "vmSize": vm_size, "virtualMachineConfiguration": vmc, "taskSlotsPerNode": slots}


def _scaling_fields(body: dict, fields: dict, relaxed: bool) -> Formula | None:
    """Autoscale or fixed targets, never a mix; the formula when the pool autoscales."""
    if not opt_bool(body, "enableAutoScale"):
        for prop in ("autoScaleFormula", "autoScaleEvaluationInterval"):
            if body.get(prop) is not None:
                raise invalid(prop, "is only allowed when enableAutoScale is true", body[prop])
        return None
    for prop in ("targetDedicatedNodes", "targetLowPriorityNodes"):
        if body.get(prop) is not None:
            raise invalid(prop, "must not be given when enableAutoScale is true", body[prop])
    formula = _formula(body.get("autoScaleFormula"))
    fields.update(enableAutoScale=True, autoScaleFormula=formula.text)
    fields["autoScaleEvaluationInterval"] = body.get("autoScaleEvaluationInterval") or "PT15M"
    autoscale_interval(fields["autoScaleEvaluationInterval"], relaxed)
    return formula


def _optional_pool_fields(body: dict, fields: dict) -> None:
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
    check_start_task(body.get("startTask"))
    for prop in _KEPT_AS_GIVEN:
        if body.get(prop) is not None:
            fields[prop] = body[prop]
    metadata = name_values(body, "metadata")
    if metadata is not None:
        fields["metadata"] = metadata


def _add_pool(eng: Engine, req: Request, fields: dict) -> Pool:
    """Put the new pool in its account (caller holds the engine lock); 409 when the id is taken."""
    acct = eng.account(req.account)
    key = id_key(fields["id"])
    if key in acct.pools:
        raise exists("Pool")
    doc = default_pool_doc(fields)
    pool = Pool(req.account, key, eng.next_seq(), doc)
    acct.pools[pool.key] = pool
    return pool


# == read, update, delete ===========================================================================
def list_pools(eng: Engine, req: Request) -> Response:
    with eng.lock:
        pools = eng.account(req.account).pools.values()
        items = [(p.seq, with_url(p.doc, f"{req.base}/pools/{p.doc['id']}")) for p in sorted(pools, key=lambda p: p.seq)]
        return page(req, items, view=views.pool)


def get_pool(eng: Engine, req: Request) -> Response:
    with eng.lock:
        pool = pool_of(eng, req)
        return one(req, pool.doc, f"{req.base}/pools/{pool.doc['id']}", views.pool)


def delete_pool(eng: Engine, req: Request) -> Response:
    with eng.lock:
        pool = pool_of(eng, req)
        check_conditions(req, pool.doc)
        with eng.store_batch():
            eng.delete_pool(pool)
        return Response(202)


def update_pool(eng: Engine, req: Request, replace: bool = False) -> Response:
    """PATCH /pools/{id} (update_pool) and POST .../updateproperties (replace_pool_properties)."""
    body = screened_body(eng, req, support.POOL_REPLACE if replace else support.POOL_UPDATE)
    metadata = name_values(body, "metadata")
    check_start_task(body.get("startTask"))
    with eng.lock:
        pool = pool_of(eng, req)
        _pool_writable(pool)
        check_conditions(req, pool.doc)
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
        return updated(pool.doc, f"{req.base}/pools/{pool.doc['id']}", 204 if replace else 200)


def replace_pool_properties(eng: Engine, req: Request) -> Response:
    return update_pool(eng, req, replace=True)


# == size ===========================================================================================
def resize_pool(eng: Engine, req: Request) -> Response:
    body = screened_body(eng, req, support.POOL_RESIZE)
    ded = opt_int(body, "targetDedicatedNodes", 0, MAX_NODES_PER_POOL)
    low = opt_int(body, "targetLowPriorityNodes", 0, MAX_NODES_PER_POOL)
    option = opt_enum(body, "nodeDeallocationOption", DEALLOCATION_OPTIONS, "requeue")
    if body.get("resizeTimeout") is not None:
        parse_duration(body["resizeTimeout"], "resizeTimeout")
    with eng.lock:
        pool = pool_of(eng, req)
        _pool_writable(pool)
        check_conditions(req, pool.doc)
        if pool.doc.get("enableAutoScale"):
            raise ApiError(
                409, "AutoScalingEnabled", "The pool has automatic scaling enabled; disable it before resizing by hand."
            )
        if pool.doc.get("allocationState") == "stopping":
            raise ApiError(409, "PoolNotSteady", "The pool is stopping a resize; try again when it is steady.")
        ded = pool.doc.get("targetDedicatedNodes", 0) if ded is None else ded
        low = pool.doc.get("targetLowPriorityNodes", 0) if low is None else low
        _check_node_total(ded + low)
        with eng.store_batch():
            eng.request_resize(pool, ded, low, option)
        return Response(202)


def stop_resize(eng: Engine, req: Request) -> Response:
    with eng.lock:
        pool = pool_of(eng, req)
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
    body = screened_body(eng, req, support.NODE_REMOVAL)
    ids = body.get("nodeList")
    if not isinstance(ids, list) or not ids:
        raise missing("nodeList")
    option = opt_enum(body, "nodeDeallocationOption", DEALLOCATION_OPTIONS, "requeue")
    with eng.lock:
        pool = pool_of(eng, req)
        _pool_writable(pool)
        by_id = {n.id: n for n in pool.nodes}
        missing_ids = [i for i in ids if i not in by_id]
        if missing_ids:
            raise ApiError(404, "NodeNotFound", f"The specified node does not exist: {missing_ids[0]}.")
        with eng.store_batch():
            for i in ids:
                eng.remove_node(pool, by_id[i], option)
            _targets_are_current_nodes(pool)
            eng.refresh_pool_counts(pool)
            eng.touch(pool.doc)
            eng.save_pool(pool)
        eng.wake()
        return Response(202)


# == autoscale ======================================================================================
def enable_autoscale(eng: Engine, req: Request) -> Response:
    body = screened_body(eng, req, support.AUTOSCALE)
    text = body.get("autoScaleFormula")
    interval = body.get("autoScaleEvaluationInterval")
    if interval is not None:
        autoscale_interval(interval, eng.options.relaxed_limits)
    with eng.lock:
        pool = pool_of(eng, req)
        _pool_writable(pool)
        check_conditions(req, pool.doc)
        formula = _formula(text if text is not None else pool.doc.get("autoScaleFormula"))
        pool.doc.update(enableAutoScale=True, autoScaleFormula=formula.text)
        pool.doc["autoScaleEvaluationInterval"] = interval or pool.doc.get("autoScaleEvaluationInterval") or "PT15M"
        pool.formula = formula
        with eng.store_batch():
            eng.autoscale_now(pool)
        return updated(pool.doc, f"{req.base}/pools/{pool.doc['id']}")


def disable_autoscale(eng: Engine, req: Request) -> Response:
    with eng.lock:
        pool = pool_of(eng, req)
        _pool_writable(pool)
        pool.doc["enableAutoScale"] = False
        for k in ("autoScaleFormula", "autoScaleEvaluationInterval", "autoScaleRun"):
            pool.doc.pop(k, None)
        pool.formula = None
        pool.next_autoscale = None
        eng.touch(pool.doc)
        eng.save_pool(pool)
        return updated(pool.doc, f"{req.base}/pools/{pool.doc['id']}")


def evaluate_autoscale(eng: Engine, req: Request) -> Response:
    formula = _formula(body_of(req).get("autoScaleFormula"))
    with eng.lock:
        pool = pool_of(eng, req)
        if not pool.doc.get("enableAutoScale"):
            raise ApiError(409, "AutoScalingNotEnabled", "The pool does not have automatic scaling enabled; evaluation needs it.")
        _result, run = eng.evaluate(pool, formula)
        return Response(200, run)
