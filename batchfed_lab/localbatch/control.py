"""Start, find, check and stop the localbatch server of a workspace; build clients for it.

Files (inside the workspace, owner-only)::

    runtime/localbatch.json   discovery file, written atomically (temp + rename) once the server
                              listens, removed on clean exit; pruned by readers when its pid is dead
    localbatch/key            the shared key (one base64 line, 0600) that signs every account
    localbatch/state.sqlite   durable state
    logs/localbatch.log       the server's output

and the node root tasks see (``launch.isolation.node_root``: ``localbatch/root`` of the
workspace, or a folder of /var/lib/batchfed-localbatch when localbatch runs as root), holding only
``tasks/<account>/<job>/<task>/{stdout.txt,stderr.txt,wd/}`` and ``nodes/<account>/<pool>/<node>/``.

The discovery file is a JSON object: ``pid``, ``url`` (``http://127.0.0.1:<port>``), ``port``,
``host``, ``version``, ``api_version``, ``started`` (ISO 8601 UTC), ``workspace``,
``account_url_template`` (``<url>/accounts/{account}``), ``key_file``, ``log_file``,
``latency_ms``, ``relaxed_limits``. It never holds the key.

Public API (stable)::

    start(workspace=None, *, port=0, latency_ms=None, allocation_delay_ms=None,
          relaxed_limits=False, timeout=30.0) -> LocalBatchInfo      # idempotent
    info(workspace=None) -> LocalBatchInfo | None                     # pid-checked, prunes stale
    status(workspace=None) -> dict
    stop(workspace=None, *, timeout=10.0) -> bool                      # SIGTERM, then SIGKILL; no orphans
    account_url(account, workspace=None) -> str
    credentials(account, workspace=None) -> (account_url, AzureNamedKeyCredential)
    batch_client(account, workspace=None, **client_kwargs) -> azure.batch.BatchClient
    preempt(account, pool_id, *, node_ids=None, duration_seconds=2.0, workspace=None) -> dict
    autoscale_now(account, pool_id, workspace=None) -> dict
    set_node_condition(account, pool_id, condition, *, node_ids=None, workspace=None) -> dict

``workspace`` is a path, a ``Workspace`` object, or None for ``$BATCHFED_HOME``.
Failures raise :class:`batchfed_lab.errors.BatchError`: :class:`~batchfed_lab.errors.LocalBatchNotRunning`,
:class:`~batchfed_lab.errors.LocalBatchStartFailed` (each with that ``code`` too), or a plain
``BatchError`` with code ``InvalidAccountName`` or the Batch error code of an admin call.
"""

from __future__ import annotations

import contextlib
import fcntl
import http.client
import json
import os
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from email.utils import formatdate
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from .. import runtime
from ..errors import BatchError, LocalBatchNotRunning, LocalBatchStartFailed
from . import auth, procs
from ._util import ACCOUNT_RE, API_VERSION, parse_iso
from .launch import isolation

if TYPE_CHECKING:
    from azure.batch import BatchClient
    from azure.core.credentials import AzureNamedKeyCredential

DISCOVERY_NAME = "localbatch.json"
LOG_NAME = "localbatch.log"
SERVER_MODULE = "batchfed_lab.localbatch"

# what the server inherits of its starter's environment: no credentials or connection strings
# (a task could otherwise find them); docker's own settings for container tasks
SERVER_ENV_NAMES = frozenset(
    {
        *("PATH", "HOME", "USER", "LOGNAME", "LANG", "LANGUAGE", "TZ", "TMPDIR", "PYTHONPATH", "VIRTUAL_ENV"),
        *("PYTHONDONTWRITEBYTECODE", "PYTHONUNBUFFERED", "PYTHONHASHSEED", "PYTHONWARNINGS", "COVERAGE_PROCESS_START"),
        *("DOCKER_HOST", "DOCKER_CONFIG", "DOCKER_CERT_PATH", "DOCKER_TLS_VERIFY", "DOCKER_CONTEXT"),
    }
)

# servers this process started: reaped by stop() so they do not linger as zombies
_children: dict[int, subprocess.Popen] = {}


