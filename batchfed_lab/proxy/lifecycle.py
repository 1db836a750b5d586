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
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config.workspace import Workspace, open_workspace
from ..errors import ProxyError
from ..runtime import alive as pid_alive
from ..runtime import live_records
from . import logread, remote

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
        proc = _spawn(ws, _run_command(ws, proxy_id, mode, config), out, extra_env)
        return _wait_until_up(ws, proc, proxy_id, out, timeout), True


def _run_command(ws: Workspace, proxy_id: str, mode: str, config: str | os.PathLike[str] | None) -> list[str]:
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
    return cmd


def _spawn(ws: Workspace, cmd: list[str], out: Path, extra_env: dict[str, str] | None) -> subprocess.Popen[bytes]:
    """Start the proxy in a new session, its output appended to ``out``, so it outlives its starter."""
    env = {**os.environ, **(extra_env or {})}
    with os.fdopen(os.open(out, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600), "ab") as fh:
        return subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=fh,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            close_fds=True,
            env=env,
            cwd=str(ws.path),
        )


def _wait_until_up(ws: Workspace, proc: subprocess.Popen[bytes], proxy_id: str, out: Path, timeout: float) -> ProxyProcess:
    """The proxy once its discovery file names this process; it is stopped if it does not
    come up within ``timeout``."""
    deadline = time.monotonic() + timeout
    target = discovery_file(ws, proxy_id)
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise ProxyError(f"the proxy exited at start (code {proc.returncode}): {_tail(out, 3) or 'no output'}")
        if target.exists():
            for p in running(ws):
                if p.proxy_id == proxy_id and p.pid == proc.pid:
                    return p
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
    ws = _ws(workspace)
    live = running(ws)
    return _stop_local(ws, live if all else live[:1], timeout)


def status(workspace: Workspace | str | os.PathLike[str] | None = None, store: Any = None) -> list[dict[str, Any]]:
    """Every proxy sharing the workspace's store: this machine's processes joined with the
    store's records (role, heartbeat age, counters), wherever the proxies run. A record is
    stale when its heartbeat is older than its lease; stale ones are reported, then removed."""
    ws = _ws(workspace)
    procs = {p.proxy_id: p for p in running(ws)}
    with _store_of(ws, store) as st:
        return remote.status_rows(st, procs, ws.settings.proxy.lease_seconds)


def stop_anywhere(
    workspace: Workspace | str | os.PathLike[str] | None,
    store: Any,
    *,
    all: bool = False,
    proxy_id: str | None = None,
    timeout: float = 40.0,
) -> list[str]:
    """Stop a proxy wherever it runs: one of this machine by signal, one elsewhere through a
    stop request in the store (it obeys at its next heartbeat). Without ``proxy_id``: the
    first local proxy, else the remote leader; ``all``: every live proxy sharing the store."""
    remote.check_timeout(timeout)
    ws = _ws(workspace)
    local = running(ws)
    mine = {p.proxy_id for p in local}
    lease = ws.settings.proxy.lease_seconds
    if proxy_id is not None:
        if proxy_id in mine:
            return _stop_local(ws, [p for p in local if p.proxy_id == proxy_id], timeout)
        if proxy_id not in {r.proxy_id for r in remote.live_records(store, lease)}:
            raise ProxyError(f"proxy {proxy_id!r} is not running: no process here, no fresh heartbeat in the store")
        remote.request_stop(store, [proxy_id], timeout=timeout)
        return [proxy_id]
    if local and not all:
        return _stop_local(ws, local[:1], timeout)
    stopped = _stop_local(ws, local, timeout)
    others = [r.proxy_id for r in remote.live_records(store, lease) if r.proxy_id not in mine and remote.can_answer(r)]
    others = others if all else others[:1]
    if others:
        remote.request_stop(store, others, timeout=timeout)
    return stopped + others


def _stop_local(ws: Workspace, chosen: list[ProxyProcess], timeout: float) -> list[str]:
    stopped = []
    for p in chosen:
        if not _terminate(p.pid, timeout):
            raise ProxyError(f"proxy {p.proxy_id} (pid {p.pid}) did not stop")
        discovery_file(ws, p.proxy_id).unlink(missing_ok=True)
        stopped.append(p.proxy_id)
    return stopped


