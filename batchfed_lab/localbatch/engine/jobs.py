"""Jobs and their tasks: creating, ending and deleting them, and each task's way through the
queue (dependencies, requeue, retry counts, completion and what a completion ends)."""

from __future__ import annotations

from collections.abc import Iterable

from .._util import exists, id_key, iso_now
from ..model import Account, Job, Schedule, Task, dependency_ids
from .exit_conditions import satisfies_dependents
from .state import State


class Jobs(State):
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
            self.watch_wall_clock(job)
        self.check_job_complete(job)
        self.wake()
        return job

    def watch_wall_clock(self, job: Job) -> None:
        """Have the ticks end ``job`` when its ``maxWallClockTime`` runs out."""
        self._timed_jobs.add(job)

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
            if other is None or not satisfies_dependents(other.doc):
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

    def requeue(self, task: Task, count: bool) -> None:
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
