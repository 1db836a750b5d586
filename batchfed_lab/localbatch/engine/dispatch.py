"""Running tasks on nodes: a dispatcher pass places queued tasks on free node slots and starts
them; the run threads call back (under the lock) to record process groups, job preparation
and the outcome, which frees the slots again. Slots are taken in ``_start`` and given back in
``run_finished``: keep the two in step.

Every task goes through here, so a pass looks only at the jobs with queued tasks (``_queued``)
and only at the pools they run on."""

from __future__ import annotations

import datetime as _dt
import os
import threading
import time

from ... import runtime
from .._util import iso, iso_now, parse_duration
from ..launch import isolation
from ..model import Job, Node, Pool, PrepState, Task
from ..runner import Failure, Instance, Outcome, Prep, Run, RunSpec
from .exit_conditions import take_exit_actions
from .jobs import Jobs
from .state import RunRecord

# what a task takes from the server's environment: the program search path and the locale
BASE_ENV_NAMES = ("PATH", "HOME", "USER", "LOGNAME", "LANG", "LC_ALL", "LC_CTYPE", "TZ")
_MAY_RUN_AGAIN = frozenset({"active", "disabling", "disabled", "enabling"})  # job states whose queue may still run
MAX_UNPLACEABLE_SCAN = 64  # tasks looked at per job and pass when they do not fit


class Dispatcher(Jobs):
    # == placing and starting ==================================================================
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
            usable = [
                n
                for n in pool.nodes
                if n.preempted_until is None and not n.leaving and n.start_gate is None and n.condition is None
            ]
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
            Instance(
                i, n.id, n.ip, n.dedicated, tdir if i == 0 else tdir / "subtasks" / str(i), self.node_dir(pool, n) / "shared"
            )
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
            user=isolation.task_user(task.doc.get("userIdentity")),
            resource_files=tuple(task.doc.get("resourceFiles") or ()),
            output_files=tuple(task.doc.get("outputFiles") or ()),
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
            AZ_BATCH_NODE_ROOT_DIR=str(self.node_root),
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
                self.store.add_proc(pgid, runtime.starttime(pgid), run.spec.label)
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
                return False, None, state.failure  # type: ignore[return-value]  # set before the event, with the outcome
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
            take_exit_actions(self, task)
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
        take_exit_actions(self, task)
        self._after_completion(task)


def _from_epoch(t: float) -> _dt.datetime:
    return _dt.datetime.fromtimestamp(t, _dt.timezone.utc)
