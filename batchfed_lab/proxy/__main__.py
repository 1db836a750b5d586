"""``python -m batchfed_lab.proxy run``: the proxy process itself (started by lifecycle.start)."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from datetime import datetime, timezone
from pathlib import Path

from .._version import __version__
from ..errors import BatchfedError


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
    from ..batch.adapter import close_accounts, get_account
    from ..config import load_federation
    from ..config.federation import FederationConfig
    from ..config.workspace import open_workspace
    from ..store import open_store
    from . import logs
    from .daemon import LoopOptions, ProxyDaemon
    from .lifecycle import discovery_file, write_json_atomic
    from .processor import ProcessingOptions

    os.umask(0o077)  # logs and whatever else this process writes in the workspace: owner-only
    ws = open_workspace(args.workspace)
    fed_cfg = load_federation(Path(args.config)) if args.config else FederationConfig()
    opts = fed_cfg.federation.proxy_options
    log_path = logs.configure(ws.logs_dir, opts.logging.filename, opts.logging.level, args.proxy_id)
    proxy_settings = ws.settings.proxy
    store = open_store(ws)
    blob_log = logs.persist_to(store, args.proxy_id, opts.logging.level) if opts.logging.persistence else None
    daemon = ProxyDaemon(
        store,
        lambda url: get_account(url, workspace=ws.path),
        ProcessingOptions(
            blackout_interval=opts.scheduling.after_success.blackout_interval,
            evaluate_autoscale=opts.scheduling.after_success.evaluate_autoscale,
            policy=opts.scheduling.policy,
            actions_interval=opts.polling_interval.actions,
            max_attempts=proxy_settings.max_attempts,
        ),
        LoopOptions(
            workers=proxy_settings.workers,
            lease_ttl=proxy_settings.lease_seconds,
            lease_renew=proxy_settings.renew_seconds,
            federations_interval=opts.polling_interval.federations,
            mode=args.mode,
            original_poll=max(opts.polling_interval.actions, 0.1),
        ),
        proxy_id=args.proxy_id,
        info={"log": str(log_path), "store": store.backend, "config": args.config},
    )
    signal.signal(signal.SIGTERM, lambda *_: daemon.stop())
    signal.signal(signal.SIGINT, lambda *_: daemon.stop())
    record = {
        "proxy_id": args.proxy_id,
        "pid": os.getpid(),
        "version": __version__,
        "started": datetime.now(timezone.utc).isoformat(),
        "store": store.backend,
        "log": str(log_path),
        "config": args.config,
        "mode": args.mode,
    }
    target = discovery_file(ws, args.proxy_id)
    write_json_atomic(target, record)
    logging.getLogger("batchfed.proxy").info(
        "proxy %s %s started (pid %d, store %s, mode %s)", args.proxy_id, __version__, os.getpid(), store.backend, args.mode
    )
    try:
        daemon.run()
    finally:
        try:
            current = target.read_text(encoding="utf-8")
            if f'"pid": {os.getpid()}' in current:
                target.unlink()
        except OSError:
            pass
        if blob_log is not None:
            logging.getLogger().removeHandler(blob_log)
            blob_log.close()
        store.close()
        close_accounts()
    return 0


if __name__ == "__main__":
    sys.exit(main())
