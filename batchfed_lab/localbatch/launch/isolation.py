"""Keeping tasks apart from the workspace that runs them.

- **Who a task runs as.** When localbatch runs as root, a task runs as an unprivileged user
  (``nobody``), as Azure runs tasks as a non-admin auto user by default; a task or start task
  whose ``userIdentity.autoUser.elevationLevel`` is ``admin`` runs as root. The signing key, the
  state database and the logs are root's, 0600, outside the node root: the task cannot read
  them, nor the server's ``/proc/<pid>/environ``. Without root there is no other user to switch
  to: tasks run as the server's user, the key and stores are only kept out of the node root
  (not findable from ``AZ_BATCH_*``), and the server marks itself not dumpable so a task of the
  same user cannot read its environment or memory.
- **Where the node root is.** Tasks must reach their folders by absolute path
  (``AZ_BATCH_NODE_SHARED_DIR``…). A workspace usually sits below a folder only its owner may
  enter (``/root``, pytest's temporary folders), so under root the node root is a per-workspace
  folder of ``/var/lib/batchfed-localbatch`` (0755, as a node's root is); otherwise it is
  ``<workspace>/localbatch/root``. It holds only ``tasks/``, ``nodes/`` and the trash.
- **What a task leaves behind.** The server is a child subreaper
  (``prctl(PR_SET_CHILD_SUBREAPER)``): a process that daemonises (``setsid``, double fork) is
  re-parented to the server, not to init, and is found among its descendants by the
  ``AZ_BATCH_TASK_DIR`` in its environment (:func:`kill_marked`), when its task ends and when the
  server stops. After a hard kill of the server, ``control.stop`` scans every process for the
  node root in ``AZ_BATCH_NODE_ROOT_DIR`` (:func:`kill_everywhere`): as root it sees all of
  them; without root, those of its own user, which are all the tasks then. A process that clears
  its own environment and daemonises escapes the marker (cgroups would catch it; they are not
  writable in every container, so they are not relied on).
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import hashlib
import os
import pwd
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from .command_line import launch_error

PR_SET_DUMPABLE = 4
PR_SET_CHILD_SUBREAPER = 36
SYSTEM_NODE_ROOTS = Path("/var/lib/batchfed-localbatch")
UNPRIVILEGED_USER = "nobody"
WORKSPACE_NOTE = ".workspace"  # <root>.workspace beside a system node root: whose it is


@dataclass(frozen=True)
class TaskUser:
    uid: int
    gid: int
    name: str


# == who and where ================================================================================
def drops_privileges() -> bool:
    return os.geteuid() == 0


def task_user(identity: object) -> TaskUser | None:
    """The user a task with this ``userIdentity`` runs as; None: the server's own user."""
    if not drops_privileges():
        return None
    auto = (identity or {}).get("autoUser") if isinstance(identity, dict) else None
    if isinstance(auto, dict) and str(auto.get("elevationLevel", "")).lower() == "admin":
        return None
    try:
        entry = pwd.getpwnam(UNPRIVILEGED_USER)
        return TaskUser(entry.pw_uid, entry.pw_gid, entry.pw_name)
    except KeyError:
        return TaskUser(65534, 65534, UNPRIVILEGED_USER)


def node_root(localbatch_dir: Path) -> Path:
    """The folder tasks see as ``AZ_BATCH_NODE_ROOT_DIR`` for this workspace's localbatch."""
    if not drops_privileges():
        return Path(localbatch_dir) / "root"
    digest = hashlib.sha256(str(Path(localbatch_dir).resolve()).encode()).hexdigest()[:20]
    return SYSTEM_NODE_ROOTS / digest


def prepare_node_root(root: Path, localbatch_dir: Path) -> None:
    """Create the node root (enterable by the task user) and move the task and node folders of
    a workspace laid out before the node root existed into it."""
    mode = 0o755 if drops_privileges() else 0o700  # modes set explicitly: the server's umask is 077
    if drops_privileges():
        SYSTEM_NODE_ROOTS.mkdir(parents=True, exist_ok=True)
        os.chmod(SYSTEM_NODE_ROOTS, 0o711)
        _remove_orphaned_roots()
    root.mkdir(mode=mode, parents=True, exist_ok=True)
    os.chmod(root, mode)
    if drops_privileges():
        root.with_name(root.name + WORKSPACE_NOTE).write_text(str(Path(localbatch_dir).resolve()) + "\n")
    for name in ("tasks", "nodes"):
        old, new = Path(localbatch_dir) / name, root / name
        if old.is_dir() and not new.exists():
            shutil.move(str(old), str(new))  # a rename on one file system
        new.mkdir(mode=mode, exist_ok=True)
        os.chmod(new, mode)


def _remove_orphaned_roots() -> None:
    """Delete the system node roots of workspaces that no longer exist."""
    for note in SYSTEM_NODE_ROOTS.glob("*" + WORKSPACE_NOTE):
        try:
            workspace = Path(note.read_text().strip())
        except OSError:
            continue
        if not workspace.exists():
            shutil.rmtree(note.with_name(note.name[: -len(WORKSPACE_NOTE)]), ignore_errors=True)
            note.unlink(missing_ok=True)


