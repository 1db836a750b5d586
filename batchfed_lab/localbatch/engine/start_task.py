"""A pool's ``startTask``: run on each node when it joins the pool (and when localbatch restarts,
as a node reboot does), before the node takes tasks when ``waitForSuccess`` (the default).

A node is ``starting`` until the start task's process runs, then ``waitingforstarttask`` while
it runs with ``waitForSuccess``. A nonzero exit is retried up to ``maxTaskRetryCount`` times
(-1: without limit); when the last attempt fails the node is ``starttaskfailed`` and takes no
tasks. Without ``waitForSuccess`` the node is idle and takes tasks from the start; a failure is
only reported. ``startTaskInfo`` on the node tells the state, times, exit code, retries, result
and failure of the latest attempt. The start task runs in the node's ``startup`` folder
(``AZ_BATCH_NODE_STARTUP_DIR``); what it leaves running (a service, say) keeps running until the
node leaves the pool or localbatch stops.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
from pathlib import Path

from ... import runtime
from .. import procs
from .._util import ApiError, invalid, iso_now, missing
from ..launch import isolation
from ..launch.command_line import LaunchError, argv_of
from ..model import Node, Pool, name_values
from .jobs import Jobs

BASE_ENV_NAMES = ("PATH", "HOME", "USER", "LOGNAME", "LANG", "LC_ALL", "LC_CTYPE", "TZ")


# what a start task may ask for that localbatch does not do (refused, never silently dropped)
_REFUSED = (
    ("containerSettings", "start tasks run on this machine, not in a container"),
    ("resourceFiles", "start tasks get no resource files here; put inputs in place before"),
)


def check_start_task(spec: object) -> None:
    """Refuse (400) a pool's ``startTask`` that cannot run: no command line, a bad retry count,
    wait flag or environment setting."""
    if spec is None:
        return
    if not isinstance(spec, dict):
        raise invalid("startTask", "must be an object", spec)
    if not isinstance(spec.get("commandLine"), str) or not spec["commandLine"].strip():
        raise missing("startTask.commandLine")
    retries = spec.get("maxTaskRetryCount")
    if retries is not None and (isinstance(retries, bool) or not isinstance(retries, int) or not -1 <= retries <= 100):
        raise invalid("startTask.maxTaskRetryCount", "must be an integer from -1 to 100", retries)
    if spec.get("waitForSuccess") is not None and not isinstance(spec["waitForSuccess"], bool):
        raise invalid("startTask.waitForSuccess", "must be true or false", spec["waitForSuccess"])
    spec_env = {"environmentSettings": spec.get("environmentSettings")}
    name_values(spec_env, "environmentSettings")
    for prop, why in _REFUSED:
        if spec.get(prop):
            raise ApiError(
                400,
                "UnsupportedProperty",
                f"localbatch does not support startTask.{prop}: {why}.",
                {"PropertyName": f"startTask.{prop}"},
            )


class StartTaskRun:
    """The attempts of one node's start task, on their own thread."""

    def __init__(self, host: StartTasks, pool: Pool, node: Node, spec: dict):
        self.host = host
        self.node = node
        self.spec = spec
        self.folder = host.node_dir(pool, node) / "startup"
        self.shared = host.node_dir(pool, node) / "shared"
        self.argv_text = str(spec["commandLine"])
        self.env = host.start_task_env(pool, node, spec, self.folder)
        self.user = isolation.task_user(spec.get("userIdentity"))
        self.proc: subprocess.Popen | None = None
        self.stopped = False
        self._thread = threading.Thread(target=self._main, name=f"start-{node.id[:16]}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def join(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)

    def stop(self) -> None:
        """Kill the attempt running now (engine lock held)."""
        self.stopped = True
        if self.proc is not None:
            procs.kill_group(self.proc.pid, signal.SIGKILL)

    def _main(self) -> None:
        while not self.stopped:
            code, failure = self._attempt()
            if self.host.start_attempt_done(self, code, failure):
                return

    def _attempt(self) -> tuple[int | None, dict | None]:
        try:
            isolation.make_dirs(self.user, self.folder, self.folder / "wd", self.shared)
            with open(self.folder / "stdout.txt", "wb") as out, open(self.folder / "stderr.txt", "wb") as err:
                proc = isolation.spawn(
                    argv_of(self.argv_text), cwd=self.folder / "wd", env=self.env, stdout=out, stderr=err, user=self.user
                )
        except LaunchError as exc:
            return None, {"category": "usererror", "code": exc.code, "message": exc.message}
        except OSError as exc:
            return None, {"category": "servererror", "code": "LocalBatchInternalError", "message": str(exc)}
        if not self.host.start_attempt_running(self, proc):
            procs.kill_group(proc.pid, signal.SIGKILL)
        code = proc.wait()
        code = 128 - code if code < 0 else code
        if code == 0:
            return 0, None
        message = f"the start task exited with an unexpected exit code ({code})"
        return code, {"category": "usererror", "code": "FailureExitCode", "message": message}


class StartTasks(Jobs):
    def begin_start_task(self, pool: Pool, node: Node) -> None:
        """Run the pool's start task on ``node`` (lock held); a pool without one: nothing."""
        spec = pool.doc.get("startTask") or {}
        if not spec.get("commandLine"):
            return
        node.start_gate = "starting" if spec.get("waitForSuccess", True) else None
        node.start_info = {"state": "running", "startTime": iso_now(), "retryCount": 0}
        node.start_run = StartTaskRun(self, pool, node, spec)
        node.start_run.start()

    def start_task_env(self, pool: Pool, node: Node, spec: dict, folder: Path) -> dict[str, str]:
        env = {k: os.environ[k] for k in BASE_ENV_NAMES if k in os.environ}
        for item in spec.get("environmentSettings") or []:
            env[item["name"]] = item.get("value") or ""
        env.update(
            AZ_BATCH_ACCOUNT_NAME=pool.account,
            AZ_BATCH_ACCOUNT_URL=self.base(pool.account),
            AZ_BATCH_POOL_ID=pool.doc["id"],
            AZ_BATCH_NODE_ID=node.id,
            AZ_BATCH_NODE_IS_DEDICATED="true" if node.dedicated else "false",
            AZ_BATCH_NODE_ROOT_DIR=str(self.node_root),
            AZ_BATCH_NODE_SHARED_DIR=str(folder.parent / "shared"),
            AZ_BATCH_NODE_STARTUP_DIR=str(folder),
            AZ_BATCH_TASK_DIR=str(folder),
            AZ_BATCH_TASK_WORKING_DIR=str(folder / "wd"),
        )
        return env

    def start_attempt_running(self, run: StartTaskRun, proc: subprocess.Popen) -> bool:
        with self.lock:
            if run.stopped or self._stopping:
                return False
            run.proc = proc
            if self.store is not None:
                self.store.add_proc(proc.pid, runtime.starttime(proc.pid), f"start task of {run.node.id}")
            if run.node.start_gate == "starting":
                run.node.start_gate = "waitingforstarttask"
                run.node.state_time = iso_now()
            return True

    def start_attempt_done(self, run: StartTaskRun, code: int | None, failure: dict | None) -> bool:
        """Record an attempt; True when the start task is over (success, out of retries, stopped)."""
        with self.lock:
            if run.proc is not None and self.store is not None:
                self.store.remove_proc(run.proc.pid)
            run.proc = None
            node, info = run.node, run.node.start_info or {}
            if run.stopped or node.start_run is not run:
                return True
            limit = int(run.spec.get("maxTaskRetryCount") or 0)
            if failure is not None and code is not None and (limit == -1 or info.get("retryCount", 0) < limit):
                info.update(retryCount=info.get("retryCount", 0) + 1, lastRetryTime=iso_now(), startTime=iso_now())
                return False
            info.update(state="completed", endTime=iso_now(), result="failure" if failure else "success")
            if code is not None:
                info["exitCode"] = code
            if failure is not None:
                info["failureInfo"] = failure
            waited = node.start_gate is not None
            node.start_gate = "starttaskfailed" if failure is not None and waited else None
            node.state_time = iso_now()
            self.wake()
            return True

    def stop_start_task(self, node: Node) -> None:
        if node.start_run is not None:
            node.start_run.stop()
            node.start_run = None

    def stop_start_tasks(self) -> None:
        """Stop every node's start task (shutdown)."""
        with self.lock:
            runs = []
            for acct in self.accounts.values():
                for pool in acct.pools.values():
                    for node in pool.nodes:
                        if node.start_run is not None:
                            runs.append(node.start_run)
                            self.stop_start_task(node)
        for run in runs:
            run.join(5)
