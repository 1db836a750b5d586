"""The engine's shared state: the lock, the accounts and the run table, the dispatcher's
to-do sets, and the small helpers every concern uses to change a resource and save it."""

from __future__ import annotations

import itertools
import os
import shutil
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from .._util import iso_now, new_etag
from ..launch import isolation
from ..model import Account, Job, Node, Pool, Schedule, Task
from ..runner import Run
from ..store import Store


@dataclass
class Options:
    max_processes: int = 64
    allocation_delay: float = 0.1  # seconds a pool stays "resizing" before nodes appear
    relaxed_limits: bool = False  # accept 1 s recurrence / autoscale intervals (tests, drills)
    loose: bool = False  # accept and ignore (with a warning) body properties localbatch cannot honour


@dataclass
class RunRecord:
    run: Run
    task: Task
    job: Job
    pool: Pool
    nodes: list[Node]
    slots: int
    gen: int


class State:
    """Everything the engine knows, guarded by ``lock`` (re-entrant; ``cond`` wakes the
    dispatcher). The concern classes that make up :class:`~.Engine` inherit from this one, so
    they all read and change this one instance's fields."""

    def __init__(self, localbatch_dir: Path, options: Options | None = None):
        self.dir = Path(localbatch_dir)  # key, state database: never inside the node root
        self.node_root = isolation.node_root(self.dir)  # what tasks see as AZ_BATCH_NODE_ROOT_DIR
        self.tasks_root = self.node_root / "tasks"
        self.nodes_root = self.node_root / "nodes"
        self.trash = self.node_root / "trash"
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

    # == lookups ===============================================================================
    def account(self, name: str) -> Account:
        acct = self.accounts.get(name)
        if acct is None:
            acct = self.accounts[name] = Account(name)
        return acct

    def next_seq(self) -> int:
        return next(self._seq)

    def base(self, account: str) -> str:
        return f"{self.public_root}/accounts/{account}"

    def task_dir(self, task: Task) -> Path:
        return self.tasks_root / task.job.account / task.job.doc["id"] / task.doc["id"]

    def node_dir(self, pool: Pool, node: Node) -> Path:
        return self.nodes_root / pool.account / pool.doc["id"] / node.id

    # == waking the dispatcher =================================================================
    def watch(self, pool: Pool) -> None:
        """Have the dispatcher look at ``pool`` on every pass until it is quiet again (call
        with the lock held, after changing its nodes, resize or autoscale)."""
        self._restless.add((pool.account, pool.key))

    def wake(self) -> None:
        with self.lock:
            self._dirty = True
            self.cond.notify_all()

    # == changing and saving ===================================================================
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

    def store_batch(self):
        assert self.store is not None
        return self.store.batch()

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
