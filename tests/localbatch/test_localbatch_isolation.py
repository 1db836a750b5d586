"""Nothing a task does reaches the workspace: the node root holds only node and task folders,
a task sees the Batch environment and its own settings (not the server's, which holds no
secrets anyway), cannot read the signing key, the state database or the server's environment,
and what it daemonises ends with its task and with ``batchfed down``."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from azure.batch import models as bm
from stack import batchfed_exe

from batchfed_lab import runtime
from batchfed_lab.localbatch import control
from batchfed_lab.localbatch.launch import isolation

from .lb_helpers import make_job, make_pool, sh, start_server, stdout_of, wait_for, wait_tasks_done

SHELL_NAMES = {"PWD", "OLDPWD", "SHLVL", "_"}  # what /bin/sh itself adds
BASE_NAMES = {"PATH", "HOME", "USER", "LOGNAME", "LANG", "LC_ALL", "LC_CTYPE", "TZ"}
AS_ROOT = os.geteuid() == 0


def _pid_from(client, job_id: str, task_id: str, name: str) -> int | None:
    try:
        text = stdout_of(client, job_id, task_id, f"wd/{name}").strip()
    except Exception:
        return None
    return int(text) if text.isdigit() else None


@pytest.mark.skipif(not AS_ROOT, reason="without root a task runs as the server's user; see launch/isolation.py")
def test_a_task_cannot_read_the_key_the_store_or_the_servers_environment(client, localbatch, lb_workspace):
    make_pool(client)
    make_job(client)
    targets = {
        "KEY": str(control.key_file(lb_workspace)),
        "STORE": str(lb_workspace / "localbatch" / "state.sqlite"),
        "SERVER_ENV": f"/proc/{localbatch.pid}/environ",
        "LOG": str(control.log_path(lb_workspace)),
    }
    probe = 'for f in "$KEY" "$STORE" "$SERVER_ENV" "$LOG"; do cat "$f" >/dev/null 2>&1 && echo "read $f" || echo "denied"; done'
    client.create_task(
        "job",
        bm.BatchTaskCreateOptions(
            id="probe",
            command_line=sh(probe),
            environment_settings=[bm.EnvironmentSetting(name=k, value=v) for k, v in targets.items()],
        ),
    )
    (task,) = wait_tasks_done(client, "job", 1)
    assert task.execution_info.result == bm.BatchTaskExecutionResult.SUCCESS
    assert stdout_of(client, "job", "probe").split("\n")[:-1] == ["denied"] * 4
    for path in targets.values():
        if not path.startswith("/proc"):
            assert os.path.exists(path)  # the files are there: the task was refused, not misled


def test_the_node_root_holds_only_node_and_task_folders_outside_the_workspace_files(client, lb_workspace):
    make_pool(client)
    make_job(client)
    client.create_task("job", bm.BatchTaskCreateOptions(id="ls", command_line=sh('ls -a "$AZ_BATCH_NODE_ROOT_DIR"')))
    wait_tasks_done(client, "job", 1)
    names = set(stdout_of(client, "job", "ls").split()) - {".", ".."}
    assert {"tasks", "nodes"} <= names <= {"tasks", "nodes", "trash"}
    for secret in (control.key_file(lb_workspace), lb_workspace / "localbatch" / "state.sqlite", control.log_path(lb_workspace)):
        assert secret.exists()


def test_a_task_gets_the_batch_environment_and_its_settings_not_the_servers(client):
    make_pool(client)
    make_job(client, common_environment_settings=[bm.EnvironmentSetting(name="FROM_JOB", value="j")])
    client.create_task(
        "job",
        bm.BatchTaskCreateOptions(
            id="env", command_line="env", environment_settings=[bm.EnvironmentSetting(name="FROM_TASK", value="t")]
        ),
    )
    wait_tasks_done(client, "job", 1)
    names = {line.split("=", 1)[0] for line in stdout_of(client, "job", "env").splitlines() if "=" in line}
    extra = {n for n in names - BASE_NAMES - {"FROM_JOB", "FROM_TASK"} if not n.startswith("AZ_BATCH_")}
    assert not extra, f"the task saw the server's environment: {sorted(extra)}"
    assert {"FROM_JOB", "FROM_TASK", "AZ_BATCH_TASK_ID", "AZ_BATCH_NODE_ROOT_DIR"} <= names


def test_localbatch_does_not_inherit_secrets(tmp_path, monkeypatch):
    monkeypatch.setenv("BATCHFED_STORAGE_CONNECTION_STRING", "AccountName=x;AccountKey=c2VjcmV0")
    monkeypatch.setenv("AZURE_CLIENT_SECRET", "s3cret")
    kept = control.server_environment(os.environ)
    assert "BATCHFED_STORAGE_CONNECTION_STRING" not in kept and "AZURE_CLIENT_SECRET" not in kept
    assert kept["PATH"] == os.environ["PATH"]
    if not AS_ROOT:
        return  # the server is not dumpable: only root may read its environment
    info = start_server(tmp_path / "ws")
    try:
        environ = Path(f"/proc/{info.pid}/environ").read_bytes()
    finally:
        control.stop(tmp_path / "ws")
    assert b"c2VjcmV0" not in environ and b"s3cret" not in environ


def test_what_a_task_daemonises_ends_with_the_task(client):
    make_pool(client)
    make_job(client)
    # setsid leaves the task's process group; the subshell's fork leaves its parent (double fork)
    script = "setsid sleep 300 & echo $! > setsid; (sleep 300 & echo $! > forked) & while [ ! -s forked ]; do sleep 0.05; done"
    client.create_task("job", bm.BatchTaskCreateOptions(id="daemons", command_line=sh(script)))
    (task,) = wait_tasks_done(client, "job", 1)
    assert task.execution_info.result == bm.BatchTaskExecutionResult.SUCCESS
    for name in ("setsid", "forked"):
        pid = wait_for(lambda name=name: _pid_from(client, "job", "daemons", name), what=f"the {name} pid")
        wait_for(lambda pid=pid: not runtime.alive(pid), what=f"the {name} process to be killed")


def test_a_setsid_child_does_not_survive_batchfed_down(tmp_path):
    ws = tmp_path / "ws"
    start_server(ws)
    client = control.batch_client("downacct", ws)
    try:
        make_pool(client)
        make_job(client)
        script = "setsid sh -c 'echo $$ > daemon; exec sleep 300' & sleep 300"
        client.create_task("job", bm.BatchTaskCreateOptions(id="long", command_line=sh(script)))
        pid = wait_for(lambda: _pid_from(client, "job", "long", "daemon"), what="the daemon's pid")
        assert runtime.alive(pid) and os.getsid(pid) == pid  # a session of its own
    finally:
        client.close()
        env = {**os.environ, "BATCHFED_HOME": str(ws)}
        down = subprocess.run([*batchfed_exe(), "down"], env=env, capture_output=True, text=True, timeout=90)
    assert down.returncode == 0, down.stderr
    wait_for(lambda: not runtime.alive(pid), 10, "the daemon to be gone after batchfed down")


def test_a_setsid_child_does_not_survive_a_killed_server(tmp_path):
    ws = tmp_path / "ws"
    info = start_server(ws)
    client = control.batch_client("killacct", ws)
    try:
        make_pool(client)
        make_job(client)
        script = "setsid sh -c 'echo $$ > daemon; exec sleep 300' & sleep 300"
        client.create_task("job", bm.BatchTaskCreateOptions(id="long", command_line=sh(script)))
        pid = wait_for(lambda: _pid_from(client, "job", "long", "daemon"), what="the daemon's pid")
    finally:
        client.close()
    os.kill(info.pid, 9)  # no chance to clean up: the daemon goes to init
    wait_for(lambda: not runtime.alive(info.pid), what="the server to die")
    assert runtime.alive(pid)
    control.stop(ws)
    wait_for(lambda: not runtime.alive(pid), 10, "the daemon to be gone after stop")


def _unprivileged_python() -> list[str] | None:
    """The system Python, run as nobody, when it can import this checkout and its packages."""
    site = Path(sys.prefix) / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" / "site-packages"
    system = Path(f"/usr/bin/python{sys.version_info.major}.{sys.version_info.minor}")
    setpriv = shutil.which("setpriv")
    if not (AS_ROOT and setpriv and system.exists() and site.is_dir()):
        return None
    checkout = Path(__file__).resolve().parents[2]
    env = ["env", "-i", "PATH=/usr/bin:/bin", "LANG=C.UTF-8", f"PYTHONPATH={checkout}:{site}"]
    argv = [setpriv, "--reuid", "65534", "--regid", "65534", "--clear-groups", *env, str(system)]
    probe = subprocess.run([*argv, "-c", "import azure.batch, batchfed_lab.localbatch"], capture_output=True, timeout=60)
    return argv if probe.returncode == 0 else None


def test_without_root_daemons_still_end_and_the_server_environment_stays_closed():
    """What holds when localbatch runs as an ordinary user (here: nobody): the subreaper and the
    marker still end what a task daemonised, and the server, not dumpable, keeps its environment
    from the task. The key is readable then: the task runs as the key's owner (documented)."""
    argv = _unprivileged_python()
    if argv is None:
        pytest.skip("needs root (to become nobody) and a system Python that can import this checkout")
    ws = Path(tempfile.mkdtemp(prefix="lb-nonroot-"))
    try:
        os.chown(ws, 65534, 65534)
        probe = Path(__file__).with_name("nonroot_probe.py")
        run = subprocess.run([*argv, str(probe), str(ws)], capture_output=True, text=True, timeout=180, cwd=ws)
        assert run.returncode == 0, run.stderr[-2000:]
        seen = json.loads(run.stdout.strip().splitlines()[-1])
    finally:
        shutil.rmtree(ws, ignore_errors=True)
    assert seen == {
        "server_environment": "denied",
        "key": "read",
        "daemon_ends_with_its_task": True,
        "daemon_ends_with_stop": True,
    }


def test_a_workspace_from_before_the_node_root_keeps_its_task_folders(tmp_path):
    lb_dir = tmp_path / "ws" / "localbatch"
    old = lb_dir / "tasks" / "acct" / "job" / "t1"
    old.mkdir(parents=True)
    (old / "stdout.txt").write_text("kept\n")
    (lb_dir / "key").write_text("k\n")
    root = isolation.node_root(lb_dir)
    try:
        isolation.prepare_node_root(root, lb_dir)
        assert (root / "tasks" / "acct" / "job" / "t1" / "stdout.txt").read_text() == "kept\n"
        assert not (lb_dir / "tasks").exists() and (root / "nodes").is_dir()
        assert (lb_dir / "key").exists() and not (root / "key").exists()
    finally:
        if AS_ROOT:
            shutil.rmtree(root, ignore_errors=True)
            root.with_name(root.name + isolation.WORKSPACE_NOTE).unlink(missing_ok=True)
