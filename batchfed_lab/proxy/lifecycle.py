"""Start, find, stop the proxy as a background process that outlives its starter.

``start`` spawns ``python -m batchfed_lab.proxy run`` in a new session (its own
process group, output to the workspace log), so it survives the notebook
kernel or terminal that started it. Each running proxy writes a discovery
file ``runtime/proxy-<id>.json`` (pid, id, version, start time, store, log);
readers check the pid and prune stale files, as Jupyter does with
``jpserver-<pid>.json``. Proxy ids are slots (``proxy-1``, ``proxy-2``…): a
restarted proxy reuses the first free slot, so it takes back its own lease
at once instead of waiting for it to lapse.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ..config.workspace import Workspace, open_workspace
from ..errors import ProxyError
from ..runtime import alive as pid_alive
from ..runtime import live_records

DISCOVERY_PREFIX = "proxy-"
START_TIMEOUT = 30.0


@dataclass(frozen=True)
class ProxyProcess:
    """What a discovery file says about one running proxy."""

    proxy_id: str
    pid: int
    version: str
    started: str
    store: str
    log: str
    config: str | None = None
    mode: str = "event"

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def discovery_file(ws: Workspace, proxy_id: str) -> Path:
    return ws.runtime_dir / f"{DISCOVERY_PREFIX}{proxy_id}.json"


def log_file(ws: Workspace, filename: str = "fedproxy.log") -> Path:
    return ws.logs_dir / filename


def running(workspace: Workspace | str | os.PathLike[str] | None = None) -> list[ProxyProcess]:
    """Live proxies of the workspace; discovery files of dead ones are removed."""
    ws = workspace if isinstance(workspace, Workspace) else open_workspace(workspace)
    found = []
    for f, rec in live_records(ws.runtime_dir, f"{DISCOVERY_PREFIX}*.json"):
        try:
            found.append(ProxyProcess(**{k: rec[k] for k in ProxyProcess.__dataclass_fields__ if k in rec}))
        except TypeError:  # a record missing fields (another version): not a proxy we can use
            f.unlink(missing_ok=True)
    return found


def _free_slot(taken: set[str]) -> str:
    n = 1
    while f"proxy-{n}" in taken:
        n += 1
    return f"proxy-{n}"


@contextmanager
def _start_lock(ws: Workspace) -> Iterator[None]:
    """One starter at a time per workspace (two kernels pressing start together)."""
    import fcntl

    path = ws.runtime_dir / ".proxy-start.lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def start(
    workspace: Workspace | str | os.PathLike[str] | None = None,
    *,
    config: str | os.PathLike[str] | None = None,
    standby: bool = False,
    mode: str = "event",
    timeout: float = START_TIMEOUT,
    extra_env: dict[str, str] | None = None,
) -> tuple[ProxyProcess, bool]:
    """Start a detached proxy; returns ``(proxy, started)``. A running proxy is reported,
    not duplicated, unless ``standby`` asks for one more (HA)."""
    ws = workspace if isinstance(workspace, Workspace) else open_workspace(workspace)
    if config is not None:
        from ..config import load_federation

        load_federation(Path(config))  # refuse a bad federation.yaml before spawning anything
    with _start_lock(ws):
        live = running(ws)
        if live and not standby:
            return live[0], False
        proxy_id = _free_slot({p.proxy_id for p in live})
        ws.logs_dir.mkdir(parents=True, exist_ok=True)
        out = ws.logs_dir / f"{proxy_id}.out"
        cmd = [
            sys.executable,
            "-m",
            "batchfed_lab.proxy",
            "run",
            "--workspace",
            str(ws.path),
            "--proxy-id",
            proxy_id,
            "--mode",
            mode,
        ]
        if config is not None:
            cmd += ["--config", str(Path(config).absolute())]
        env = {**os.environ, **(extra_env or {})}
        with os.fdopen(os.open(out, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600), "ab") as fh:
            proc = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=fh,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                close_fds=True,
                env=env,
                cwd=str(ws.path),
            )
        deadline = time.monotonic() + timeout
        target = discovery_file(ws, proxy_id)
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise ProxyError(f"the proxy exited at start (code {proc.returncode}): {_tail(out, 3) or 'no output'}")
            if target.exists():
                for p in running(ws):
                    if p.proxy_id == proxy_id and p.pid == proc.pid:
                        return p, True
            time.sleep(0.05)
        _terminate(proc.pid, 5)
        raise ProxyError(f"the proxy did not come up within {timeout:.0f}s; see {out}")


def _tail(path: Path, lines: int) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace").strip().splitlines()
    except OSError:
        return ""
    return " | ".join(text[-lines:])


def _terminate(pid: int, timeout: float) -> bool:
    """SIGTERM the process group, then SIGKILL after ``timeout``; True if it is gone."""
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            return True
        except PermissionError:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                return True
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if not pid_alive(pid):
                return True
            time.sleep(0.05)
    return not pid_alive(pid)


def stop(workspace: Workspace | str | os.PathLike[str] | None = None, *, all: bool = False, timeout: float = 40.0) -> list[str]:
    """Stop the proxy (or every proxy of the workspace with ``all``); returns the stopped ids.
    A graceful stop finishes in-flight actions and releases the lease."""
    ws = workspace if isinstance(workspace, Workspace) else open_workspace(workspace)
    live = running(ws)
    chosen = live if all else live[:1]
    stopped = []
    for p in chosen:
        if not _terminate(p.pid, timeout):
            raise ProxyError(f"proxy {p.proxy_id} (pid {p.pid}) did not stop")
        discovery_file(ws, p.proxy_id).unlink(missing_ok=True)
        stopped.append(p.proxy_id)
    return stopped


def status(workspace: Workspace | str | os.PathLike[str] | None = None, store: Any = None) -> list[dict[str, Any]]:
    """Every proxy this workspace knows: running processes joined with their store records
    (role, heartbeat age, counters). Stale store records are reported as such, then removed."""
    ws = workspace if isinstance(workspace, Workspace) else open_workspace(workspace)
    procs = {p.proxy_id: p for p in running(ws)}
    own_store = store is None
    if own_store:
        from ..store import open_store

        store = open_store(ws)
    try:
        records = {r.proxy_id: r for r in store.list_proxies()}
        suspended = store.is_suspended()
        lease = store.get_lease("proxy-leader")
        now = datetime.now(timezone.utc)
        out = []
        for pid_ in sorted(set(procs) | set(records)):
            p, r = procs.get(pid_), records.get(pid_)
            age = (now - r.heartbeat_at).total_seconds() if r and r.heartbeat_at else None
            row: dict[str, Any] = {
                "proxy_id": pid_,
                "pid": p.pid if p else (r.pid if r else None),
                "running": p is not None,
                "role": (r.role if r else "starting") if p else "stale",
                "leader": bool(lease and lease.holder == pid_),
                "heartbeat_age_s": round(age, 3) if age is not None else None,
                "version": (p.version if p else r.version if r else None),
                "started": p.started if p else (r.started_at.isoformat() if r and r.started_at else None),
                "uptime_s": round((now - datetime.fromisoformat(p.started)).total_seconds(), 1) if p else None,
                "federations": (r.info.get("federations") if r else []) or [],
                "counters": dict(r.counters) if r else {},
                "suspended": suspended,
                "log": p.log if p else None,
                "store": p.store if p else None,
            }
            if p is None and r is not None:
                store.remove_proxy(pid_)  # its process is gone: clean the record
            out.append(row)
        return out
    finally:
        if own_store:
            store.close()


def set_suspended(workspace: Workspace | str | os.PathLike[str] | None, suspended: bool) -> None:
    """Suspend: the running proxy idles (claims nothing; metadata and queues are kept).
    Resume: it picks up at once."""
    ws = workspace if isinstance(workspace, Workspace) else open_workspace(workspace)
    from ..store import open_store

    with open_store(ws) as store:
        store.set_suspended(suspended)


def logs(workspace: Workspace | str | os.PathLike[str] | None = None, lines: int = 50) -> str:
    """The tail of the proxy log (the newest file if several proxies log here)."""
    ws = workspace if isinstance(workspace, Workspace) else open_workspace(workspace)
    candidates = sorted(ws.logs_dir.glob("*.log"), key=lambda p: p.stat().st_mtime)
    candidates = [c for c in candidates if not c.name.startswith("localbatch")]
    if not candidates:
        return ""
    text = candidates[-1].read_text(encoding="utf-8", errors="replace").splitlines()
    return "\n".join(text[-lines:])
