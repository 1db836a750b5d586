"""``python -m batchfed_lab.localbatch serve|start|stop|status|info``."""

from __future__ import annotations

import argparse
import json
import sys


def _workspace_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--workspace", default=None, help="workspace folder (default: $BATCHFED_HOME or ~/.batchfed)")


def _server_args(p: argparse.ArgumentParser) -> None:
    """The options of ``serve`` and ``start``: how the server listens and behaves."""
    _workspace_arg(p)
    p.add_argument("--port", type=int, default=0, help="TCP port on 127.0.0.1 (default: any free port)")
    p.add_argument(
        "--latency-ms",
        type=float,
        default=None,
        help="delay added to every request (default: settings localbatch.latency_ms)",
    )
    p.add_argument("--allocation-delay-ms", type=float, default=None, help="how long a pool stays 'resizing' (default 100)")
    p.add_argument(
        "--relaxed-limits", action="store_true", help="accept 1-second recurrence and autoscale intervals (tests, drills)"
    )
    p.add_argument("--read-timeout", type=float, default=None, help="seconds a connection may wait on one read (default 60)")
    p.add_argument("--max-connections", type=int, default=None, help="open connections at most (default 256)")
    p.add_argument(
        "--loose",
        action="store_true",
        help="accept and ignore, with a warning, request properties localbatch cannot honour (default: settings localbatch.loose)",
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m batchfed_lab.localbatch", description="localbatch: Azure Batch on loopback")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, help_text in (("serve", "run in the foreground"), ("start", "start in the background and wait until it answers")):
        p = sub.add_parser(name, help=help_text)
        _server_args(p)
        if name == "serve":
            p.add_argument("--verbose", action="store_true", help="log every request")
    for name, help_text in (
        ("stop", "stop it (SIGTERM, then SIGKILL) and its tasks"),
        ("status", "print its status as JSON"),
        ("info", "print its discovery record as JSON"),
    ):
        _workspace_arg(sub.add_parser(name, help=help_text))
    return parser


def _serve(args: argparse.Namespace) -> int:
    from .serving import configure_logging, serve

    configure_logging(args.verbose)
    return serve(
        args.workspace,
        port=args.port,
        latency_ms=args.latency_ms,
        allocation_delay_ms=args.allocation_delay_ms,
        relaxed_limits=args.relaxed_limits,
        loose=args.loose or None,
        **{k: v for k, v in (("read_timeout", args.read_timeout), ("max_connections", args.max_connections)) if v is not None},
    )


def _control(args: argparse.Namespace) -> int:
    """``start``, ``stop``, ``status`` or ``info`` of a background server."""
    from ..errors import BatchfedError
    from . import control

    try:
        if args.command == "start":
            rec = control.start(
                args.workspace,
                port=args.port,
                latency_ms=args.latency_ms,
                allocation_delay_ms=args.allocation_delay_ms,
                relaxed_limits=args.relaxed_limits,
                loose=args.loose,
                read_timeout=args.read_timeout,
                max_connections=args.max_connections,
            )
            print(json.dumps(rec.as_dict(), indent=2))
        elif args.command == "stop":
            print("stopped" if control.stop(args.workspace) else "not running")
        elif args.command == "status":
            print(json.dumps(control.status(args.workspace), indent=2))
        else:
            found = control.info(args.workspace)
            if found is None:
                print("localbatch is not running", file=sys.stderr)
                return 1
            print(json.dumps(found.as_dict(), indent=2))
    except BatchfedError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "serve":
        return _serve(args)
    return _control(args)


if __name__ == "__main__":
    sys.exit(main())
