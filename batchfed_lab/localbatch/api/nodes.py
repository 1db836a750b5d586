"""Compute node calls: a pool's nodes, one node, and the account's node counts per pool."""

from __future__ import annotations

from .. import odata
from .._util import not_found
from ..engine import Engine
from ..model import Node, Pool
from . import views
from .lookup import pool_of
from .messages import Request, Response
from .replies import page

_COUNT_FIELDS = (
    "creating",
    "idle",
    "offline",
    "preempted",
    "rebooting",
    "reimaging",
    "running",
    "starting",
    "startTaskFailed",
    "leavingPool",
    "unknown",
    "unusable",
    "waitingForStartTask",
    "deallocated",
    "deallocating",
    "total",
    "upgradingOS",
)


_COUNT_NAMES = {
    "leavingpool": "leavingPool",
    "starttaskfailed": "startTaskFailed",
    "waitingforstarttask": "waitingForStartTask",
}


def _node_doc(eng: Engine, pool: Pool, node: Node) -> dict:
    """A node as Batch shows it: with its pool's start task and the image version it runs."""
    doc = eng.node_doc(pool, node)
    if isinstance(pool.doc.get("startTask"), dict):
        doc.setdefault("startTask", views.start_task(pool.doc["startTask"]))
    image = (doc.get("virtualMachineInfo") or {}).get("imageReference")
    if isinstance(image, dict) and "exactVersion" not in image:
        version = image.get("version") or "latest"
        doc["virtualMachineInfo"] = {**doc["virtualMachineInfo"], "imageReference": {**image, "exactVersion": version}}
    return doc


def list_nodes(eng: Engine, req: Request) -> Response:
    with eng.lock:
        pool = pool_of(eng, req)
        return page(req, [(i + 1, _node_doc(eng, pool, n)) for i, n in enumerate(pool.nodes)])


def get_node(eng: Engine, req: Request) -> Response:
    with eng.lock:
        pool = pool_of(eng, req)
        node = next((n for n in pool.nodes if n.id == req.args[1]), None)
        if node is None:
            raise not_found("Node")
        doc = _node_doc(eng, pool, node)
        return Response(200, odata.project(doc, odata.parse_select(req.query.get("$select"))))


def node_counts(eng: Engine, req: Request) -> Response:
    with eng.lock:
        items = []
        for pool in sorted(eng.account(req.account).pools.values(), key=lambda p: p.seq):
            doc: dict = {"poolId": pool.doc["id"]}
            for name, dedicated in (("dedicated", True), ("lowPriority", False)):
                counts = dict.fromkeys(_COUNT_FIELDS, 0)
                for node in pool.nodes:
                    if node.dedicated == dedicated:
                        counts[_COUNT_NAMES.get(node.state, node.state)] += 1
                        counts["total"] += 1
                doc[name] = counts
            items.append((pool.seq, doc))
        return page(req, items)
