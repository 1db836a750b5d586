"""Running one task attempt as real processes.

The engine decides *what* runs *where* under its lock and hands a :class:`RunSpec` to a
:class:`Run`, whose thread spawns the processes, enforces the wall-clock limit and reports the
outcome back. Each process is the command line split into arguments without a shell, as the
Batch agent runs it (``launch.command_line``), started in its own session (so its process group id
is its pid and one ``killpg`` stops it and everything it started) as the task's user
(``launch.isolation``), with stdout.txt and stderr.txt in the task folder and the working
directory ``<task folder>/wd``. What a task daemonised out of its group is killed by its
``AZ_BATCH_TASK_DIR`` when the attempt ends.

Multi-instance tasks: the coordination command runs on every instance (each on its own node and
folder); when all succeeded, the application command runs on the primary (instance 0). Leftover
background processes of every instance are killed when the task ends.

Container tasks run through ``docker run`` when ``docker info`` answers; otherwise the attempt
fails with failureInfo code ``ContainerEngineUnavailable``.
"""

from __future__ import annotations

import logging
import os
import shlex
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from . import procs
from .launch import isolation
from .launch.command_line import LaunchError, argv_of

log = logging.getLogger("batchfed_lab.localbatch")

KILL_GRACE_SECONDS = 1.0
DOCKER_PROBE_TTL = 30.0


@dataclass(frozen=True)
class Instance:
    """Where one instance of a task attempt runs."""

    index: int
    node_id: str
    node_ip: str
    dedicated: bool
    task_dir: Path  # holds stdout.txt, stderr.txt and wd/
    node_shared_dir: Path


@dataclass(frozen=True)
class Failure:
    category: str  # usererror | servererror
    code: str
    message: str

    def as_json(self) -> dict:
        return {"category": self.category, "code": self.code, "message": self.message}


@dataclass(frozen=True)
class Prep:
    """A job preparation task to run once per (job, node) before the job's tasks there."""

    command_line: str
    env: dict[str, str]
    dirs: dict[str, Path]  # node id -> job prep folder on that node


@dataclass(frozen=True)
class RunSpec:
    run_id: int
    label: str  # account/job/task, for logs
    command_line: str
    coordination_command_line: str | None
    instances: tuple[Instance, ...]
    env: dict[str, str]  # everything but the per-instance AZ_BATCH_* variables
    user_env_names: frozenset[str]  # job/task environmentSettings (what a container receives)
    wall_clock_seconds: float | None
    container: dict | None
    prep: Prep | None
    user: isolation.TaskUser | None = None  # None: the server's own user
    resource_files: tuple[dict, ...] = ()  # downloaded before the command (task_files)
    output_files: tuple[dict, ...] = ()  # uploaded after it, by their upload condition


@dataclass
class InstanceResult:
    index: int
    start_time: float
    end_time: float | None = None
    exit_code: int | None = None


@dataclass
class Outcome:
    exit_code: int | None
    failure: Failure | None = None
    timed_out: bool = False
    instances: list[InstanceResult] = field(default_factory=list)


class Host(Protocol):
    """What a run needs from the engine."""

    def register_pgid(self, run: Run, pgid: int) -> bool: ...

    def run_finished(self, run: Run, outcome: Outcome) -> None: ...

    def prep_for(self, run: Run, node_id: str) -> tuple[bool, threading.Event | None, Failure | None]: ...

    def prep_done(self, run: Run, node_id: str, failure: Failure | None, stopped: bool) -> None: ...


def exit_code_of(returncode: int) -> int:
    """Popen's -N (killed by signal N) becomes the shell's 128+N, as a node agent would report."""
    return 128 - returncode if returncode < 0 else returncode


