"""Process helpers shared by the engine and the control module (POSIX)."""

from __future__ import annotations

import os
import signal
from pathlib import Path


def starttime(pid: int) -> str:
    """The kernel's start time of ``pid`` (Linux ``/proc``), or '' where unknown.

    Recorded next to a pid so that a later kill cannot hit an unrelated process that reused it.
    """
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    # the command name (field 2) may contain spaces and ')' -- split after its last ')'
    fields = stat[stat.rfind(")") + 2 :].split()
    return fields[19] if len(fields) > 19 else ""


def is_zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rfind(")") + 2 :].startswith("Z")


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
