"""``python -m batchfed_lab.proxy run``: the proxy process itself (started by lifecycle.start)."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

from .._version import __version__
from ..errors import BatchfedError

if TYPE_CHECKING:
    from ..config.federation import FederationConfig, ProxyOptions
    from ..config.workspace import Workspace
    from ..store.base import Store
    from .daemon import ProxyDaemon


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m batchfed_lab.proxy")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run the proxy in the foreground")
    run.add_argument("--workspace", required=True)
    run.add_argument("--proxy-id", required=True)
    run.add_argument("--config", default=None, help="federation.yaml")
    run.add_argument("--mode", choices=["event", "original"], default="event")
    args = parser.parse_args(argv)
    try:
        return _run(args)
    except BatchfedError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


def _run(args: argparse.Namespace) -> int:
    from ..batch.adapter import close_accounts
    from ..config.workspace import open_workspace
    from ..store import open_store
    from . import accounting, logs

    os.umask(0o077)  # logs and whatever else this process writes in the workspace: owner-only
    ws = open_workspace(args.workspace)
    fed_cfg = _federation_config(args.config)
    opts = fed_cfg.federation.proxy_options
    log_path = logs.configure(ws.logs_dir, opts.logging.filename, opts.logging.level, args.proxy_id)
    store = open_store(ws)
    blob_log = logs.persist_to(store, args.proxy_id, opts.logging.level) if opts.logging.persistence else None
    daemon = _daemon(args, ws, opts, store, log_path)
    accounting.install(daemon, fed_cfg.federation.accounting)
    _stop_on_signals(daemon)
    discovery = _announce(args, ws, store.backend, log_path)
    try:
        daemon.run()
    finally:
        _withdraw(discovery)
        if blob_log is not None:
            logging.getLogger().removeHandler(blob_log)
            blob_log.close()
        store.close()
        close_accounts()
    return 0


def _federation_config(config: str | None) -> FederationConfig:
    """The given federation.yaml, else the defaults."""
    from ..config import load_federation
    from ..config.federation import FederationConfig

    return load_federation(Path(config)) if config else FederationConfig()


def _daemon(args: argparse.Namespace, ws: Workspace, opts: ProxyOptions, store: Store, log_path: Path) -> ProxyDaemon:
    """The daemon as federation.yaml (scheduling, polling) and the workspace (workers, lease) set it up."""
    from ..batch.adapter import get_account
    from .daemon import LoopOptions, ProxyDaemon
    from .processor import ProcessingOptions
    from .storage import WorkspaceStorage

    settings = ws.settings.proxy
    processing = ProcessingOptions(
        blackout_interval=opts.scheduling.after_success.blackout_interval,
        evaluate_autoscale=opts.scheduling.after_success.evaluate_autoscale,
        policy=opts.scheduling.policy,
        actions_interval=opts.polling_interval.actions,
        max_attempts=settings.max_attempts,
    )
    loop = LoopOptions(
        workers=settings.workers,
        lease_ttl=settings.lease_seconds,
        lease_renew=settings.renew_seconds,
        federations_interval=opts.polling_interval.federations,
        mode=args.mode,
        original_poll=max(opts.polling_interval.actions, 0.1),
        recurrences_interval=opts.polling_interval.recurrences,
    )
    return ProxyDaemon(
        store,
        lambda url: get_account(url, workspace=ws.path),
        processing,
        loop,
        proxy_id=args.proxy_id,
        info={"log": str(log_path), "store": store.backend, "config": args.config},
        storage=WorkspaceStorage(ws),
    )


def _stop_on_signals(daemon: ProxyDaemon) -> None:
    signal.signal(signal.SIGTERM, lambda *_: daemon.stop())
    signal.signal(signal.SIGINT, lambda *_: daemon.stop())


def _announce(args: argparse.Namespace, ws: Workspace, backend: str, log_path: Path) -> Path:
    """Write this process's discovery file (atomically) and log the start; returns the file."""
    from ..runtime import write_json_atomic
    from .lifecycle import discovery_file

    record = {
        "proxy_id": args.proxy_id,
        "pid": os.getpid(),
        "version": __version__,
        "started": datetime.now(timezone.utc).isoformat(),
        "store": backend,
        "log": str(log_path),
        "config": args.config,
        "mode": args.mode,
    }
    discovery = discovery_file(ws, args.proxy_id)
    write_json_atomic(discovery, record)
    logging.getLogger("batchfed.proxy").info(
        "proxy %s %s started (pid %d, store %s, mode %s)", args.proxy_id, __version__, os.getpid(), backend, args.mode
    )
    return discovery


def _withdraw(discovery: Path) -> None:
    """Remove the discovery file, unless a newer process of the same proxy id wrote it since."""
    try:
        current = discovery.read_text(encoding="utf-8")
        if f'"pid": {os.getpid()}' in current:
            discovery.unlink()
    except OSError:
        pass


if __name__ == "__main__":
    sys.exit(main())
