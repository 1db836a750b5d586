"""Pools and their nodes: resizing (with a delay, then node by node), removing and draining
nodes, preemption, autoscale formula evaluation, and a node's REST document."""

from __future__ import annotations

import hashlib
import time

from .._util import iso_now, parse_duration
from ..formula import Formula, FormulaError, Result
from ..formula import parse as parse_formula
from ..launch import isolation
from ..model import Node, Pool, node_ip
from .start_task import StartTasks


class Pools(StartTasks):
    # == resizing and nodes ====================================================================
    @staticmethod
    def _parse_formula(text: str) -> Formula | None:
        try:
            return parse_formula(text)
        except FormulaError:  # validated when stored; a newer server may know less
            return None

    def new_node(self, pool: Pool, dedicated: bool) -> Node:
        pool.node_counter += 1
        digest = hashlib.sha1(f"{pool.account}/{pool.doc['id']}/{pool.seq}/{pool.node_counter}".encode()).hexdigest()
        node_id = f"tvmps_{digest[:40]}_{'d' if dedicated else 'p'}"
        t = iso_now()
        return Node(node_id, dedicated, node_ip(node_id), t, t)

    def request_resize(self, pool: Pool, dedicated: int, low: int, option: str) -> None:
        """Start a resize: the pool is 'resizing' until the allocation delay has passed."""
        pool.doc["targetDedicatedNodes"] = dedicated
        pool.doc["targetLowPriorityNodes"] = low
        if pool.doc.get("allocationState") != "resizing":
            pool.doc["allocationState"] = "resizing"
            pool.doc["allocationStateTransitionTime"] = iso_now()
        pool.resize = {
            "due": time.monotonic() + self.options.allocation_delay,
            "dedicated": dedicated,
            "low": low,
            "option": option,
        }
        self.watch(pool)
        self.touch(pool.doc)
        self.save_pool(pool)
        self.wake()

    def _apply_resize(self, pool: Pool) -> None:
        rz = pool.resize
        assert rz is not None
        pool.resize = None
        for dedicated, target in ((True, rz["dedicated"]), (False, rz["low"])):
            mine = [n for n in pool.nodes if n.dedicated == dedicated and not n.leaving]
            for _ in range(target - len(mine)):
                pool.nodes.append(self.new_node(pool, dedicated))
                self.begin_start_task(pool, pool.nodes[-1])
            extra = len(mine) - target
            if extra > 0:
                # remove idle nodes first, then the least busy
                victims = sorted(mine, key=lambda n: (n.slots_used, -pool.nodes.index(n)))[:extra]
                for node in victims:
                    self.remove_node(pool, node, rz["option"])
        self.refresh_pool_counts(pool)

    def release_node(self, node: Node) -> None:
        """A node leaves: its start task stops, and what its start and preparation tasks left
        running is killed."""
        self.stop_start_task(node)
        isolation.kill_marked("AZ_BATCH_NODE_ID", node.id)

    def remove_node(self, pool: Pool, node: Node, option: str) -> None:
        self.watch(pool)
        if node.runs and option in ("taskcompletion", "retaineddata"):
            node.leaving = True  # drains; removed when its tasks are done
            return
        for run_id in list(node.runs):
            rec = self.runs.get(run_id)
            if rec is None or rec.task.run is not rec.run:
                continue
            if option == "terminate":
                self.end_task(
                    rec.task, "TaskEnded", "The task was terminated because its node was removed from the pool (terminate)."
                )
            else:
                self.requeue(rec.task, count=True)
        pool.nodes.remove(node)
        self.release_node(node)
        self._trash(self.node_dir(pool, node))

    def refresh_pool_counts(self, pool: Pool) -> None:
        # runs for every restless pool on each dispatcher pass: one plain loop, and no write unless changed
        ded = low = 0
        steady = pool.resize is None
        for n in pool.nodes:
            if n.dedicated:
                ded += 1
            else:
                low += 1
            if n.leaving:
                steady = False
        doc = pool.doc
        changed = doc.get("currentDedicatedNodes") != ded or doc.get("currentLowPriorityNodes") != low
        if changed:
            doc["currentDedicatedNodes"] = ded
            doc["currentLowPriorityNodes"] = low
        if steady and doc.get("allocationState") != "steady":
            doc["allocationState"] = "steady"
            doc["allocationStateTransitionTime"] = iso_now()
            changed = True
        if changed:
            self.touch(doc)
            self.save_pool(pool)

    # == autoscale =============================================================================
    def autoscale_context(self, pool: Pool) -> dict[str, float]:
        active = running = 0
        for job in self.account(pool.account).jobs.values():
            if job.pool_key == pool.key and job.state == "active":
                active += len(job.queue)
                running += job.running
        return {
            "$ActiveTasks": active,
            "$RunningTasks": running,
            "$PendingTasks": active + running,
            "$CurrentDedicatedNodes": pool.doc.get("currentDedicatedNodes", 0),
            "$CurrentLowPriorityNodes": pool.doc.get("currentLowPriorityNodes", 0),
            "$TaskSlotsPerNode": pool.slots_per_node,
            "$PreemptedNodeCount": sum(1 for n in pool.nodes if n.preempted_until is not None),
        }

    def evaluate(self, pool: Pool, formula: Formula) -> tuple[Result | None, dict]:
        """Evaluate a formula for a pool; return (result, autoScaleRun JSON)."""
        current = {
            "$TargetDedicatedNodes": float(pool.doc.get("targetDedicatedNodes") or 0),
            "$TargetLowPriorityNodes": float(pool.doc.get("targetLowPriorityNodes") or 0),
        }
        run: dict = {"timestamp": iso_now()}
        try:
            result = formula.evaluate(self.autoscale_context(pool), current)
        except FormulaError as exc:
            run["error"] = {"code": "AutoScalingFormulaEvaluationError", "message": str(exc)}
            return None, run
        run["results"] = result.text
        return result, run

    def autoscale_now(self, pool: Pool) -> dict:
        """Evaluate the pool's formula and apply it (also what the timer does)."""
        assert pool.formula is not None
        result, run = self.evaluate(pool, pool.formula)
        pool.doc["autoScaleRun"] = run
        interval = parse_duration(pool.doc.get("autoScaleEvaluationInterval", "PT15M"), "autoScaleEvaluationInterval")
        pool.next_autoscale = time.monotonic() + interval
        self.watch(pool)
        if result is not None:
            target = (result.dedicated, result.low_priority)
            current = (pool.doc.get("targetDedicatedNodes"), pool.doc.get("targetLowPriorityNodes"))
            if target != current or pool.resize is not None:
                self.request_resize(pool, result.dedicated, result.low_priority, result.deallocation)
        self.touch(pool.doc)
        self.save_pool(pool)
        return run

    # == deleting and preempting ===============================================================
    def delete_pool(self, pool: Pool) -> None:
        acct = self.account(pool.account)
        pool.doc["state"] = "deleting"
        for node in list(pool.nodes):
            self.remove_node(pool, node, "requeue")
        acct.pools.pop(pool.key, None)
        assert self.store is not None
        self.store.delete("pool", pool.account, pool.key)
        self._trash(self.nodes_root / pool.account / pool.doc["id"])

    def preempt(self, pool: Pool, node_ids: list[str] | None, seconds: float) -> dict:
        """Preempt low-priority nodes: running tasks are requeued (not a retry); nodes return later."""
        low = [n for n in pool.nodes if not n.dedicated]
        if node_ids is not None:
            wanted = set(node_ids)
            low = [n for n in low if n.id in wanted]
        requeued = []
        until = time.monotonic() + seconds
        for node in low:
            for run_id in list(node.runs):
                rec = self.runs.get(run_id)
                if rec is not None and rec.task.run is rec.run:
                    requeued.append(f"{rec.job.doc['id']}/{rec.task.doc['id']}")
                    self.requeue(rec.task, count=True)
            node.preempted_until = until
            node.state_time = iso_now()
            self.stop_start_task(node)  # the VM is taken back: its start task runs anew on return
        self.watch(pool)
        self.touch(pool.doc)
        self.save_pool(pool)
        self.wake()
        return {"preemptedNodes": [n.id for n in low], "requeuedTasks": requeued, "returnAfterSeconds": seconds}

    # == reading ===============================================================================
    def node_doc(self, pool: Pool, node: Node) -> dict:
        vmc = pool.doc.get("virtualMachineConfiguration") or {}
        return {
            "id": node.id,
            "url": f"{self.base(pool.account)}/pools/{pool.doc['id']}/nodes/{node.id}",
            "state": node.state,
            "schedulingState": "enabled",
            "stateTransitionTime": node.state_time,
            "lastBootTime": node.allocation_time,
            "allocationTime": node.allocation_time,
            "ipAddress": node.ip,
            "affinityId": f"TVM:{node.id}",
            "vmSize": pool.doc.get("vmSize"),
            "totalTasksRun": node.total_tasks_run,
            "runningTasksCount": len(node.runs),
            "runningTaskSlotsCount": node.slots_used,
            "totalTasksSucceeded": node.total_succeeded,
            "isDedicated": node.dedicated,
            "nodeAgentInfo": {"version": "localbatch", "lastUpdateTime": node.allocation_time},
            "virtualMachineInfo": {"imageReference": vmc.get("imageReference", {})},
            **({"startTask": pool.doc["startTask"]} if pool.doc.get("startTask") else {}),
            **({"startTaskInfo": node.start_info} if node.start_info else {}),
        }


def default_pool_doc(fields: dict) -> dict:
    t = iso_now()
    doc = {
        "id": fields["id"],
        "creationTime": t,
        "state": "active",
        "stateTransitionTime": t,
        "allocationState": "resizing",
        "allocationStateTransitionTime": t,
        "resizeTimeout": "PT15M",
        "currentDedicatedNodes": 0,
        "currentLowPriorityNodes": 0,
        "targetDedicatedNodes": 0,
        "targetLowPriorityNodes": 0,
        "enableAutoScale": False,
        "enableInterNodeCommunication": False,
        "taskSlotsPerNode": 1,
        "taskSchedulingPolicy": {"nodeFillType": "spread"},
    }
    doc.update(fields)
    Pools.touch(doc)
    return doc
