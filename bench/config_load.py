"""Validation of config files as large as the limit (``MAX_CONFIG_BYTES``), three shapes:

  * ``many-jobs``: one tiny job after another — the costliest shape per byte (most nodes);
  * ``explicit-tasks``: one job of explicit tasks with ids, commands and variables;
  * ``long-commands``: few tasks with long command lines — the cheapest.

Each is validated by ``batchfed_lab.config.validate_file`` in a fresh child process, which
prints its wall and CPU seconds and its peak resident memory. Target: ≤ 5 s for every shape
(the limit is chosen so; see docs/operations.md). Also prints each shape at half the limit,
so that the two figures show the cost grows linearly.

Usage: ``.venv/bin/python bench/config_load.py``. Exit 1 if a target is missed.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from batchfed_lab.config.loading import MAX_CONFIG_BYTES  # noqa: E402

TARGET_S = 5.0

SHAPES = {
    "many-jobs": ("job_specifications:\n", "- id: j{n}\n  tasks:\n  - command: echo {n}\n"),
    "explicit-tasks": (
        "job_specifications:\n- id: big\n  tasks:\n",
        "  - id: t{n}\n    command: /bin/sh -c 'echo task {n}'\n    environment_variables: {{A: '1', B: '2'}}\n",
    ),
    "long-commands": ("job_specifications:\n- id: big\n  tasks:\n", "  - command: echo {n} " + "x" * 2000 + "\n"),
}

CHILD = """
import json, resource, sys, time
from batchfed_lab.config import validate_file
wall, cpu = time.perf_counter(), time.process_time()
validate_file(sys.argv[1])
print(json.dumps({"wall": time.perf_counter() - wall, "cpu": time.process_time() - cpu,
                  "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def fill(head: str, item: str, limit: int) -> str:
    """``head`` then as many numbered copies of ``item`` as fit in ``limit`` bytes."""
    parts, size, n = [head], len(head), 0
    while True:
        text = item.format(n=n)
        if size + len(text) > limit:
            return "".join(parts)
        parts.append(text)
        size += len(text)
        n += 1


def measure(path: Path) -> dict[str, float]:
    out = subprocess.run([sys.executable, "-c", CHILD, str(path)], capture_output=True, text=True, check=True, cwd=ROOT)
    result: dict[str, float] = json.loads(out.stdout)
    return result


def main() -> int:
    missed = False
    print(f"config files up to {MAX_CONFIG_BYTES / 2**20:g} MiB (the limit); target ≤ {TARGET_S:g} s each")
    with tempfile.TemporaryDirectory() as tmp:
        for name, (head, item) in SHAPES.items():
            for share in (0.5, 1.0):
                path = Path(tmp) / f"{name}.yaml"
                path.write_text(fill(head, item, int(MAX_CONFIG_BYTES * share)))
                m = measure(path)
                mib = path.stat().st_size / 2**20
                over = share == 1.0 and m["wall"] > TARGET_S
                missed |= over
                verdict = "" if share < 1.0 else ("  OVER" if over else "  OK")
                print(
                    f"  {name:15} {mib:5.2f} MiB: {m['wall']:5.2f} s wall, {m['cpu']:5.2f} s CPU, "
                    f"{mib / max(m['cpu'], 1e-9):5.2f} MiB/s, peak {m['rss_mb']:5.0f} MB{verdict}"
                )
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
