"""Node conditions set on demand (an admin call): a node becomes ``unusable`` or its start
task ``starttaskfailed``, as on Azure when a VM breaks or its start task fails. Tasks running
there are requeued (counted, not a retry) and the node takes no work until it is healed."""

from __future__ import annotations

from .._util import iso_now
from ..model import Pool
from . import Engine

CONDITIONS = ("unusable", "starttaskfailed")


def set_condition(eng: Engine, pool: Pool, node_ids: list[str] | None, condition: str | None) -> dict:
    """Set (or with None clear) the condition of the pool's nodes (all, or ``node_ids``)."""
    nodes = pool.nodes if node_ids is None else [n for n in pool.nodes if n.id in set(node_ids)]
    requeued = []
    for node in nodes:
        if condition is not None:
            for run_id in list(node.runs):
                rec = eng.runs.get(run_id)
                if rec is not None and rec.task.run is rec.run:
                    requeued.append(f"{rec.job.doc['id']}/{rec.task.doc['id']}")
                    eng.requeue(rec.task, count=True)
        node.condition = condition
        node.state_time = iso_now()
    eng.watch(pool)
    eng.touch(pool.doc)
    eng.save_pool(pool)
    eng.wake()
    return {"nodes": [n.id for n in nodes], "condition": condition, "requeuedTasks": requeued}
