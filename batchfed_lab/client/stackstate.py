"""What ``up`` remembers about a workspace's embedded stack, and what this process started.

- The proxy options of the last ``up`` (``runtime/stack.json``, the federation.yaml path), so a
  later ``up`` without ``--config`` runs the proxy as before instead of on silent defaults.
- The workspaces whose stack this process (a kernel, a script) started, so ``down
  --if-started-here`` leaves a stack someone else started (``make lab``) alone.
- ``$BATCHFED_LAB_STACKS``: a file ``make lab`` gives its kernels; the workspace of every stack
  or proxy a kernel starts is appended to it, so the lab's exit brings them all down.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path

from ..config.workspace import Workspace
from ..runtime import write_json_atomic

LAB_STACKS_ENV = "BATCHFED_LAB_STACKS"

_started_here: set[Path] = set()


def _memory(ws: Workspace) -> Path:
    return ws.runtime_dir / "stack.json"


def remember_config(ws: Workspace, config: Path) -> None:
    write_json_atomic(_memory(ws), {"config": str(config)})


def remembered_config(ws: Workspace) -> Path | None:
    """The federation.yaml of the last ``up`` that was given one, or None."""
    try:
        value = json.loads(_memory(ws).read_text(encoding="utf-8")).get("config")
    except (OSError, ValueError, AttributeError):
        return None
    return Path(value) if isinstance(value, str) and value else None


def mark_started(ws: Workspace) -> None:
    """This process started (part of) the workspace's stack."""
    _started_here.add(ws.path.absolute())
    note_for_lab(ws)


def note_for_lab(ws: Workspace) -> None:
    """Append the workspace to ``$BATCHFED_LAB_STACKS`` when this process runs under ``make lab``."""
    lab_file = os.environ.get(LAB_STACKS_ENV)
    if lab_file:
        # one short line in one append: kernels writing at the same time do not interleave
        with contextlib.suppress(OSError), open(lab_file, "a", encoding="utf-8") as fh:
            fh.write(f"{ws.path.absolute()}\n")


def started_here(ws: Workspace) -> bool:
    return ws.path.absolute() in _started_here


def forget_started(ws: Workspace) -> None:
    _started_here.discard(ws.path.absolute())