def suspend(
    workspace: Workspace | str | os.PathLike[str] | None, store: Any, suspended: bool, *, timeout: float = 10.0
) -> remote.Acknowledgement:
    """Set the store-wide suspend flag and wait until every live proxy, here or elsewhere,
    reports it in a heartbeat (or ``timeout`` passes: the flag holds regardless)."""
    ws = _ws(workspace)
    return remote.set_suspended(store, suspended, timeout=timeout, default_lease=ws.settings.proxy.lease_seconds)


def log_source(
    workspace: Workspace | str | os.PathLike[str] | None = None, store: Any = None, proxy_id: str | None = None
) -> tuple[logread.LogSource, Callable[[], bool]]:
    """Where a proxy's log is read from, and whether that proxy still runs: its file when it
    runs on this machine (or nothing runs anywhere and the workspace has log files), else the
    append blobs of the store (the Azure store with ``logging.persistence``)."""
    ws = _ws(workspace)
    local = {p.proxy_id: p for p in running(ws)}
    blobs = getattr(store, "log_container", None)
    lease = ws.settings.proxy.lease_seconds
    if proxy_id in local:
        return logread.FileSource(ws.logs_dir, Path(local[proxy_id].log)), _local_alive(local[proxy_id])
    if proxy_id is None and local:
        return logread.FileSource(ws.logs_dir), lambda: bool(running(ws))
    if blobs is None:
        if proxy_id is not None:
            raise ProxyError(
                f"proxy {proxy_id!r} does not run on this machine and the {ws.settings.store.backend} store keeps no logs"
            )
        return logread.FileSource(ws.logs_dir), lambda: False
    live = [r.proxy_id for r in remote.live_records(store, lease)]
    target = proxy_id or (live[0] if live else None)
    if target is None and logread.FileSource(ws.logs_dir).current() is not None:
        return logread.FileSource(ws.logs_dir), lambda: False
    return logread.BlobSource(blobs(), target), lambda: target is not None and _fresh(store, target, lease)


def _local_alive(p: ProxyProcess) -> Callable[[], bool]:
    return lambda: pid_alive(p.pid)


def _fresh(store: Any, proxy_id: str, lease: float) -> bool:
    rec = store.get_proxy(proxy_id)
    return rec is not None and remote.is_fresh(rec, store.now(), lease)


def logs(
    workspace: Workspace | str | os.PathLike[str] | None = None, lines: int = 50, store: Any = None, proxy_id: str | None = None
) -> str:
    """The tail of the proxy log: this machine's newest file, or a remote proxy's blobs."""
    text, _, _ = logread.tail(log_source(workspace, store, proxy_id)[0], lines)
    return text


def follow_logs(
    workspace: Workspace | str | os.PathLike[str] | None = None,
    lines: int = 50,
    store: Any = None,
    proxy_id: str | None = None,
    poll: float = logread.FOLLOW_POLL,
) -> Iterator[str]:
    """The tail, then what the proxy appends, until it stops (or the caller stops reading)."""
    source, alive = log_source(workspace, store, proxy_id)
    text, name, offset = logread.tail(source, lines)
    if isinstance(source, logread.FileSource) and name is not None:
        source = logread.FileSource(source.logs_dir, Path(name))  # stay with this proxy's file
    if text:
        yield text + "\n"
    linger = logread.BLOB_LINGER if isinstance(source, logread.BlobSource) else 0.0
    yield from logread.follow(source, name, offset, alive=alive, poll=poll, linger=linger)


def _ws(workspace: Workspace | str | os.PathLike[str] | None) -> Workspace:
    return workspace if isinstance(workspace, Workspace) else open_workspace(workspace)


@contextmanager
def _store_of(ws: Workspace, store: Any) -> Iterator[Any]:
    """The caller's store, or one opened (and closed) for this call."""
    if store is not None:
        yield store
        return
    from ..store import open_store

    own = open_store(ws)
    try:
        yield own
    finally:
        own.close()
