"""Runtime files of background processes: atomic JSON, pid checks, discovery files.

localbatch and the proxy each write a discovery file (JSON with at least ``pid``) into
the workspace's ``runtime/`` folder and remove it on a clean exit; readers check the pid
and prune stale files (Jupyter's ``jpserver-<pid>.json`` pattern). Both use this module,
so it imports nothing else of batchfed_lab: localbatch stays a separate program.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["alive", "is_zombie", "live_records", "read_record", "remove_if_owned", "starttime", "write_json_atomic"]


def write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    """Write JSON owner-only via a temp file in the same folder and a rename (never half a
    file); the temp file is removed when anything fails."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh, indent=2)
            fh.write("\n")
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


# -- pids (POSIX; /proc where it exists) ----------------------------------------------------------
def _stat_fields(pid: int) -> list[str] | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # the command name (field 2) may contain spaces and ')' -- split after its last ')'
    return stat[stat.rfind(")") + 2 :].split()


def starttime(pid: int) -> str:
    """The kernel's start time of ``pid`` (Linux ``/proc``), or '' where unknown.

    Recorded next to a pid so that a later kill cannot hit an unrelated process that reused it.
    """
    fields = _stat_fields(pid)
    return fields[19] if fields is not None and len(fields) > 19 else ""


def is_zombie(pid: int) -> bool:
    fields = _stat_fields(pid)
    return fields is not None and fields[:1] == ["Z"]


def alive(pid: int) -> bool:
    """True if ``pid`` exists and is not a zombie."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return not is_zombie(pid)


# -- discovery files ------------------------------------------------------------------------------
def read_record(path: Path) -> dict[str, Any] | None:
    """A discovery file's JSON object, or None when it is missing, unreadable or has no int ``pid``."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and isinstance(data.get("pid"), int) else None


def remove_if_owned(path: Path, pid: int) -> None:
    """Remove a discovery file only if it still names ``pid`` (a newer process may own it by now)."""
    with contextlib.suppress(OSError, ValueError):
        if json.loads(path.read_text(encoding="utf-8")).get("pid") == pid:
            path.unlink()


def live_records(folder: Path, pattern: str, is_live: Callable[[int], bool] = alive) -> list[tuple[Path, dict[str, Any]]]:
    """The discovery files in ``folder`` matching ``pattern`` whose pid is live, sorted by name;
    unreadable files and those of dead pids are removed on the way."""
    found = []
    for f in sorted(folder.glob(pattern)):
        rec = read_record(f)
        if rec is not None and is_live(rec["pid"]):
            found.append((f, rec))
        else:
            f.unlink(missing_ok=True)
    return found


def terminate(pid: int, timeout: float, gone: Callable[[int, float], bool]) -> None:
    """SIGTERM ``pid``, and SIGKILL it when ``gone(pid, timeout)`` says it outlived the grace;
    ``gone`` is the caller's wait, which knows whether the process is its own child to reap."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    if not gone(pid, timeout):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        gone(pid, 5.0)