@dataclass(frozen=True)
class LocalBatchInfo:
    """The discovery record of a running localbatch."""

    pid: int
    url: str
    port: int
    version: str
    started: str
    workspace: str
    key_file: str
    log_file: str
    api_version: str = API_VERSION
    host: str = "127.0.0.1"
    latency_ms: float = 0.0
    relaxed_limits: bool = False
    loose: bool = False

    def account_url(self, account: str) -> str:
        """The endpoint a ``BatchClient`` for ``account`` uses."""
        _check_account(account)
        return f"{self.url}/accounts/{account}"

    def as_dict(self) -> dict:
        return asdict(self)


# == paths ==========================================================================================
def _root(workspace: Any) -> Path:
    if workspace is not None and hasattr(workspace, "path"):
        return Path(workspace.path)
    if workspace is None:
        from ..config.workspace import default_home

        return default_home().absolute()
    return Path(workspace).expanduser().absolute()


def discovery_path(workspace: Any = None) -> Path:
    return _root(workspace) / "runtime" / DISCOVERY_NAME


def log_path(workspace: Any = None) -> Path:
    return _root(workspace) / "logs" / LOG_NAME


def key_file(workspace: Any = None) -> Path:
    return auth.key_path(_root(workspace) / "localbatch")


def remove_discovery_if_mine(workspace: Any, pid: int) -> None:
    runtime.remove_if_owned(discovery_path(workspace), pid)


def _check_account(account: str) -> None:
    if not isinstance(account, str) or not ACCOUNT_RE.fullmatch(account):
        raise BatchError(
            f"invalid localbatch account name {account!r}: use 3-24 lower-case letters or digits", code="InvalidAccountName"
        )


# == discovery ======================================================================================
def _read_record(workspace: Any) -> dict | None:
    return runtime.read_record(discovery_path(workspace))


def _is_server(pid: int) -> bool:
    if not runtime.alive(pid):
        return False
    argv = procs.cmdline(pid)
    return not argv or any(SERVER_MODULE in a for a in argv)  # no /proc: trust the live pid


def info(workspace: Any = None) -> LocalBatchInfo | None:
    """The running server's record, or None. A record whose pid is gone is deleted."""
    data = _read_record(workspace)
    if data is None:
        return None
    if not _is_server(data["pid"]):
        remove_discovery_if_mine(workspace, data["pid"])
        return None
    fields = {k: data[k] for k in LocalBatchInfo.__dataclass_fields__ if k in data}
    try:
        return LocalBatchInfo(**fields)
    except TypeError:  # a record from an incompatible version: treat as absent, do not delete
        return None


def _signed_request(
    rec: LocalBatchInfo, account: str, method: str, path: str, body: dict | None = None, timeout: float = 10.0
) -> tuple[int, dict]:
    """One signed call with the stdlib (no SDK import): ``path`` is below /accounts/<account>."""
    key = auth.read_key(Path(rec.key_file).parent)
    target = f"/accounts/{account}{path}?api-version={API_VERSION}"
    payload = json.dumps(body).encode() if body is not None else b""
    headers = {"ocp-date": formatdate(usegmt=True), "Accept": "application/json"}
    if method not in ("GET", "HEAD"):
        headers["Content-Length"] = str(len(payload))
        if body is not None:
            headers["Content-Type"] = "application/json; odata=minimalmetadata"
    headers["Authorization"] = auth.authorization(method, target, headers, account, key)
    conn = http.client.HTTPConnection(rec.host, rec.port, timeout=timeout)
    try:
        conn.request(method, target, body=payload or None, headers=headers)
        resp = conn.getresponse()
        raw = resp.read()
    finally:
        conn.close()
    try:
        data = json.loads(raw) if raw else {}
    except ValueError:
        data = {}
    return resp.status, data


def _responding(rec: LocalBatchInfo) -> bool:
    try:
        status, data = _signed_request(rec, "probe", "GET", "/localbatch-info", timeout=2.0)
    except OSError:
        return False
    return status == 200 and data.get("pid") == rec.pid


def status(workspace: Any = None) -> dict:
    """Is localbatch running for this workspace, since when, and does it answer?"""
    stale = _read_record(workspace)
    rec = info(workspace)
    out: dict = {"running": rec is not None, "workspace": str(_root(workspace)), "log_file": str(log_path(workspace))}
    if rec is None:
        out["stale_record_pruned"] = stale is not None
        return out
    out.update(rec.as_dict())
    out["uptime_seconds"] = round(time.time() - parse_iso(rec.started).timestamp(), 1)
    out["responding"] = _responding(rec)
    return out


