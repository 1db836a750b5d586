"""Process-group helpers of the engine and the control module (POSIX).

The pid checks themselves (alive and not a zombie, start time) are the workspace's shared
ones in :mod:`batchfed_lab.runtime`, also used by the proxy.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

from ..runtime import alive, starttime

__all__ = ["cmdline", "group_alive", "kill_group", "kill_recorded_group", "same_process"]


def same_process(pid: int, recorded_starttime: str) -> bool:
    """Is ``pid`` still the process we recorded (same start time where /proc tells)?"""
    if not alive(pid):
        return False
    now = starttime(pid)
    return not recorded_starttime or not now or now == recorded_starttime


def kill_group(pgid: int, sig: int = signal.SIGKILL) -> bool:
    """Signal a whole process group; False if it is gone already."""
    try:
        os.killpg(pgid, sig)
        return True
    except (ProcessLookupError, PermissionError):
        return False


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def cmdline(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [p.decode("utf-8", "replace") for p in raw.split(b"\0") if p]


def kill_recorded_group(pgid: int, recorded_starttime: str) -> bool:
    """SIGKILL a task process group recorded earlier, unless its id now belongs to someone else.

    A process group id is not reused while the group exists, so a live group whose leader is
    gone is still ours; a live leader with another start time means the old group ended.
    """
    if alive(pgid) and recorded_starttime:
        now = starttime(pgid)
        if now and now != recorded_starttime:
            return False
    return kill_group(pgid)
