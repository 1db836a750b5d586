"""Run the resilience drills and print their figures (``make drills``).

    .venv/bin/python drills/run.py            # the full drills (~15 minutes on 2 cores)
    .venv/bin/python drills/run.py --short    # the short versions (what `make test` runs)
    .venv/bin/python drills/run.py --only kill9 --only ha

Each drill prints its figures and whether each bound held; the exit code is 1 if any
bound failed or a drill raised. Every drill works in its own temporary workspace and
stops every process it started (by pid) before the next one begins.
"""

from __future__ import annotations

import argparse
import importlib
import shutil
import sys
import tempfile
import time
import traceback
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `drills` importable as a package
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    __package__ = "drills"

DRILLS = ("kill9", "ha", "localbatch_restart", "contention", "preemption", "moves", "azure_outage", "fuzzing")


def load(name: str):  # type: ignore[no-untyped-def]
    return importlib.import_module(f"drills.{name}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="drills/run.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--short", action="store_true", help="the short versions (as inside make test)")
    parser.add_argument("--only", action="append", choices=DRILLS, help="run only this drill (repeatable)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary workspaces")
    args = parser.parse_args(argv)
    names = args.only or list(DRILLS)
    print(f"drills ({'short' if args.short else 'full'}): {', '.join(names)}", flush=True)
    failed: list[str] = []
    t0 = time.monotonic()
    for name in names:
        drill = load(name)
        tmp = Path(tempfile.mkdtemp(prefix=f"batchfed-drill-{name}-"))
        try:
            outcome = drill.run(tmp / "ws", short=args.short)
        except Exception:
            print(f"== {drill.TITLE}: RAISED\n{traceback.format_exc()}", flush=True)
            failed.append(name)
            continue
        finally:
            if not args.keep:
                shutil.rmtree(tmp, ignore_errors=True)
        print(outcome.report(), flush=True)
        if not outcome.ok:
            failed.append(name)
    total = time.monotonic() - t0
    print(
        f"\n{len(names) - len(failed)} of {len(names)} drills met every bound in {total:.0f} s"
        + (f"; failed: {', '.join(failed)}" if failed else "")
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
