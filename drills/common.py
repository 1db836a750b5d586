"""What every drill shares: the embedded federation of ``tests/federation_stack.py``, submitter
processes, figures with their bounds, and the result a drill hands to the runner.

A drill is a module with ``NAME``, ``TITLE`` and ``run(root: Path, short: bool) -> Outcome``.
It starts everything it needs under ``root`` and stops every process it started by pid
before it returns (``running_stack`` asserts that no process of the workspace survives).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
TESTS = REPO / "tests"
for _p in (str(REPO), str(TESTS)):
    if _p not in sys.path:
        sys.path.insert(0, _p)

from federation_stack import (  # noqa: E402 - tests/ is put on the path just above
    Stack,
    located_counts,
    running_stack,
    wait_for,
    workspace_processes,
)

__all__ = [
    "REPO",
    "Outcome",
    "Stack",
    "Submitters",
    "located_counts",
    "running_stack",
    "wait_for",
    "workspace_processes",
]


@dataclass
class Outcome:
    """Figures (printed in order) and bounds (each a description and whether it held)."""

    name: str
    title: str
    figures: dict[str, Any] = field(default_factory=dict)
    bounds: list[tuple[str, bool]] = field(default_factory=list)
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    def figure(self, key: str, value: Any) -> Any:
        self.figures[key] = value
        return value

    def bound(self, text: str, ok: bool) -> bool:
        self.bounds.append((text, bool(ok)))
        return bool(ok)

    @property
    def ok(self) -> bool:
        return all(ok for _, ok in self.bounds) and bool(self.bounds)

    def report(self) -> str:
        lines = [f"== {self.title} ({self.seconds:.1f} s)"]
        width = max((len(k) for k in self.figures), default=0)
        for k, v in self.figures.items():
            lines.append(f"   {k:<{width}}  {_fmt(v)}")
        for text, ok in self.bounds:
            lines.append(f"   [{'ok' if ok else 'FAILED'}] {text}")
        lines += [f"   note: {n}" for n in self.notes]
        return "\n".join(lines)

    def failures(self) -> list[str]:
        return [text for text, ok in self.bounds if not ok]


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.2f}"
    return str(v)


def timed(name: str, title: str, body: Callable[[Outcome], None]) -> Outcome:
    out = Outcome(name, title)
    t0 = time.monotonic()
    try:
        body(out)
    finally:
        out.seconds = time.monotonic() - t0
    return out


# --------------------------------------------------------------------------- submitters
_SUBMITTER = r"""
import json, sys, time
from batchfed_lab.client import connect
ws, fed, prefix, first, count, batch, out = sys.argv[1:8]
first, count, batch = int(first), int(count), int(batch)
ids = []
with connect(ws) as c:
    for start in range(first, first + count, batch):
        end = min(first + count, start + batch)
        body = "job_specifications:\n" + "".join(
            f"- id: {prefix}-{i:05d}\n  tasks: [{{command: 'true'}}]\n" for i in range(start, end))
        for attempt in range(50):  # the store is shared with the proxy and the other submitters
            try:
                ids.extend(c.submit(fed, body).unique_ids)
                break
            except Exception as exc:
                if attempt == 49:
                    raise
                time.sleep(0.05)
with open(out, "w") as fh:
    json.dump(ids, fh)
"""


class Submitters:
    """``n`` processes submitting ``total`` one-task jobs ``<prefix>-00000…`` between them,
    ``batch`` jobs per submit. ``join()`` returns every unique id they got back."""

    def __init__(self, root: Path, fed: str, prefix: str, total: int, n: int, batch: int = 10):
        self.procs: list[subprocess.Popen[bytes]] = []
        self.outs: list[Path] = []
        share = -(-total // n)
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        for k in range(n):
            first, count = k * share, max(0, min(share, total - k * share))
            out = root.parent / f"submitter-{prefix}-{k}.json"
            self.outs.append(out)
            self.procs.append(
                subprocess.Popen(
                    [sys.executable, "-c", _SUBMITTER, str(root), fed, prefix, str(first), str(count), str(batch), str(out)],
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.PIPE,
                )
            )

    def running(self) -> bool:
        return any(p.poll() is None for p in self.procs)

    def join(self, timeout: float = 600) -> list[str]:
        deadline = time.monotonic() + timeout
        ids: list[str] = []
        errors = []
        for p, out in zip(self.procs, self.outs):
            try:
                _, err = p.communicate(timeout=max(1.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
                errors.append(f"submitter {p.pid} timed out")
                continue
            if p.returncode != 0:
                errors.append(f"submitter {p.pid} exited {p.returncode}: {err.decode(errors='replace')[-400:]}")
                continue
            ids.extend(json.loads(out.read_text()))
            out.unlink()
        if errors:
            raise AssertionError("; ".join(errors))
        return ids

    def kill(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.kill()
                p.wait()
