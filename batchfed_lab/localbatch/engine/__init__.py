"""The localbatch engine: accounts, pools, nodes, jobs, tasks and schedules, and the loop that
places tasks on node slots and starts them.

One re-entrant lock guards all state. Request handlers, the dispatcher thread and the run threads
take it briefly; processes are spawned and waited for outside it (see ``runner``). Every change
is written to the SQLite store before the lock is released, so what a client was told survives a
restart.

The engine is one object split by concern into classes that build on each other, one module
each; :class:`Engine` is the one that inherits them all and adds the lifecycle (load, the
dispatcher thread, shutdown):

- ``state``: :class:`~.state.State`, the fields every concern shares (the lock, accounts, run
  table, the dispatcher's to-do sets, the store) and the helpers that touch and save a resource;
- ``jobs``: jobs and their tasks, and a task's way through its job's queue;
- ``schedules``: job schedules creating their jobs (uses ``jobs``);
- ``pools``: pools and nodes, resizing, preemption, autoscale (uses ``jobs`` to requeue or end the
  tasks of a node that goes);
- ``dispatch``: placing queued tasks on nodes, starting them, and the run threads' callbacks
  (uses ``jobs``);
- ``timers``: what a pass does because time passed (uses ``pools`` and ``schedules``).

Each concern inherits the ones it calls, so which uses which can be read from the class lines,
and every method reaches the shared state as a plain attribute of ``self``. One object, not
components holding a reference to a state object: the dispatcher's per-task path reaches each
field in one attribute lookup, and the request handlers and the tests that drive a pass by hand
(``_tick``, ``_dispatch``) see one set of attributes.
"""

from __future__ import annotations

import itertools
import logging
import shutil
import threading
import time

from .. import procs
from .._util import iso_now
from ..launch import isolation
from ..model import Job, Node, Pool, Schedule, Task
from ..store import Store
from .dispatch import Dispatcher
from .pools import default_pool_doc
from .state import Options
from .timers import TICK_SECONDS, Timers

__all__ = ["Engine", "Options", "default_pool_doc"]

log = logging.getLogger("batchfed_lab.localbatch")


class Engine(Timers, Dispatcher):
    # == lifecycle =============================================================================
    def open(self) -> None:
        """Load the saved state (requeueing what was running) and start the dispatcher."""
        self.dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        isolation.prepare_node_root(self.node_root, self.dir)
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
                        self.requeue(rec.task, count=True)
                    rec.run.kill("shutdown")
            pending = [rec.run for rec in self.runs.values()]
        for run in pending:
            run.join(5)
        self.stop_start_tasks()
        isolation.kill_marked("AZ_BATCH_NODE_ROOT_DIR", str(self.node_root))
        if self._thread is not None:
            self._thread.join(5)
        with self.lock:
            if self.store is not None:
                self.store.close()
                self.store = None

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
        self._load_pools()
        self._load_jobs()
        with self.store.batch():
            requeued = self._load_tasks()
            self._load_schedules()
        if requeued:
            log.info("requeued %d task(s) that were running when localbatch last stopped", requeued)

    def _load_pools(self) -> None:
        assert self.store is not None
        for account, key, seq, doc in self.store.load("pool"):
            pool = Pool(account, key, seq, doc["rest"], node_counter=doc["x"].get("nodeCounter", 0))
            for n in doc["x"].get("nodes", []):
                pool.nodes.append(Node(n["id"], n["dedicated"], n["ip"], n["allocationTime"], iso_now()))
                self.begin_start_task(pool, pool.nodes[-1])  # a restart is a reboot: the start task runs again
            if doc["x"].get("resize"):
                pool.resize = dict(doc["x"]["resize"], due=time.monotonic())
            if pool.doc.get("enableAutoScale") and pool.doc.get("autoScaleFormula"):
                pool.formula = self._parse_formula(pool.doc["autoScaleFormula"])
                pool.next_autoscale = time.monotonic()
            self.account(account).pools[key] = pool
            self.watch(pool)

    def _load_jobs(self) -> None:
        assert self.store is not None
        for account, key, seq, doc in self.store.load("job"):
            job = Job(account, key, seq, doc["rest"], schedule_key=doc["x"].get("schedule"))
            self.account(account).jobs[key] = job
            if job.state == "active" and (job.doc.get("constraints") or {}).get("maxWallClockTime"):
                self._timed_jobs.add(job)

    def _load_tasks(self) -> int:
        """Load the tasks into their jobs and queue the active ones; return how many were running."""
        assert self.store is not None
        requeued = 0
        for account, key, seq, doc in self.store.load("task"):
            job = self.account(account).jobs.get(key.split("/", 1)[0])
            if job is None:  # a task row without its job: a crash mid-delete; finish the delete
                self.store.delete("task", account, key)
                continue
            task = Task(
                job,
                key.split("/", 1)[1],
                seq,
                doc["rest"],
                subtasks=doc["x"].get("subtasks", []),
                job_manager=doc["x"].get("jm", False),
            )
            job.tasks[task.key] = task
            if task.state in ("running", "preparing"):
                self.requeue(task, count=True)  # it was running when localbatch stopped
                requeued += 1
        # queued only once every task is loaded: a task's dependencies may come after it
        for acct in self.accounts.values():
            for loaded in acct.jobs.values():
                for task in loaded.tasks.values():
                    if task.state == "active":
                        self._enqueue(task)
        return requeued

    def _load_schedules(self) -> None:
        assert self.store is not None
        for account, key, seq, doc in self.store.load("schedule"):
            sched = Schedule(
                account,
                key,
                seq,
                doc["rest"],
                job_counter=doc["x"].get("jobCounter", 0),
                recent_job_key=doc["x"].get("recentJob"),
            )
            self.account(account).schedules[key] = sched

    # == the dispatcher thread =================================================================
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
