"""A Batch command line into the argument list a node agent executes.

Azure Batch runs a command line *without* a shell: on Linux the agent splits it into arguments
with POSIX shell quoting (quotes group words and are removed, a backslash escapes), executes the
first word (looked up on ``PATH`` when it has no ``/``, else relative to the working directory)
and expands nothing: ``$VAR``, ``|``, ``&&``, ``>`` and ``*`` reach the program as plain
arguments. A program that cannot be found fails the task before it runs, with failureInfo code
``CommandProgramNotFound``; one that cannot be executed with ``CommandLaunchFailed``. Shell
features need a shell named in the command line (``/bin/sh -c '…'``), which is what the
federation sends for jobs.yaml commands.
"""

from __future__ import annotations

import errno
import os
import shlex


class LaunchError(Exception):
    """The command could not be started; ``code`` is the Batch failureInfo code."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


def argv_of(command_line: str) -> list[str]:
    """The arguments of ``command_line``; LaunchError when it cannot be split or is empty."""
    try:
        argv = shlex.split(command_line)
    except ValueError as exc:  # an unclosed quote or a trailing backslash
        raise LaunchError("CommandLaunchFailed", f"the command line cannot be split into arguments: {exc}") from None
    if not argv:
        raise LaunchError("CommandLaunchFailed", "the command line is empty")
    return argv


def launch_error(argv: list[str], exc: OSError, search_path: str) -> LaunchError:
    """The Batch failure for an ``exec`` of ``argv`` that raised ``exc``. A search of
    ``search_path`` that met a folder the task's user may not enter reports EACCES even when
    the program is nowhere: that is a program not found too."""
    absent = exc.errno in (errno.ENOENT, errno.ENOTDIR)
    if exc.errno == errno.EACCES and "/" not in argv[0]:
        absent = not any(os.path.exists(os.path.join(d or ".", argv[0])) for d in search_path.split(os.pathsep))
    if absent:
        return LaunchError(
            "CommandProgramNotFound",
            f"the program {argv[0]!r} of the command line was not found (the command line runs without a shell; "
            "use /bin/sh -c '...' for shell features)",
        )
    return LaunchError("CommandLaunchFailed", f"the program {argv[0]!r} could not be started: {exc.strerror or exc}")
