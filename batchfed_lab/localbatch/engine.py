"""The localbatch engine: accounts, pools, nodes, jobs, tasks and schedules, and the loop that
places tasks on node slots and starts them.

One re-entrant lock guards all state. Request handlers, the dispatcher thread and the run threads
take it briefly; processes are spawned and waited for outside it (see ``runner``). Every change
is written to the SQLite store before the lock is released, so what a client was told survives a
restart.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import itertools
import logging
import os
import shutil
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from . import procs
from ._util import ApiError, exists, id_key, iso, iso_now, new_etag, now, parse_duration, parse_iso
from .formula import Formula, FormulaError, Result, parse as parse_formula
from .model import (
    BATCHFED_TASKS_METADATA,
    Account,
    Job,
    Node,
    Pool,
    PrepState,
    Schedule,
    Task,
    dependency_ids,
    node_ip,
    tasks_from_metadata,
)
from .runner import Failure, Instance, Outcome, Prep, Run, RunSpec
from .store import Store

log = logging.getLogger("batchfed_lab.localbatch")

# the environment a task starts from: enough for a shell and common tools, nothing secret
BASE_ENV_NAMES = ("PATH", "HOME", "USER", "LOGNAME", "SHELL", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "TMPDIR", "TERM")
TICK_SECONDS = 1.0
_MAY_RUN_AGAIN = frozenset({"active", "disabling", "disabled", "enabling"})  # job states whose queue may still run
MAX_UNPLACEABLE_SCAN = 64  # tasks looked at per job and pass when they do not fit


@dataclass
class Options:
    max_processes: int = 64
    allocation_delay: float = 0.1  # seconds a pool stays "resizing" before nodes appear
    relaxed_limits: bool = False  # accept 1 s recurrence / autoscale intervals (tests, drills)


@dataclass
class RunRecord:
    run: Run
    task: Task
    job: Job
    pool: Pool
    nodes: list[Node]
    slots: int
    gen: int


class Engine:
    def __init__(self, localbatch_dir: Path, options: Options | None = None):
        self.dir = Path(localbatch_dir)
        self.tasks_root = self.dir / "tasks"
        self.nodes_root = self.dir / "nodes"
        self.trash = self.dir / "trash"
        self.options = options or Options()
        self.lock = threading.RLock()
        self.cond = threading.Condition(self.lock)
        self.accounts: dict[str, Account] = {}
        self.runs: dict[int, RunRecord] = {}
        self.procs_running = 0
        self.public_root = "http://127.0.0.1"
        self._run_ids = itertools.count(1)
        self._seq = itertools.count(1)
        self._dirty = False
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._timed_jobs: set[Job] = set()  # jobs with a maxWallClockTime to watch
        # pools the dispatcher must look at on its next pass (account, key): a resize or autoscale
        # timer, preempted or draining nodes, counts to refresh. The others are swept once a
        # second: a pass per task event over every pool cost more than the task events themselves.
        self._restless: set[tuple[str, str]] = set()
        self._next_sweep = 0.0
        # jobs that had a task queued since the dispatcher last found their queue empty: a pass
        # looks at these, not at every job ever created
        self._queued: set[Job] = set()
        self.store: Store | None = None

    # == lifecycle =============================================================================
    def open(self) -> None:
        """Load the saved state (requeueing what was running) and start the dispatcher."""
        self.dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        for d in (self.tasks_root, self.nodes_root):
            d.mkdir(mode=0o700, exist_ok=True)
        shutil.rmtree(self.trash, ignore_errors=True)
        self.store = Store(self.dir / "state.sqlite")
        with self.lock:
            killed = self._kill_leftovers()
            self._load()
        if killed:
            log.info("killed %d task process group(s) left by a previous run", killed)
        self._thread = threading.Thread(target=self._loop, name="localbatch-dispatcher", daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Stop: kill every task process, requeue what was running (so a restart runs it again)."""
        with self.lock:
            self._stopping = True
            self.cond.notify_all()
            with self.store_batch():
                for rec in list(self.runs.values()):
                    if rec.task.run is rec.run:
                        self._requeue(rec.task, count=True)
                    rec.run.kill("shutdown")
            pending = [rec.run for rec in self.runs.values()]
        for run in pending:
            run.join(5)
        if self._thread is not None:
            self._thread.join(5)
        with self.lock:
            if self.store is not None:
                self.store.close()
                self.store = None

    def store_batch(self):
        assert self.store is not None
        return self.store.batch()

    def _kill_leftovers(self) -> int:
        assert self.store is not None
        n = 0
        for pgid, start, _what in self.store.procs():
            if procs.kill_recorded_group(pgid, start):
                n += 1
            self.store.remove_proc(pgid)
        return n

    def _load(self) -> None:
        assert self.store is not None
        self._seq = itertools.count(self.store.max_seq() + 1)
        for account, key, seq, doc in self.store.load("pool"):
            pool = Pool(account, key, seq, doc["rest"], node_counter=doc["x"].get("nodeCounter", 0))
            for n in doc["x"].get("nodes", []):
                pool.nodes.append(Node(n["id"], n["dedicated"], n["ip"], n["allocationTime"], iso_now()))
            if doc["x"].get("resize"):
                pool.resize = dict(doc["x"]["resize"], due=time.monotonic())
            if pool.doc.get("enableAutoScale") and pool.doc.get("autoScaleFormula"):
                pool.formula = self._parse_formula(pool.doc["autoScaleFormula"])
                pool.next_autoscale = time.monotonic()
            self.account(account).pools[key] = pool
            self.watch(pool)
        for account, key, seq, doc in self.store.load("job"):
            job = Job(account, key, seq, doc["rest"], schedule_key=doc["x"].get("schedule"))
            self.account(account).jobs[key] = job
            if job.state == "active" and (job.doc.get("constraints") or {}).get("maxWallClockTime"):
                self._timed_jobs.add(job)
        requeued = 0
        with self.store.batch():
            for account, key, seq, doc in self.store.load("task"):
                job = self.account(account).jobs.get(key.split("/", 1)[0])
                if job is None:  # a task row without its job: a crash mid-delete; finish the delete
                    self.store.delete("task", account, key)
                    continue
                task = Task(job, key.split("/", 1)[1], seq, doc["rest"], subtasks=doc["x"].get("subtasks", []),
                            job_manager=doc["x"].get("jm", False))
                job.tasks[task.key] = task
                if task.state in ("running", "preparing"):
                    self._requeue(task, count=True)  # it was running when localbatch stopped
                    requeued += 1
            for acct in self.accounts.values():
                for job in acct.jobs.values():
                    for task in job.tasks.values():
                        if task.state == "active":
                            self._enqueue(task)
            for account, key, seq, doc in self.store.load("schedule"):
                sched = Schedule(account, key, seq, doc["rest"], job_counter=doc["x"].get("jobCounter", 0),
                                 recent_job_key=doc["x"].get("recentJob"))
                self.account(account).schedules[key] = sched
        if requeued:
            log.info("requeued %d task(s) that were running when localbatch last stopped", requeued)

    # == helpers ===============================================================================
    def account(self, name: str) -> Account:
        acct = self.accounts.get(name)
        if acct is None:
            acct = self.accounts[name] = Account(name)
        return acct

    def next_seq(self) -> int:
        return next(self._seq)

    def base(self, account: str) -> str:
        return f"{self.public_root}/accounts/{account}"

    def watch(self, pool: Pool) -> None:
        """Have the dispatcher look at ``pool`` on every pass until it is quiet again (call
        with the lock held, after changing its nodes, resize or autoscale)."""
        self._restless.add((pool.account, pool.key))

    def wake(self) -> None:
        with self.lock:
            self._dirty = True
            self.cond.notify_all()

    @staticmethod
    def touch(doc: dict) -> None:
        doc["eTag"] = new_etag()
        doc["lastModified"] = iso_now()

    @staticmethod
    def set_state(doc: dict, state: str) -> None:
        if doc.get("state") == state:
            return
        t = iso_now()
        if "state" in doc:
            doc["previousState"] = doc["state"]
            doc["previousStateTransitionTime"] = doc.get("stateTransitionTime", t)
        doc["state"] = state
        doc["stateTransitionTime"] = t

    def save_pool(self, pool: Pool) -> None:
        assert self.store is not None
        x = {
            "nodes": [n.persisted() for n in pool.nodes],
            "nodeCounter": pool.node_counter,
            "resize": {k: v for k, v in pool.resize.items() if k != "due"} if pool.resize else None,
        }
        self.store.put("pool", pool.account, pool.key, pool.seq, {"rest": pool.doc, "x": x})

    def save_job(self, job: Job) -> None:
        assert self.store is not None
        self.store.put("job", job.account, job.key, job.seq, {"rest": job.doc, "x": {"schedule": job.schedule_key}})

    def save_task(self, task: Task) -> None:
        assert self.store is not None
        x = {"subtasks": task.subtasks, "jm": task.job_manager}
        self.store.put("task", task.job.account, f"{task.job.key}/{task.key}", task.seq, {"rest": task.doc, "x": x})

    def save_schedule(self, sched: Schedule) -> None:
        assert self.store is not None
        x = {"jobCounter": sched.job_counter, "recentJob": sched.recent_job_key}
        self.store.put("schedule", sched.account, sched.key, sched.seq, {"rest": sched.doc, "x": x})

    def task_dir(self, task: Task) -> Path:
        return self.tasks_root / task.job.account / task.job.doc["id"] / task.doc["id"]

    def node_dir(self, pool: Pool, node: Node) -> Path:
        return self.nodes_root / pool.account / pool.doc["id"] / node.id

    # == pools and nodes =======================================================================
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
        pool.resize = {"due": time.monotonic() + self.options.allocation_delay, "dedicated": dedicated, "low": low, "option": option}
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
            extra = len(mine) - target
            if extra > 0:
                # remove idle nodes first, then the least busy
                victims = sorted(mine, key=lambda n: (n.slots_used, -pool.nodes.index(n)))[:extra]
                for node in victims:
                    self._remove_node(pool, node, rz["option"])
        self._refresh_pool_counts(pool)

    def _remove_node(self, pool: Pool, node: Node, option: str) -> None:
        self.watch(pool)
        if node.runs and option in ("taskcompletion", "retaineddata"):
            node.leaving = True  # drains; removed when its tasks are done
            return
        for run_id in list(node.runs):
            rec = self.runs.get(run_id)
            if rec is None or rec.task.run is not rec.run:
                continue
            if option == "terminate":
                self.end_task(rec.task, "TaskEnded", "The task was terminated because its node was removed from the pool (terminate).")
            else:
                self._requeue(rec.task, count=True)
        pool.nodes.remove(node)
        self._trash(self.node_dir(pool, node))

    def _refresh_pool_counts(self, pool: Pool) -> None:
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

    def delete_pool(self, pool: Pool) -> None:
        acct = self.account(pool.account)
        pool.doc["state"] = "deleting"
        for node in list(pool.nodes):
            self._remove_node(pool, node, "requeue")
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
                    self._requeue(rec.task, count=True)
            node.preempted_until = until
            node.state_time = iso_now()
        self.watch(pool)
        self.touch(pool.doc)
        self.save_pool(pool)
        self.wake()
        return {"preemptedNodes": [n.id for n in low], "requeuedTasks": requeued, "returnAfterSeconds": seconds}

    # == jobs ==================================================================================
    def add_job(self, acct: Account, fields: dict, schedule: Schedule | None = None, tasks: Iterable[dict] = ()) -> Job:
        """Create a job (with its job manager task and ``tasks``, before its completion is judged)."""
        key = id_key(fields["id"])
        if key in acct.jobs:
            raise exists("Job")
        t = iso_now()
        doc = {
            "id": fields["id"],
            "usesTaskDependencies": False,
            "creationTime": t,
            "priority": 0,
            "allowTaskPreemption": False,
            "maxParallelTasks": -1,
            "onAllTasksComplete": "noaction",
            "onTaskFailure": "noaction",
        }
        doc.update(fields)
        doc["constraints"] = dict(fields.get("constraints") or {})
        doc["constraints"].setdefault("maxTaskRetryCount", 0)
        self.set_state(doc, "active")
        doc["executionInfo"] = {"startTime": t, "poolId": doc["poolInfo"]["poolId"]}
        self.touch(doc)
        job = Job(acct.name, key, self.next_seq(), doc, schedule_key=schedule.key if schedule else None)
        acct.jobs[key] = job
        self.save_job(job)
        jm = fields.get("jobManagerTask")
        if jm is not None:
            jm_fields = {k: v for k, v in jm.items() if k not in ("killJobOnCompletion", "runExclusive", "allowLowPriorityNode")}
            task = self.add_task(job, jm_fields)
            task.job_manager = True
            self.save_task(task)
        for task_fields in tasks:
            self.add_task(job, task_fields)
        if doc["constraints"].get("maxWallClockTime"):
            self._timed_jobs.add(job)
        self.check_job_complete(job)
        self.wake()
        return job

    def terminate_job(self, job: Job, reason: str) -> None:
        if job.state in ("terminating", "completed", "deleting"):
            return  # also stops the job manager's own completion from terminating it twice
        self.set_state(job.doc, "terminating")
        for task in job.tasks.values():
            if task.state == "running":
                self.end_task(task, "TaskEnded", "The task was ended because its job was terminated.")
        job.queue.clear()
        self.set_state(job.doc, "completed")
        job.doc.setdefault("executionInfo", {})["endTime"] = iso_now()
        job.doc["executionInfo"]["terminateReason"] = reason
        self.touch(job.doc)
        self.save_job(job)
        self._timed_jobs.discard(job)
        self.wake()

    def delete_job(self, job: Job) -> None:
        acct = self.account(job.account)
        self.set_state(job.doc, "deleting")
        for task in job.tasks.values():
            if task.run is not None:
                task.run.kill("delete")
                task.run = None
            task.gen += 1
        acct.jobs.pop(job.key, None)
        job.queue.clear()
        self._timed_jobs.discard(job)
        assert self.store is not None
        with self.store.batch():
            self.store.delete_tasks_of(job.account, job.key)
            self.store.delete("job", job.account, job.key)
        self._trash(self.tasks_root / job.account / job.doc["id"])

    def check_job_complete(self, job: Job) -> None:
        """onAllTasksComplete=terminatejob: a job whose tasks are all completed (or that has none,
        as on Azure) is terminated with reason AllTasksComplete."""
        if job.state != "active" or job.doc.get("onAllTasksComplete") != "terminatejob":
            return
        if all(t.state == "completed" for t in job.tasks.values()):
            self.terminate_job(job, "AllTasksComplete")

    def _trash(self, path: Path) -> None:
        """Remove a folder without holding the lock for the whole deletion."""
        if not path.exists():
            return
        self.trash.mkdir(mode=0o700, exist_ok=True)
        target = self.trash / f"{time.monotonic_ns()}-{os.getpid()}"
        try:
            path.rename(target)
        except OSError:
            target = path
        threading.Thread(target=shutil.rmtree, args=(target, True), daemon=True).start()

    # == tasks =================================================================================
    def add_task(self, job: Job, fields: dict) -> Task:
        t = iso_now()
        doc = {"id": fields["id"], "creationTime": t}
        doc.update(fields)
        doc["requiredSlots"] = int(fields.get("requiredSlots") or 1)
        doc["constraints"] = dict(fields.get("constraints") or {})
        if "maxTaskRetryCount" not in doc["constraints"]:
            doc["constraints"]["maxTaskRetryCount"] = job.doc.get("constraints", {}).get("maxTaskRetryCount", 0)
        self.set_state(doc, "active")
        doc["executionInfo"] = {"retryCount": 0, "requeueCount": 0}
        self.touch(doc)
        task = Task(job, id_key(fields["id"]), self.next_seq(), doc)
        job.tasks[task.key] = task
        self._enqueue(task)
        self.save_task(task)
        return task

    def _enqueue(self, task: Task, front: bool = False) -> None:
        job = task.job
        waiting = set()
        for dep in dependency_ids(task.doc):
            dk = id_key(dep)
            other = job.tasks.get(dk)
            if other is None or other.state != "completed" or other.doc.get("executionInfo", {}).get("result") != "success":
                waiting.add(dk)
                job.dependents.setdefault(dk, set()).add(task.key)
        task.deps_left = waiting
        if not waiting:
            job.queue[task.key] = task
            self._queued.add(job)
            if front:
                job.queue.move_to_end(task.key, last=False)

    def _task_succeeded(self, task: Task) -> None:
        job = task.job
        for waiter_key in job.dependents.pop(task.key, set()):
            waiter = job.tasks.get(waiter_key)
            if waiter is None:
                continue
            waiter.deps_left.discard(task.key)
            if not waiter.deps_left and waiter.state == "active" and waiter.run is None:
                job.queue[waiter.key] = waiter
                self._queued.add(job)

    def _reset_execution(self, task: Task) -> dict:
        ei = task.doc.setdefault("executionInfo", {"retryCount": 0, "requeueCount": 0})
        for k in ("startTime", "endTime", "exitCode", "result", "failureInfo", "containerInfo"):
            ei.pop(k, None)
        task.doc.pop("nodeInfo", None)
        return ei

    def _requeue(self, task: Task, count: bool) -> None:
        """Back to active (preemption, node removal, restart): not counted as a retry."""
        if task.run is not None:
            task.run.kill("requeue")
            task.run = None
        task.gen += 1
        ei = self._reset_execution(task)
        if count:
            ei["requeueCount"] = ei.get("requeueCount", 0) + 1
            ei["lastRequeueTime"] = iso_now()
        self.set_state(task.doc, "active")
        self.touch(task.doc)
        self._enqueue(task, front=True)
        self.save_task(task)
        self.wake()

    def end_task(self, task: Task, code: str, message: str) -> None:
        """Complete a task as failed without it finishing (terminate, job end, node removal)."""
        was_running = task.run is not None
        if task.run is not None:
            task.run.kill("terminate")
            task.run = None
        task.gen += 1
        task.job.queue.pop(task.key, None)
        ei = task.doc.setdefault("executionInfo", {"retryCount": 0, "requeueCount": 0})
        ei["endTime"] = iso_now()
        ei["result"] = "failure"
        ei["failureInfo"] = {"category": "usererror", "code": code, "message": message}
        if was_running and "exitCode" not in ei:
            ei["exitCode"] = 137  # what the kill leaves (128 + SIGKILL)
        self.set_state(task.doc, "completed")
        self.touch(task.doc)
        self.save_task(task)
        self._after_completion(task)

    def reactivate(self, task: Task) -> None:
        ei = self._reset_execution(task)
        ei["retryCount"] = 0
        task.gen += 1
        self.set_state(task.doc, "active")
        self.touch(task.doc)
        self._enqueue(task)
        self.save_task(task)
        self.wake()

    def delete_task(self, task: Task) -> None:
        job = task.job
        if task.run is not None:
            task.run.kill("delete")
            task.run = None
        task.gen += 1
        job.tasks.pop(task.key, None)
        job.queue.pop(task.key, None)
        assert self.store is not None
        self.store.delete("task", job.account, f"{job.key}/{task.key}")
        self._trash(self.task_dir(task))
        self.check_job_complete(job)

    def _after_completion(self, task: Task) -> None:
        job = task.job
        if task.job_manager and (job.doc.get("jobManagerTask") or {}).get("killJobOnCompletion", True):
            self.terminate_job(job, "JMComplete")
            return
        self.check_job_complete(job)
        self.wake()

    # == schedules =============================================================================
    def schedule_tick(self, sched: Schedule) -> float | None:
        """Create the schedule's next job if due; return seconds until it should be looked at again."""
        doc = sched.doc
        if doc["state"] != "active":
            return None
        acct = self.account(sched.account)
        cfg = doc.get("schedule") or {}
        wall = now()
        after = cfg.get("doNotRunAfter")
        recent = acct.jobs.get(sched.recent_job_key) if sched.recent_job_key else None
        if after and wall > parse_iso(after):
            if recent is None or recent.state == "completed":
                self._complete_schedule(sched)
            return 1.0
        info = doc.setdefault("executionInfo", {})
        nxt = info.get("nextRunTime")
        if nxt is None:
            if recent is None or recent.state == "completed":
                self._complete_schedule(sched)  # a one-off schedule whose job is done
            return 1.0
        due = parse_iso(nxt)
        if wall < due:
            return (due - wall).total_seconds()
        interval = parse_duration(cfg["recurrenceInterval"], "recurrenceInterval") if cfg.get("recurrenceInterval") else None
        window = parse_duration(cfg["startWindow"], "startWindow") if cfg.get("startWindow") else None
        if recent is not None and recent.state != "completed":
            # at most one active job per schedule: wait for it, unless the start window passed
            if window is not None and (wall - due).total_seconds() > window and interval:
                self._advance(sched, due, interval, wall)
                self.touch(doc)
                self.save_schedule(sched)
            return 0.25
        sched.job_counter += 1
        fields = dict(doc["jobSpecification"])
        fields["id"] = f"{doc['id']}:job-{sched.job_counter}"
        tasks = [t for item in fields.get("metadata") or [] if item.get("name") == BATCHFED_TASKS_METADATA
                 for t in tasks_from_metadata(item.get("value"))]
        try:
            job = self.add_job(acct, fields, schedule=sched, tasks=tasks)
        except ApiError as exc:  # e.g. someone created a job with that id by hand
            log.warning("job schedule %s/%s: could not create %s: %s", sched.account, doc["id"], fields["id"], exc)
            job = None
        if job is not None:
            sched.recent_job_key = job.key
            info["recentJob"] = {"id": job.doc["id"]}
        if interval:
            self._advance(sched, due, interval, wall)
        else:
            info.pop("nextRunTime", None)
        self.touch(doc)
        self.save_schedule(sched)
        self.wake()
        return 0.25

    @staticmethod
    def _advance(sched: Schedule, due: _dt.datetime, interval: float, wall: _dt.datetime) -> None:
        step = _dt.timedelta(seconds=interval)
        nxt = due + step
        while nxt <= wall:  # missed recurrences are skipped, not replayed
            nxt += step
        sched.doc["executionInfo"]["nextRunTime"] = iso(nxt)

    def _complete_schedule(self, sched: Schedule) -> None:
        self.set_state(sched.doc, "completed")
        sched.doc.setdefault("executionInfo", {})["endTime"] = iso_now()
        sched.doc["executionInfo"].pop("nextRunTime", None)
        self.touch(sched.doc)
        self.save_schedule(sched)

    def terminate_schedule(self, sched: Schedule) -> None:
        acct = self.account(sched.account)
        self.set_state(sched.doc, "terminating")
        for job in list(acct.jobs.values()):
            if job.schedule_key == sched.key and job.state != "completed":
                self.terminate_job(job, "UserTerminate")
        self._complete_schedule(sched)

    def delete_schedule(self, sched: Schedule) -> None:
        acct = self.account(sched.account)
        for job in list(acct.jobs.values()):
            if job.schedule_key == sched.key:
                self.delete_job(job)
        acct.schedules.pop(sched.key, None)
        assert self.store is not None
        self.store.delete("schedule", sched.account, sched.key)

    # == the dispatcher ========================================================================
    def _loop(self) -> None:
        with self.lock:
            while not self._stopping:
                self._dirty = False
                try:
                    with self.store_batch():
                        wait = self._tick()
                        self._dispatch()
                except Exception:  # keep serving; the next pass retries
                    log.exception("dispatcher pass failed")
                    wait = TICK_SECONDS
                if not self._dirty and not self._stopping:
                    self.cond.wait(max(0.01, min(wait, TICK_SECONDS)))

    def _restless_pools(self, mono: float) -> list[Pool]:
        """The pools to look at in this pass: the restless ones, or all of them once a second
        (a safety net for a change that forgot to call :meth:`watch`)."""
        if mono >= self._next_sweep:
            self._next_sweep = mono + TICK_SECONDS
            return [pool for acct in self.accounts.values() for pool in acct.pools.values()]
        pools = []
        for name, key in list(self._restless):
            pool = self.accounts[name].pools.get(key) if name in self.accounts else None
            if pool is None:
                self._restless.discard((name, key))  # deleted
            else:
                pools.append(pool)
        return pools

    def _tick(self) -> float:
        mono = time.monotonic()
        pools = self._restless_pools(mono)
        wait = min(TICK_SECONDS, max(0.0, self._next_sweep - mono))  # the next sweep is a timer too
        for pool in pools:
            changed = gone = preempted = False
            for node in pool.nodes:
                if node.preempted_until is not None:
                    if node.preempted_until <= mono:
                        node.preempted_until = None
                        node.state_time = iso_now()
                        changed = True
                    else:
                        wait = min(wait, node.preempted_until - mono)
                        preempted = True
                if node.leaving and not node.runs:
                    gone = True
            if pool.formula is not None and pool.next_autoscale is not None:
                if pool.next_autoscale <= mono:
                    self.autoscale_now(pool)
                wait = min(wait, max(0.0, (pool.next_autoscale or mono) - mono))
            if pool.resize is not None:
                if pool.resize["due"] <= mono:
                    self._apply_resize(pool)
                else:
                    wait = min(wait, pool.resize["due"] - mono)
            if gone:  # drained nodes leave the pool
                pool.nodes[:] = [n for n in pool.nodes if not (n.leaving and not n.runs)]
                changed = True
            self._refresh_pool_counts(pool)
            if changed:
                self.save_pool(pool)
            # quiet once nothing is pending: no timer, no preempted or draining node
            if preempted or pool.resize is not None or pool.formula is not None or any(n.leaving for n in pool.nodes):
                self._restless.add((pool.account, pool.key))
            else:
                self._restless.discard((pool.account, pool.key))
        for acct in self.accounts.values():
            for sched in list(acct.schedules.values()):
                nxt = self.schedule_tick(sched)
                if nxt is not None:
                    wait = min(wait, nxt)
        wall = now()
        for job in list(self._timed_jobs):
            if job.state != "active":
                self._timed_jobs.discard(job)
                continue
            limit = (job.doc.get("constraints") or {}).get("maxWallClockTime")
            if limit:
                age = (wall - parse_iso(job.doc["creationTime"])).total_seconds()
                left = parse_duration(limit, "constraints.maxWallClockTime") - age
                if left <= 0:
                    self.terminate_job(job, "MaxWallClockTimeExpiry")
                    continue
                wait = min(wait, left)
        return wait

    def _dispatch(self) -> None:
        cap = self.options.max_processes
        by_pool: dict[tuple[str, str], list[Job]] = {}
        for job in sorted(self._queued, key=lambda j: j.seq):
            state = job.state
            if not job.queue or state not in _MAY_RUN_AGAIN or self.accounts[job.account].jobs.get(job.key) is not job:
                self._queued.discard(job)  # emptied, ended (its waiting tasks never run) or deleted
            elif state == "active":  # a disabled job keeps its place for when it is enabled
                by_pool.setdefault((job.account, job.pool_key), []).append(job)
        for (account, pool_key), jobs in by_pool.items():
            pool = self.accounts[account].pools.get(pool_key)
            if pool is None or pool.doc.get("state") != "active":
                continue
            spn = pool.slots_per_node
            usable = [n for n in pool.nodes if n.preempted_until is None and not n.leaving]
            free = sum(spn - n.slots_used for n in usable)
            jobs.sort(key=lambda j: (-int(j.doc.get("priority") or 0), j.seq))
            for job in jobs:
                limit = int(job.doc.get("maxParallelTasks") or -1)
                misses = 0
                for task in list(job.queue.values()):
                    if free <= 0 or self.procs_running >= cap or (limit != -1 and job.running >= limit):
                        break
                    nodes = self._place(pool, usable, task)
                    if nodes is None:
                        misses += 1
                        if misses > MAX_UNPLACEABLE_SCAN:
                            break
                        continue
                    self._start(task, pool, nodes)
                    free -= task.doc["requiredSlots"] * len(nodes)
                if free <= 0 or self.procs_running >= cap:
                    break

    def _place(self, pool: Pool, usable: list[Node], task: Task) -> list[Node] | None:
        need = task.doc["requiredSlots"]
        mis = task.doc.get("multiInstanceSettings")
        count = int((mis or {}).get("numberOfInstances") or 1)
        if self.procs_running + count > self.options.max_processes:
            return None
        spn = pool.slots_per_node
        fits = [n for n in usable if spn - n.slots_used >= need]
        if len(fits) < count:
            return None
        pack = ((pool.doc.get("taskSchedulingPolicy") or {}).get("nodeFillType") or "spread") == "pack"
        fits.sort(key=lambda n: (spn - n.slots_used) if pack else (n.slots_used - spn))
        return fits[:count]

    def _start(self, task: Task, pool: Pool, nodes: list[Node]) -> None:
        job = task.job
        run_id = next(self._run_ids)
        need = task.doc["requiredSlots"]
        for n in nodes:
            n.slots_used += need
            n.runs.add(run_id)
            n.state_time = iso_now()
        self.procs_running += len(nodes)
        job.running += 1
        job.queue.pop(task.key, None)
        task.gen += 1
        ei = self._reset_execution(task)
        ei["startTime"] = iso_now()
        self.set_state(task.doc, "running")
        primary = nodes[0]
        tdir = self.task_dir(task)
        base = self.base(pool.account)
        task.doc["nodeInfo"] = {
            "affinityId": f"TVM:{primary.id}",
            "nodeUrl": f"{base}/pools/{pool.doc['id']}/nodes/{primary.id}",
            "poolId": pool.doc["id"],
            "nodeId": primary.id,
            "taskRootDirectory": str(tdir),
            "taskRootDirectoryUrl": f"{base}/jobs/{job.doc['id']}/tasks/{task.doc['id']}/files",
        }
        mis = task.doc.get("multiInstanceSettings")
        task.subtasks = []
        self.touch(task.doc)
        self.save_task(task)

        instances = tuple(
            Instance(i, n.id, n.ip, n.dedicated, tdir if i == 0 else tdir / "subtasks" / str(i), self.node_dir(pool, n) / "shared")
            for i, n in enumerate(nodes)
        )
        env, user_names = self._task_env(task, pool)
        spec = RunSpec(
            run_id=run_id,
            label=f"{job.account}/{job.doc['id']}/{task.doc['id']}",
            command_line=task.doc["commandLine"],
            coordination_command_line=(mis or {}).get("coordinationCommandLine") if mis else None,
            instances=instances,
            env=env,
            user_env_names=frozenset(user_names),
            wall_clock_seconds=self._wall_clock(task),
            container=task.doc.get("containerSettings"),
            prep=self._prep(job, pool, nodes, env),
        )
        run = Run(self, spec, time.monotonic())
        task.run = run
        self.runs[run_id] = RunRecord(run, task, job, pool, list(nodes), need, task.gen)
        run.start()

    @staticmethod
    def _wall_clock(task: Task) -> float | None:
        value = (task.doc.get("constraints") or {}).get("maxWallClockTime")
        return parse_duration(value, "constraints.maxWallClockTime") if value else None

    def _task_env(self, task: Task, pool: Pool) -> tuple[dict[str, str], list[str]]:
        job = task.job
        env = {k: os.environ[k] for k in BASE_ENV_NAMES if k in os.environ}
        user: list[str] = []
        for item in (job.doc.get("commonEnvironmentSettings") or []) + (task.doc.get("environmentSettings") or []):
            env[item["name"]] = item.get("value") or ""
            user.append(item["name"])
        env.update(
            AZ_BATCH_ACCOUNT_NAME=job.account,
            AZ_BATCH_ACCOUNT_URL=self.base(job.account),
            AZ_BATCH_POOL_ID=pool.doc["id"],
            AZ_BATCH_JOB_ID=job.doc["id"],
            AZ_BATCH_TASK_ID=task.doc["id"],
            AZ_BATCH_NODE_ROOT_DIR=str(self.dir),
        )
        if job.schedule_key:
            sched = self.account(job.account).schedules.get(job.schedule_key)
            if sched is not None:
                env["AZ_BATCH_JOB_SCHEDULE_ID"] = sched.doc["id"]
        return env, user

    def _prep(self, job: Job, pool: Pool, nodes: list[Node], env: dict[str, str]) -> Prep | None:
        prep = job.doc.get("jobPreparationTask")
        if not prep:
            return None
        penv = {k: v for k, v in env.items() if k != "AZ_BATCH_TASK_ID"}
        for item in prep.get("environmentSettings") or []:
            penv[item["name"]] = item.get("value") or ""
        penv["AZ_BATCH_TASK_ID"] = prep.get("id") or "jobpreparation"
        dirs = {n.id: self.node_dir(pool, n) / "jobprep" / job.doc["id"] for n in nodes}
        return Prep(prep["commandLine"], penv, dirs)

    # == callbacks from run threads ============================================================
    def register_pgid(self, run: Run, pgid: int) -> bool:
        with self.lock:
            if run.cancelled or self._stopping:
                return False
            run.pgids.append(pgid)
            if self.store is not None:
                self.store.add_proc(pgid, procs.starttime(pgid), run.spec.label)
            return True

    def prep_for(self, run: Run, node_id: str) -> tuple[bool, threading.Event | None, Failure | None]:
        with self.lock:
            rec = self.runs.get(run.spec.run_id)
            if rec is None:
                return False, None, Failure("servererror", "TaskEnded", "the task was stopped")
            state = rec.job.prep.get(node_id)
            if state is None:
                rec.job.prep[node_id] = PrepState()
                return True, None, None
            if state.event.is_set():
                return False, None, state.failure  # type: ignore[return-value]
            return False, state.event, None

    def prep_done(self, run: Run, node_id: str, failure: Failure | None, stopped: bool) -> None:
        """Record a job preparation result; waiting runs wake up and look again."""
        with self.lock:
            rec = self.runs.get(run.spec.run_id)
            if rec is None:
                return
            state = rec.job.prep.get(node_id) or PrepState()
            if stopped:
                rec.job.prep.pop(node_id, None)  # stopped, not failed: the next task runs it again
            else:
                state.failure = failure
            state.event.set()

    def run_finished(self, run: Run, outcome: Outcome) -> None:
        with self.lock:
            rec = self.runs.pop(run.spec.run_id, None)
            if rec is None:
                return
            for n in rec.nodes:
                n.slots_used -= rec.slots
                n.runs.discard(run.spec.run_id)
                n.total_tasks_run += 1
                n.state_time = iso_now()
            self.procs_running -= len(rec.nodes)
            rec.job.running -= 1
            if self.store is not None:
                for pgid in run.pgids:
                    self.store.remove_proc(pgid)
            task = rec.task
            live = (
                not self._stopping
                and self.account(rec.job.account).jobs.get(rec.job.key) is rec.job
                and rec.job.tasks.get(task.key) is task
                and task.gen == rec.gen
                and task.run is run
            )
            if live:
                task.run = None
                with self.store_batch():
                    self._record_outcome(task, rec, outcome)
            self.wake()

    def _record_outcome(self, task: Task, rec: RunRecord, outcome: Outcome) -> None:
        ei = task.doc["executionInfo"]
        ei["endTime"] = iso_now()
        if outcome.exit_code is not None:
            ei["exitCode"] = outcome.exit_code
        if len(rec.nodes) > 1:
            task.subtasks = [
                {
                    "id": r.index,
                    "nodeInfo": {"poolId": rec.pool.doc["id"], "nodeId": rec.nodes[r.index].id},
                    "startTime": iso(_from_epoch(r.start_time)),
                    "endTime": iso(_from_epoch(r.end_time)) if r.end_time else ei["endTime"],
                    "exitCode": r.exit_code,
                    "state": "completed",
                    "result": "success" if r.exit_code == 0 else "failure",
                }
                for r in outcome.instances[1:]
            ]
        task.gen += 1
        if outcome.failure is None and outcome.exit_code == 0:
            ei["result"] = "success"
            rec.nodes[0].total_succeeded += 1  # the primary ran the command line
            self.set_state(task.doc, "completed")
            self.touch(task.doc)
            self.save_task(task)
            self._task_succeeded(task)
            self._after_completion(task)
            return
        limit = int((task.doc.get("constraints") or {}).get("maxTaskRetryCount") or 0)
        retryable = outcome.failure is not None and outcome.failure.code == "FailureExitCode"
        if retryable and (limit == -1 or ei.get("retryCount", 0) < limit):
            retries = ei.get("retryCount", 0) + 1
            self._reset_execution(task)
            ei["retryCount"] = retries
            ei["lastRetryTime"] = iso_now()
            self.set_state(task.doc, "active")
            self.touch(task.doc)
            self._enqueue(task, front=True)
            self.save_task(task)
            return
        ei["result"] = "failure"
        if outcome.failure is not None:
            ei["failureInfo"] = outcome.failure.as_json()
        self.set_state(task.doc, "completed")
        self.touch(task.doc)
        self.save_task(task)
        self._after_completion(task)

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
        }


def _from_epoch(t: float) -> _dt.datetime:
    return _dt.datetime.fromtimestamp(t, _dt.timezone.utc)


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
    Engine.touch(doc)
    return doc

