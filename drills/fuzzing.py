"""The hypothesis fuzzers of ``tests/badinput/fuzz.py`` at drill strength: 10,000 examples
each (300 in the short run) on the config loader (YAML-ish text and nested dicts, for
jobs, pool and federation files) and on the action decoder, alone and end to end through
the real action processor. Any exception other than our one-line errors fails the drill.
"""

from __future__ import annotations

import sys
import traceback
from pathlib import Path

from .common import TESTS, Outcome, timed

NAME = "fuzz"
TITLE = "fuzzing the config loader and the action decoder"


def run(root: Path, short: bool = False) -> Outcome:
    examples = 300 if short else 10_000

    def body(out: Outcome) -> None:
        sys.path.insert(0, str(TESTS / "badinput"))
        import fuzz  # tests/badinput/fuzz.py

        total = 0
        for name, fn in fuzz.fuzzers(examples).items():
            fuzz.COUNTS[name].clear()
            try:
                fn()
                error = None
            except Exception as exc:
                error = "".join(traceback.format_exception_only(type(exc), exc)).strip().splitlines()[-1][:300]
            counts = dict(fuzz.COUNTS[name])
            n = sum(counts.values())
            total += n
            out.figure(name, f"{n} examples: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
            out.bound(f"{name}: {n} examples, none escaped" + (f" — {error}" if error else ""), error is None and n >= examples)
        out.figure("examples in all", total)

    return timed(NAME, TITLE, body)
