"""The foreground localbatch process (``python -m batchfed_lab.localbatch serve``): the
workspace lock, the port it comes back on, the discovery record, signals and shut-down around
one :class:`~.server.LocalBatchServer`."""

from __future__ import annotations

import fcntl
import json
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from .. import runtime
from . import api, auth
from ._util import SUPPORTED_API_VERSIONS, iso_now
from .engine import Engine, Options
from .launch import isolation
from .server import MAX_CONNECTIONS, READ_TIMEOUT, LocalBatchServer

if TYPE_CHECKING:
    from ..config.workspace import LocalBatchSettings

log = logging.getLogger("batchfed_lab.localbatch")

__all__ = ["configure_logging", "serve"]


def serve(
    workspace: str | os.PathLike[str] | None,
    *,
    port: int = 0,
    latency_ms: float | None = None,
    allocation_delay_ms: float | None = None,
    relaxed_limits: bool = False,
    loose: bool | None = None,
    read_timeout: float = READ_TIMEOUT,
    max_connections: int = MAX_CONNECTIONS,
) -> int:
    """Run localbatch in the foreground until SIGTERM/SIGINT. Returns the process exit code."""
    from ..config.workspace import open_workspace

    # state, task folders and task output, node folders: owner-only (tasks inherit the mask;
    # what they write sits in owner-only folders either way)
    os.umask(0o077)
    ws = open_workspace(workspace)
    lb_dir = ws.localbatch_dir
    lb_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    lock_fd = _lock_workspace(ws.path, lb_dir)
    if lock_fd is None:
        return 3
    key = auth.load_or_create_key(lb_dir)
    latency = ws.settings.localbatch.latency_ms if latency_ms is None else latency_ms
    options = _engine_options(ws.settings.localbatch, allocation_delay_ms, relaxed_limits)
    options.loose = ws.settings.localbatch.loose if loose is None else loose
    engine = Engine(lb_dir, options)
    server = _listen(
        lb_dir, port, lambda p: LocalBatchServer(("127.0.0.1", p), engine, key, latency, read_timeout, max_connections)
    )
    if server is None:
        os.close(lock_fd)
        return 2
    bound = server.server_address[1]
    engine.public_root = f"http://127.0.0.1:{bound}"
    isolation.become_subreaper()  # this process only: an engine run inside a test must not adopt its orphans
    engine.open()
    _publish_discovery(ws.path, lb_dir, engine, bound, latency, relaxed_limits, options.loose)
    _stop_on_signals(server)
    log.info(
        "localbatch %s serving %s on %s (latency %s ms, relaxed limits %s, %s)",
        api.VERSION,
        ws.path,
        engine.public_root,
        latency,
        relaxed_limits,
        "loose: unsupported properties ignored" if options.loose else "strict",
    )
    try:
        server.serve_forever(poll_interval=0.25)
    finally:
        _shut_down(server, engine, ws.path, lock_fd)
    return 0


def _lock_workspace(ws_path: Path, lb_dir: Path) -> int | None:
    """Take the workspace's server lock (its file descriptor), or None when another localbatch holds it."""
    from . import control

    lock_fd = os.open(lb_dir / "server.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        other = control.info(ws_path)
        log.error("another localbatch already serves %s%s", ws_path, f" (pid {other.pid}, {other.url})" if other else "")
        os.close(lock_fd)
        return None
    return lock_fd


def _engine_options(settings: LocalBatchSettings, allocation_delay_ms: float | None, relaxed_limits: bool) -> Options:
    options = Options(max_processes=settings.max_processes, relaxed_limits=relaxed_limits)
    if allocation_delay_ms is not None:
        options.allocation_delay = max(0.0, allocation_delay_ms) / 1000.0
    return options


def _listen(lb_dir: Path, port: int, bind: Callable[[int], LocalBatchServer]) -> LocalBatchServer | None:
    """Bind the server, or None when no port could be had.

    Without an explicit port, come back on the port of the previous run: federations and
    job locations record account URLs, port included, and must still work after a restart."""

    port_file = lb_dir / PORT_FILE
    remembered = _remembered_port(port_file) if port == 0 else None
    server = None
    for candidate in ([remembered] if remembered else []) + [port]:
        try:
            server = bind(candidate)
            break
        except OSError as exc:
            level = logging.WARNING if candidate == remembered else logging.ERROR
            log.log(level, "cannot listen on 127.0.0.1:%s: %s", candidate, exc.strerror)
    if server is None:
        return None
    bound = server.server_address[1]
    if bound != remembered:
        if remembered:
            log.warning("listening on port %d instead of %d: account URLs recorded before now point elsewhere", bound, remembered)
        runtime.write_json_atomic(port_file, {"port": bound})
    return server


def _publish_discovery(
    ws_path: Path, lb_dir: Path, engine: Engine, bound: int, latency: float, relaxed_limits: bool, loose: bool
) -> None:
    """Write ``<workspace>/runtime/localbatch.json``: how clients find and reach this server."""
    from . import control

    info = {
        "pid": os.getpid(),
        "url": engine.public_root,
        "port": bound,
        "host": "127.0.0.1",
        "version": api.VERSION,
        "api_version": sorted(SUPPORTED_API_VERSIONS)[-1],
        "started": iso_now(),
        "workspace": str(ws_path),
        "account_url_template": f"{engine.public_root}/accounts/{{account}}",
        "key_file": str(auth.key_path(lb_dir)),
        "log_file": str(control.log_path(ws_path)),
        "latency_ms": latency,
        "relaxed_limits": relaxed_limits,
        "loose": loose,
    }
    runtime.write_json_atomic(control.discovery_path(ws_path), info)


def _stop_on_signals(server: LocalBatchServer) -> None:
    """SIGTERM and SIGINT stop ``serve_forever`` (from another thread: shutdown waits for it)."""
    stop = threading.Event()

    def _on_signal(signum: int, _frame: object) -> None:
        if not stop.is_set():
            stop.set()
            threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)


def _shut_down(server: LocalBatchServer, engine: Engine, ws_path: Path, lock_fd: int) -> None:
    from . import control

    server.server_close()
    engine.close()
    control.remove_discovery_if_mine(ws_path, os.getpid())
    fcntl.flock(lock_fd, fcntl.LOCK_UN)
    os.close(lock_fd)
    log.info("localbatch stopped")


PORT_FILE = "port"  # <workspace>/localbatch/port: {"port": N} of the last run


def _remembered_port(path: Path) -> int | None:
    try:
        value = json.loads(path.read_text(encoding="utf-8")).get("port")
    except (OSError, ValueError, AttributeError):
        return None
    return value if type(value) is int and 1024 <= value <= 65535 else None


def configure_logging(verbose: bool) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger("batchfed_lab.localbatch")
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    root.propagate = False
