"""The workspace's embedded Azurite: the storage account named ``local``.

``batchfed up`` starts it next to localbatch and the proxy, ``batchfed down`` stops it by pid.
It runs detached (own session, output to ``logs/azurite.log``) on 127.0.0.1 and keeps its data
in ``<workspace>/azurite/`` (Azurite's ``--location``), so blobs survive a restart; the ports of
the first start are remembered (``runtime/azurite.ports.json``) and asked for again, so URLs
handed out before a restart keep working when the ports are still free.

``runtime/azurite.json`` is its discovery file: ``pid``, ``starttime`` (so a stop never hits a
process that reused the pid), ``ports``, ``blob_url``, ``location``, ``started``, ``workspace``.
It never holds a key: the emulator's account and key are Microsoft's published development
pair (:data:`~batchfed_lab.store.emulator.DEV_KEY`).

    available() -> bool               # Azurite installed (make azurite) and node found
    start(ws) -> LocalStorageInfo     # idempotent; DataError when Azurite is not installed
    info(ws) -> LocalStorageInfo | None
    stop(ws, timeout=10.0) -> bool    # True if one was running
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import os
import re
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from .. import runtime
from ..config.workspace import Workspace
from ..errors import DataError
from ..store.emulator import DEV_ACCOUNT, find_azurite

DISCOVERY_NAME = "azurite.json"
PORTS_NAME = "azurite.ports.json"
LOG_NAME = "azurite.log"
SERVICES = ("blob", "queue", "table")
_LISTENING = re.compile(r"Azurite (Blob|Queue|Table) service is successfully listening at http://127\.0\.0\.1:(\d+)")


@dataclass(frozen=True)
class LocalStorageInfo:
    """The discovery record of a running embedded Azurite."""

    pid: int
    starttime: str
    ports: dict[str, int]
    blob_url: str
    location: str
    started: str
    workspace: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def data_dir(ws: Workspace) -> Path:
    return ws.path / "azurite"


def _discovery(ws: Workspace) -> Path:
    return ws.runtime_dir / DISCOVERY_NAME


def info(ws: Workspace) -> LocalStorageInfo | None:
    """The running embedded Azurite of ``ws``, or None (a stale discovery file is removed)."""
    path = _discovery(ws)
    rec = runtime.read_record(path)
    if rec is None:
        return None
    if not runtime.alive(rec["pid"]) or runtime.starttime(rec["pid"]) != rec.get("starttime", ""):
        runtime.remove_if_owned(path, rec["pid"])
        return None
    try:
        return LocalStorageInfo(**{k: rec[k] for k in LocalStorageInfo.__dataclass_fields__})
    except (KeyError, TypeError):
        return None


@contextlib.contextmanager
def _start_lock(ws: Workspace) -> Iterator[None]:
    path = ws.runtime_dir / "azurite.start.lock"
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # two `up`s at once: the second finds the first's Azurite
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def _remembered_ports(ws: Workspace) -> dict[str, int]:
    """The ports of the last start when every one is free again, else ephemeral ones."""
    try:
        ports = json.loads((ws.runtime_dir / PORTS_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(ports, dict) or not all(isinstance(ports.get(s), int) for s in SERVICES):
        return {}
    return ports if all(_port_free(ports[s]) for s in SERVICES) else {}


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as node listens: TIME_WAIT is no obstacle
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _argv(node: str, script: Path, location: Path, ports: dict[str, int]) -> list[str]:
    argv = [node, str(script), "--location", str(location), "--disableTelemetry", "--silent", "--skipApiVersionCheck"]
    for service in SERVICES:
        argv += [f"--{service}Host", "127.0.0.1", f"--{service}Port", str(ports.get(service, 0))]
    return argv


def available() -> bool:
    """Is Azurite installed (``make azurite``) and node on the PATH?"""
    return find_azurite(Path(__file__).parent) is not None and shutil.which("node") is not None


def start(ws: Workspace, *, timeout: float = 60.0) -> LocalStorageInfo:
    """Start the embedded Azurite of ``ws`` in the background, or return the running one."""
    script, node = find_azurite(Path(__file__).parent), shutil.which("node")
    if script is None or node is None:
        raise DataError("the storage account 'local' needs Azurite: run `make azurite` (npm install) first")
    with _start_lock(ws):
        running = info(ws)
        if running is not None:
            return running
        location = data_dir(ws)
        location.mkdir(mode=0o700, parents=True, exist_ok=True)
        log_file = ws.logs_dir / LOG_NAME
        log_file.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        offset = log_file.stat().st_size if log_file.exists() else 0
        log_fd = os.open(log_file, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            proc = subprocess.Popen(
                _argv(node, script, location, _remembered_ports(ws)),
                stdin=subprocess.DEVNULL,
                stdout=log_fd,
                stderr=log_fd,
                cwd=str(script.parents[3]),  # the folder holding node_modules
                start_new_session=True,  # outlives the kernel or terminal that ran `up`
                close_fds=True,
                umask=0o077,  # its blobs and databases are owner-only, like the rest of the workspace
            )
        finally:
            os.close(log_fd)
        ports = _wait_listening(proc, log_file, offset, timeout)
        rec = LocalStorageInfo(
            pid=proc.pid,
            starttime=runtime.starttime(proc.pid),
            ports=ports,
            blob_url=f"http://127.0.0.1:{ports['blob']}/{DEV_ACCOUNT}",
            location=str(location),
            started=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            workspace=str(ws.path),
        )
        runtime.write_json_atomic(ws.runtime_dir / PORTS_NAME, dict(ports))
        runtime.write_json_atomic(_discovery(ws), rec.as_dict())
        return rec


def _wait_listening(proc: subprocess.Popen[bytes], log_file: Path, offset: int, timeout: float) -> dict[str, int]:
    """The port of each service, read from what Azurite logs once it listens."""
    deadline = time.monotonic() + timeout
    found: dict[str, int] = {}
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), open(log_file, "rb") as fh:
            fh.seek(offset)
            for m in _LISTENING.finditer(fh.read().decode("utf-8", "replace")):
                found[m.group(1).lower()] = int(m.group(2))
        if len(found) == len(SERVICES):
            return found
        if proc.poll() is not None:
            raise DataError(f"azurite exited with code {proc.returncode} while starting; see {log_file}: {_tail(log_file)}")
        time.sleep(0.05)
    _terminate(proc.pid, 5.0)
    proc.wait()
    raise DataError(f"azurite did not start listening within {timeout:g} s; see {log_file}")


def _tail(path: Path, lines: int = 3) -> str:
    try:
        return " | ".join(path.read_text(errors="replace").strip().splitlines()[-lines:])
    except OSError:
        return ""


def _wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(ChildProcessError, OSError):
            os.waitpid(pid, os.WNOHANG)  # reap it when this process started it
        if not runtime.alive(pid):
            return True
        time.sleep(0.02)
    return False


def _terminate(pid: int, timeout: float) -> None:
    runtime.terminate(pid, timeout, _wait_gone)


def stop(ws: Workspace, *, timeout: float = 10.0) -> bool:
    """Stop the embedded Azurite of ``ws`` by pid (SIGTERM, then SIGKILL); its data stays."""
    rec = info(ws)
    if rec is None:
        return False
    _terminate(rec.pid, timeout)
    runtime.remove_if_owned(_discovery(ws), rec.pid)
    return True