# == lifecycle ======================================================================================
@contextlib.contextmanager
def _start_lock(root: Path):
    path = root / "runtime" / "localbatch.start.lock"
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # two concurrent start() calls: the second finds the first's server
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def _log_tail(path: Path, lines: int = 5) -> str:
    try:
        text = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return " | ".join(text[-lines:])


def _server_flags(options: dict[str, object]) -> list[str]:
    """``serve`` flags for the options given: a true bool is a bare flag, None and False are left out."""
    out: list[str] = []
    for flag, value in options.items():
        if value is True:
            out.append(flag)
        elif value is not None and value is not False:
            out += [flag, str(value)]
    return out


def start(
    workspace: Any = None,
    *,
    port: int = 0,
    latency_ms: float | None = None,
    allocation_delay_ms: float | None = None,
    relaxed_limits: bool = False,
    loose: bool = False,
    read_timeout: float | None = None,
    max_connections: int | None = None,
    timeout: float = 30.0,
) -> LocalBatchInfo:
    """Start localbatch for the workspace in the background (own session, output to the log
    file) and wait until it answers. A server already running is returned as it is."""
    from ..config.workspace import open_workspace

    ws = open_workspace(_root(workspace))
    root = ws.path
    with _start_lock(root):
        rec = info(root)
        if rec is not None and _responding(rec):
            return rec
        auth.load_or_create_key(ws.localbatch_dir)
        argv = [sys.executable, "-m", SERVER_MODULE, "serve", "--workspace", str(root), "--port", str(port)]
        argv += _server_flags(
            {
                "--latency-ms": latency_ms,
                "--allocation-delay-ms": allocation_delay_ms,
                "--relaxed-limits": relaxed_limits,
                "--loose": loose,
                "--read-timeout": read_timeout,
                "--max-connections": max_connections,
            }
        )
        return _wait_answering(root, _spawn(root, argv), timeout)


def _spawn(root: Path, argv: list[str]) -> subprocess.Popen:
    """Start the server detached, its output appended to the workspace's localbatch log."""
    env = server_environment(os.environ)
    package_parent = str(Path(__file__).resolve().parents[2])  # importable without installation
    env["PYTHONPATH"] = package_parent + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    log_file = log_path(root)
    log_file.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    log_fd = os.open(log_file, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log_fd,
            stderr=log_fd,
            cwd=str(root),
            env=env,
            start_new_session=True,  # not the caller's: survives the kernel/terminal that started it
            close_fds=True,
        )
    finally:
        os.close(log_fd)
    _children[proc.pid] = proc
    return proc


def _wait_answering(root: Path, proc: subprocess.Popen, timeout: float) -> LocalBatchInfo:
    """The server's record once it answers a signed request; LocalBatchStartFailed when it
    exits first or does not answer in time (it is stopped then)."""
    log_file = log_path(root)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            _children.pop(proc.pid, None)
            raise LocalBatchStartFailed(
                f"localbatch exited with code {proc.returncode} while starting; see {log_file}: {_log_tail(log_file)}"
            )
        rec = info(root)
        if rec is not None and rec.pid == proc.pid and _responding(rec):
            return rec
        time.sleep(0.05)
    _terminate(proc.pid, 5.0)
    raise LocalBatchStartFailed(f"localbatch did not answer within {timeout:g} s; see {log_file}")


def server_environment(environ: Mapping[str, str]) -> dict[str, str]:
    """The environment localbatch starts with: the names above and the locale, nothing else."""
    return {k: v for k, v in environ.items() if k in SERVER_ENV_NAMES or k.startswith("LC_")}


def _wait_gone(pid: int, timeout: float) -> bool:
    child = _children.get(pid)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if child is not None and child.poll() is not None:
            _children.pop(pid, None)
            return True
        if child is None and not runtime.alive(pid):
            return True
        time.sleep(0.02)
    return False


def _terminate(pid: int, timeout: float) -> None:
    runtime.terminate(pid, timeout, _wait_gone)


def _kill_recorded_tasks(root: Path) -> int:
    """After a hard kill the server could not clean up: kill the task groups it recorded."""
    import sqlite3

    db_path = root / "localbatch" / "state.sqlite"
    if not db_path.exists():
        return 0
    n = 0
    db = sqlite3.connect(str(db_path), timeout=10)
    try:
        try:
            rows = db.execute("SELECT pgid, starttime FROM procs").fetchall()
        except sqlite3.OperationalError:
            return 0
        for pgid, start in rows:
            if procs.kill_recorded_group(int(pgid), str(start)):
                n += 1
        db.execute("DELETE FROM procs")
        db.commit()
    finally:
        db.close()
    return n