class _Docker:
    """Is a container engine answering? Probed with ``docker info``, cached briefly."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._checked = 0.0
        self._reason: str | None = "not probed"

    def unavailable_reason(self) -> str | None:
        with self._lock:
            if time.monotonic() - self._checked > DOCKER_PROBE_TTL:
                self._reason = self._probe()
                self._checked = time.monotonic()
            return self._reason

    @staticmethod
    def _probe() -> str | None:
        try:
            res = subprocess.run(
                ["docker", "info", "--format", "{{.ServerVersion}}"],
                stdin=subprocess.DEVNULL,
                capture_output=True,
                timeout=15,
            )
        except FileNotFoundError:
            return "no 'docker' command on this machine"
        except subprocess.TimeoutExpired:
            return "'docker info' did not answer within 15 s"
        if res.returncode != 0:
            last = (res.stderr.decode("utf-8", "replace").strip().splitlines() or ["no output"])[-1]
            return f"'docker info' failed: {last[:300]}"
        return None


DOCKER = _Docker()


class Run:
    """One attempt of one task; ``start()`` runs it on its own thread."""

    def __init__(self, host: Host, spec: RunSpec, start_monotonic: float):
        self.host = host
        self.spec = spec
        self.start_monotonic = start_monotonic
        self.pgids: list[int] = []
        self.cancelled: str | None = None  # set by the engine (under its lock) to stop the run
        self.containers: list[str] = []
        self._thread = threading.Thread(target=self._main, name=f"run-{spec.run_id}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def join(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)

    # -- killing (called by the engine, under its lock) --------------------------------------
    def kill(self, reason: str) -> None:
        self.cancelled = self.cancelled or reason
        for pgid in list(self.pgids):
            procs.kill_group(pgid, signal.SIGKILL)
        for name in self.containers:  # the docker CLI can be slow: not under the engine's lock
            threading.Thread(target=_docker_kill, args=(name,), daemon=True).start()

    # -- the thread --------------------------------------------------------------------------
    def _main(self) -> None:
        outcome = Outcome(exit_code=None)
        try:
            outcome = self._execute()
        except LaunchError as exc:
            outcome = Outcome(None, Failure("usererror", exc.code, exc.message))
        except Exception as exc:  # a bug or an OS failure must still release the slots
            if not self.cancelled:  # a cancelled run racing its folder's deletion is no news
                log.exception("run %s (%s) failed unexpectedly", self.spec.run_id, self.spec.label)
            outcome = Outcome(
                None, Failure("servererror", "LocalBatchInternalError", f"localbatch could not run the task: {exc}")
            )
        finally:
            for pgid in self.pgids:  # no orphans: whatever the task left behind goes too
                procs.kill_group(pgid, signal.SIGKILL)
            for name in self.containers:
                _docker_kill(name)
            # and whatever it daemonised out of its groups (a job preparation task's daemons may
            # serve the job's other tasks: they go with their node)
            for inst in self.spec.instances:
                isolation.kill_marked("AZ_BATCH_TASK_DIR", str(inst.task_dir))
        outcome = self._with_output_files(outcome)
        self.host.run_finished(self, outcome)

    def _deadline(self) -> float | None:
        w = self.spec.wall_clock_seconds
        return None if w is None else self.start_monotonic + w

    def _execute(self) -> Outcome:
        spec = self.spec
        results = [InstanceResult(i.index, time.time()) for i in spec.instances]
        for inst in spec.instances:
            isolation.make_dirs(spec.user, inst.task_dir, inst.task_dir / "wd", inst.node_shared_dir)
        if spec.container is not None:
            reason = DOCKER.unavailable_reason()
            if reason:
                return Outcome(
                    None,
                    Failure(
                        "usererror",
                        "ContainerEngineUnavailable",
                        f"this task needs a container (image {spec.container.get('imageName')!r}) but no container engine "
                        f"answers on this machine: {reason}",
                    ),
                    instances=results,
                )
        if spec.prep is not None:
            failure = self._run_prep()
            if failure is not None or self.cancelled:
                return Outcome(None, failure, instances=results)

        primary = spec.instances[0]
        missed = self._fetch_inputs(primary)
        if missed is not None:
            return Outcome(None, missed, instances=results)
        if spec.resource_files:
            isolation.hand_over(spec.user, primary.task_dir / "wd")
        if spec.coordination_command_line is not None:
            running = [(inst, self._spawn(spec.coordination_command_line, inst, append=False)) for inst in spec.instances]
            failed: tuple[Instance, int] | None = None
            for (inst, proc), res in zip(running, results):
                code = self._wait(proc)
                if code is None:
                    return self._timed_out(results)
                res.exit_code, res.end_time = code, time.time()
                if code != 0 and failed is None:
                    failed = (inst, code)
            if self.cancelled:
                return Outcome(None, instances=results)
            if failed is not None:
                inst, code = failed
                return Outcome(
                    code,
                    Failure(
                        "usererror", "FailureExitCode", f"the coordination command exited with code {code} on node {inst.node_id}"
                    ),
                    instances=results,
                )
        proc = self._spawn(spec.command_line, primary, append=spec.coordination_command_line is not None)
        code = self._wait(proc)
        if code is None:
            return self._timed_out(results)
        results[0].exit_code, results[0].end_time = code, time.time()
        failure = None
        if code != 0:
            failure = Failure("usererror", "FailureExitCode", f"the task process exited with an unexpected exit code ({code})")
        return Outcome(code, failure, instances=results)

    def _fetch_inputs(self, primary: Instance) -> Failure | None:
        """Download the resource files into the primary's working directory; why not, or None."""
        if not self.spec.resource_files:
            return None
        from . import task_files  # here, not at the top: most tasks have no files

        missed = task_files.fetch_inputs(list(self.spec.resource_files), primary.task_dir / "wd")
        return None if missed is None else Failure("usererror", missed.code, missed.message)

    def _with_output_files(self, outcome: Outcome) -> Outcome:
        """Upload the output files once the command ran (not when it never started or was stopped),
        after its leftover processes are gone; an upload failure is the attempt's failure unless
        the command already failed. Never raises: the run must still report its end."""
        if not self.spec.output_files or outcome.exit_code is None or self.cancelled:
            return outcome
        from . import task_files

        primary = self.spec.instances[0]
        try:
            failed = task_files.upload_outputs(
                list(self.spec.output_files),
                primary.task_dir,
                primary.task_dir / "wd",
                outcome.exit_code,
                self._instance_env(primary),
            )
        except Exception as exc:  # e.g. the task folder deleted under it
            failed = task_files.FileFailure("FileUploadMiscError", f"uploading output files failed: {exc}")
        if failed is not None and outcome.failure is None:
            outcome.failure = Failure("usererror", failed.code, failed.message)
        return outcome

    def _timed_out(self, results: list[InstanceResult]) -> Outcome:
        limit = self.spec.wall_clock_seconds
        return Outcome(
            exit_code_of(-signal.SIGKILL),
            Failure(
                "usererror",
                "MaxWallClockTimeExceeded",
                f"the task ran longer than its maxWallClockTime ({limit:g} s) and was killed",
            ),
            timed_out=True,
            instances=results,
        )

    def _wait(self, proc: subprocess.Popen | None) -> int | None:
        """Wait for ``proc``; None when the wall-clock limit hit (the group is killed then)."""
        if proc is None:  # cancelled before it could start
            return exit_code_of(-signal.SIGKILL)
        deadline = self._deadline()
        try:
            rc = proc.wait(None if deadline is None else max(0.0, deadline - time.monotonic()))
            return exit_code_of(rc)
        except subprocess.TimeoutExpired:
            pass
        procs.kill_group(proc.pid, signal.SIGTERM)
        try:
            proc.wait(KILL_GRACE_SECONDS)
        except subprocess.TimeoutExpired:
            procs.kill_group(proc.pid, signal.SIGKILL)
            proc.wait()
        return None

    def _instance_env(self, inst: Instance) -> dict[str, str]:
        env = dict(self.spec.env)
        env["AZ_BATCH_NODE_ID"] = inst.node_id
        env["AZ_BATCH_NODE_IS_DEDICATED"] = "true" if inst.dedicated else "false"
        env["AZ_BATCH_NODE_SHARED_DIR"] = str(inst.node_shared_dir)
        env["AZ_BATCH_NODE_STARTUP_DIR"] = str(inst.node_shared_dir.parent / "startup")
        env["AZ_BATCH_TASK_DIR"] = str(inst.task_dir)
        env["AZ_BATCH_TASK_WORKING_DIR"] = str(inst.task_dir / "wd")
        if len(self.spec.instances) > 1 or self.spec.coordination_command_line is not None:
            ips = [i.node_ip for i in self.spec.instances]
            env["AZ_BATCH_HOST_LIST"] = ",".join(ips)
            env["AZ_BATCH_NODE_LIST"] = ";".join(ips)
            env["AZ_BATCH_MASTER_NODE"] = f"{ips[0]}:6000"
            env["AZ_BATCH_IS_CURRENT_NODE_MASTER"] = "true" if inst.index == 0 else "false"
            env["AZ_BATCH_TASK_SHARED_DIR"] = str(self.spec.instances[0].task_dir)
        return env

    def _spawn(self, command: str, inst: Instance, *, append: bool) -> subprocess.Popen | None:
        env = self._instance_env(inst)
        argv = argv_of(command)
        if self.spec.container is not None:
            argv = self._docker_argv(argv, inst, env)
        mode = "ab" if append else "wb"
        with open(inst.task_dir / "stdout.txt", mode) as out, open(inst.task_dir / "stderr.txt", mode) as err:
            proc = isolation.spawn(argv, cwd=inst.task_dir / "wd", env=env, stdout=out, stderr=err, user=self.spec.user)
        if not self.host.register_pgid(self, proc.pid):
            procs.kill_group(proc.pid, signal.SIGKILL)
            proc.wait()
            return None
        return proc

    def _docker_argv(self, command: list[str], inst: Instance, env: dict[str, str]) -> list[str]:
        c = self.spec.container or {}
        name = f"localbatch-{self.spec.run_id}-{inst.index}-{os.getpid()}"
        self.containers.append(name)
        wd = str(inst.task_dir / "wd")
        argv = ["docker", "run", "--rm", "--init", "--name", name, "--network", "host", "-v", f"{inst.task_dir}:{inst.task_dir}"]
        if c.get("workingDirectory", "taskWorkingDirectory") != "containerImageDefault":
            argv += ["-w", wd]
        for name_ in sorted(env):
            if name_.startswith("AZ_BATCH_") or name_ in self.spec.user_env_names:
                argv += ["-e", name_]  # the value comes from docker's own environment: not on the command line
        argv += shlex.split(c.get("containerRunOptions") or "")
        return [*argv, str(c["imageName"]), *command]

    def _run_prep(self) -> Failure | None:
        """Run the job preparation task on each node of this attempt that has not run it yet."""
        for inst in self.spec.instances:
            while True:
                mine, event, failure = self.host.prep_for(self, inst.node_id)
                if failure is not None:
                    return failure
                if mine:
                    failure = self._prep_on(inst)
                    if failure is not None:
                        return failure
                    break
                if event is None:
                    break  # done successfully before
                event.wait()  # another task of this job is preparing this node
        return None

    def _prep_on(self, inst: Instance) -> Failure | None:
        prep = self.spec.prep
        assert prep is not None
        folder = prep.dirs[inst.node_id]
        isolation.make_dirs(self.spec.user, folder, folder / "wd")
        env = dict(prep.env)
        env.update(
            AZ_BATCH_NODE_ID=inst.node_id,
            AZ_BATCH_NODE_IS_DEDICATED="true" if inst.dedicated else "false",
            AZ_BATCH_NODE_SHARED_DIR=str(inst.node_shared_dir),
            AZ_BATCH_JOB_PREP_DIR=str(folder),
            AZ_BATCH_JOB_PREP_WORKING_DIR=str(folder / "wd"),
            AZ_BATCH_TASK_DIR=str(folder),
            AZ_BATCH_TASK_WORKING_DIR=str(folder / "wd"),
        )
        try:
            with open(folder / "stdout.txt", "wb") as out, open(folder / "stderr.txt", "wb") as err:
                argv = argv_of(prep.command_line)
                proc = isolation.spawn(argv, cwd=folder / "wd", env=env, stdout=out, stderr=err, user=self.spec.user)
        except LaunchError as exc:
            why = Failure("usererror", "JobPreparationTaskFailed", f"the job preparation task could not start: {exc}")
            self.host.prep_done(self, inst.node_id, why, stopped=False)
            return why
        code: int | None = None
        if self.host.register_pgid(self, proc.pid):
            code = self._wait(proc)
        else:
            procs.kill_group(proc.pid, signal.SIGKILL)
            proc.wait()
        if self.cancelled:
            self.host.prep_done(self, inst.node_id, None, stopped=True)
            return Failure("servererror", "TaskEnded", "the task was stopped while its job preparation task ran")
        failure = None
        if code != 0:
            how = "ran past the task's wall-clock limit" if code is None else f"exited with code {code}"
            failure = Failure("usererror", "JobPreparationTaskFailed", f"the job preparation task {how} on node {inst.node_id}")
        self.host.prep_done(self, inst.node_id, failure, stopped=False)
        return failure


def _docker_kill(name: str) -> None:
    try:
        subprocess.run(["docker", "kill", name], stdin=subprocess.DEVNULL, capture_output=True, timeout=15)
    except (OSError, subprocess.TimeoutExpired):
        pass
