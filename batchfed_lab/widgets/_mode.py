"""Is somebody watching? Decides whether views go live (widget + refresh thread) or render
a static text/HTML snapshot.

Non-interactive when, in this order (the first match is the reason reported):

1. ``BATCHFED_NONINTERACTIVE`` is ``1``/``true``/``yes``/``on``. (``0``/``false``/``no``/``off``
   forces interactive and skips checks 2–4, for a frontend the heuristics misjudge.)
2. A ``PAPERMILL_*`` environment variable is set (papermill itself sets none; CI jobs and
   wrappers export them to mark headless runs).
3. The ``papermill`` module is loaded in this process, or an ancestor process (up to 8
   levels) was started as ``papermill …`` — the papermill CLI is the kernel's parent.
4. There is no Jupyter kernel (plain Python, terminal IPython): no frontend can show a widget.
5. The kernel runs the current request with stdin disabled. nbclient — the executor under
   papermill, ``jupyter nbconvert --execute``, nbmake and testbook — always sends
   ``allow_stdin: false``; JupyterLab, Notebook 7 and VS Code send ``true``. This is what
   catches papermill driven from Python (``papermill.execute_notebook``), where 2 and 3 see
   nothing.
"""

from __future__ import annotations

import os
import sys
from functools import lru_cache

__all__ = ["ENV", "interactive", "noninteractive_reason"]

ENV = "BATCHFED_NONINTERACTIVE"
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


@lru_cache(maxsize=1)
def _papermill_ancestor() -> int | None:
    """Pid of an ancestor started as papermill (cached: a process's ancestry does not change)."""
    pid = os.getppid()
    for _ in range(8):
        if pid <= 1:
            return None
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as fh:
                argv = fh.read().split(b"\0")
            with open(f"/proc/{pid}/stat", "rb") as fh:
                ppid = int(fh.read().rsplit(b")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):  # no /proc (macOS) or the process is gone
            return None
        if any(os.path.basename(a.decode(errors="replace")) == "papermill" or a == b"papermill" for a in argv[:3]):
            return pid
        pid = ppid
    return None


def noninteractive_reason() -> str | None:
    """Why views render statically here, or None when a live frontend is attached."""
    flag = os.environ.get(ENV, "").strip().lower()
    if flag in _TRUE:
        return f"{ENV} is set"
    forced = flag in _FALSE
    if not forced:
        marked = sorted(k for k in os.environ if k.startswith("PAPERMILL_"))
        if marked:
            return f"papermill environment ({marked[0]})"
        if "papermill" in sys.modules:
            return "papermill is loaded in this process"
        parent = _papermill_ancestor()
        if parent is not None:
            return f"started by papermill (pid {parent})"
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - IPython is a dependency
        return "IPython is not installed"
    ip = get_ipython()
    kernel = getattr(ip, "kernel", None) if ip is not None else None
    if kernel is None:
        return "not running in a Jupyter kernel"
    if not forced and getattr(kernel, "_allow_stdin", True) is False:
        return "the kernel executes without stdin (papermill / nbclient / nbconvert)"
    return None


def interactive() -> bool:
    """True when views may start refresh threads and show widgets."""
    return noninteractive_reason() is None