def stop(workspace: Any = None, *, timeout: float = 10.0) -> bool:
    """Stop the workspace's localbatch: SIGTERM (it kills its tasks and saves their state), then
    SIGKILL after ``timeout``; task processes a killed server left are killed too. True if a
    server was running."""
    root = _root(workspace)
    data = _read_record(root)
    was_running = False
    if data is not None and _is_server(data["pid"]):
        was_running = True
        _terminate(data["pid"], timeout)
    elif data is not None and data["pid"] in _children:
        _wait_gone(data["pid"], 0.5)  # reap our own zombie
    _kill_recorded_tasks(root)
    # what tasks daemonised, orphaned to init if the server was killed: found by their node root
    isolation.kill_everywhere("AZ_BATCH_NODE_ROOT_DIR", str(isolation.node_root(root / "localbatch")))
    if data is not None:
        remove_discovery_if_mine(root, data["pid"])
    return was_running


# == clients ========================================================================================
def account_url(account: str, workspace: Any = None) -> str:
    rec = info(workspace)
    if rec is None:
        raise LocalBatchNotRunning(f"localbatch is not running for {_root(workspace)}; start it first")
    return rec.account_url(account)


def credentials(account: str, workspace: Any = None) -> tuple[str, AzureNamedKeyCredential]:
    """``(account_url, AzureNamedKeyCredential(account, key))`` for a ``BatchClient``."""
    from azure.core.credentials import AzureNamedKeyCredential

    url = account_url(account, workspace)
    return url, AzureNamedKeyCredential(account, auth.read_key(_root(workspace) / "localbatch"))


def batch_client(account: str, workspace: Any = None, **client_kwargs: Any) -> BatchClient:
    """An azure-batch ``BatchClient`` for ``account`` on the workspace's localbatch."""
    from azure.batch import BatchClient

    url, cred = credentials(account, workspace)
    return BatchClient(url, cred, **client_kwargs)


def _admin(account: str, path: str, body: dict | None, workspace: Any) -> dict:
    _check_account(account)
    rec = info(workspace)
    if rec is None:
        raise LocalBatchNotRunning(f"localbatch is not running for {_root(workspace)}; start it first")
    status_code, data = _signed_request(rec, account, "POST", path, body or {})
    if status_code != 200:
        message = ((data.get("message") or {}).get("value") or "").split("\n")[0]
        raise BatchError(f"localbatch {path}: {message or status_code}", code=data.get("code"), status=status_code)
    return data


def preempt(
    account: str, pool_id: str, *, node_ids: list[str] | None = None, duration_seconds: float = 2.0, workspace: Any = None
) -> dict:
    """Preempt the pool's low-priority nodes now (all, or ``node_ids``): running tasks there are
    requeued, not counted as retries; the nodes come back after ``duration_seconds``."""
    body: dict = {"durationSeconds": duration_seconds}
    if node_ids is not None:
        body["nodeIds"] = list(node_ids)
    return _admin(account, f"/pools/{quote(pool_id, safe='')}/localbatch-preempt", body, workspace)


def set_node_condition(
    account: str, pool_id: str, condition: str | None, *, node_ids: list[str] | None = None, workspace: Any = None
) -> dict:
    """Make the pool's nodes (all, or ``node_ids``) ``unusable`` or ``starttaskfailed`` now —
    running tasks there are requeued and the nodes take no work — or heal them (None)."""
    body: dict = {"condition": condition}
    if node_ids is not None:
        body["nodeIds"] = list(node_ids)
    return _admin(account, f"/pools/{quote(pool_id, safe='')}/localbatch-node-condition", body, workspace)


def autoscale_now(account: str, pool_id: str, workspace: Any = None) -> dict:
    """Evaluate and apply the pool's autoscale formula now; returns the ``autoScaleRun``."""
    return _admin(account, f"/pools/{quote(pool_id, safe='')}/localbatch-autoscale", None, workspace)


__all__ = [
    "LocalBatchInfo",
    "account_url",
    "autoscale_now",
    "batch_client",
    "credentials",
    "discovery_path",
    "info",
    "key_file",
    "log_path",
    "preempt",
    "set_node_condition",
    "start",
    "status",
    "stop",
]