def make_dirs(user: TaskUser | None, *paths: Path) -> None:
    """Create ``paths`` (and their parents) and give them to ``user``."""
    for path in paths:
        if user is None:
            path.mkdir(parents=True, exist_ok=True)
            continue
        missing = []
        p = path
        while not p.exists():
            missing.append(p)
            p = p.parent
        for d in reversed(missing):
            with contextlib.suppress(FileExistsError):
                d.mkdir()
                os.chmod(d, 0o755)
        os.chown(path, user.uid, user.gid)
        os.chmod(path, 0o755)


def hand_over(user: TaskUser | None, root: Path) -> None:
    """Give everything under ``root`` to ``user``: files the server wrote for a task (its
    downloaded resource files) must be the task's own, or it could not rewrite them."""
    if user is None:
        return
    for dirpath, dirnames, filenames in os.walk(root):
        for name in (*dirnames, *filenames):
            os.chown(os.path.join(dirpath, name), user.uid, user.gid, follow_symlinks=False)


# == starting a process ===========================================================================
def spawn(
    argv: list[str], *, cwd: Path, env: dict[str, str], stdout: IO[bytes], stderr: IO[bytes], user: TaskUser | None
) -> subprocess.Popen:
    """Start ``argv`` in its own session as ``user``; a LaunchError when it cannot start.

    Another user is taken on through ``setpriv`` where there is one: asking Popen to switch
    users makes it fork the whole server instead of vfork, which cut task starts by three
    quarters. The program is looked up first so that a missing one is still reported as such."""
    prefix: list[str] = []
    if user is not None:
        env = {**env, "HOME": str(cwd), "USER": user.name, "LOGNAME": user.name}
        setpriv = shutil.which("setpriv")
        if setpriv:
            _check_program(argv, cwd, env.get("PATH", os.defpath))
            ids = ["--reuid", str(user.uid), "--regid", str(user.gid), "--clear-groups"]
            prefix = [setpriv, *ids, "--"]
    switch = user is not None and not prefix
    try:
        return subprocess.Popen(
            [*prefix, *argv],
            cwd=str(cwd),
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=stdout,
            stderr=stderr,
            start_new_session=True,  # own session + process group: one killpg stops it all
            close_fds=True,
            user=user.uid if switch and user else None,
            group=user.gid if switch and user else None,
            extra_groups=[] if switch else None,
        )
    except OSError as exc:
        if exc.filename == str(cwd):  # the task's own folder failed: localbatch's fault, not the command's
            raise
        raise launch_error(argv, exc, env.get("PATH", os.defpath)) from None


def _check_program(argv: list[str], cwd: Path, search_path: str) -> None:
    """LaunchError when ``argv[0]`` names no file (found on ``search_path`` or from ``cwd``)."""
    program = argv[0]
    found = os.path.exists(cwd / program) if "/" in program else shutil.which(program, path=search_path) is not None
    if not found:
        raise launch_error(argv, FileNotFoundError(errno.ENOENT, "No such file or directory", program), search_path)


# == the server process ===========================================================================
_subreaper = False  # set once this process adopts orphans: only then are they ours to reap


def become_subreaper() -> bool:
    """Make this process the reaper of its orphaned descendants and not dumpable (its
    environment and memory closed to processes of the same user); False when prctl fails."""
    global _subreaper
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        _subreaper = libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
        libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)
    except (OSError, AttributeError):
        _subreaper = False
    return _subreaper


def _children(pid: int) -> list[int]:
    out: list[int] = []
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for tid in tids:
        try:
            text = Path(f"/proc/{pid}/task/{tid}/children").read_text()
        except OSError:
            continue
        out.extend(int(x) for x in text.split())
    return out


def _subtree(pid: int) -> list[int]:
    seen, todo = [], [pid]
    while todo:
        p = todo.pop()
        seen.append(p)
        todo.extend(_children(p))
    return seen


def _environ_has(pid: int, marker: bytes) -> bool:
    try:
        return marker in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return False


def kill_marked(name: str, value: str) -> int:
    """SIGKILL this process's orphaned descendants whose environment holds ``name=value``, with
    everything below them, and reap the ones re-parented to it; how many were killed."""
    if not _subreaper:
        return 0
    me = os.getpid()
    marker = f"{name}={value}".encode()
    victims: list[int] = []
    for orphan in _children_of_thread(me):
        if _environ_has(orphan, marker):
            victims.extend(_subtree(orphan))
    for pid in victims:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    if victims:  # their children, re-parented to us as they die, are reaped by the next sweep
        _reap(set(victims), wait=0.5)
    _reap(set(_children_of_thread(me)), wait=0.0)
    return len(victims)


def _children_of_thread(pid: int) -> list[int]:
    """Children of the main thread: the orphans a subreaper adopts (tasks' own processes are
    children of the run threads that started them)."""
    try:
        return [int(x) for x in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def _reap(pids: set[int], wait: float) -> None:
    """Collect the exit status of those of ``pids`` that are our ended children, waiting up to
    ``wait`` seconds for them to end; a pid that is not our child is skipped."""
    deadline = time.monotonic() + wait
    while pids:
        for pid in list(pids):
            try:
                done, _ = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                done = pid
            if done:
                pids.discard(pid)
        if not pids or time.monotonic() >= deadline:
            return
        time.sleep(0.01)


def kill_everywhere(name: str, value: str) -> int:
    """SIGKILL every process this user may see whose environment holds ``name=value`` (the
    server is gone: its orphans went to init)."""
    marker = f"{name}={value}".encode()
    me = os.getpid()
    n = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == me:
            continue
        if _environ_has(int(entry), marker):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(int(entry), signal.SIGKILL)
                n += 1
    return n
