"""Live views for notebooks (ipywidgets 8), each with a text/plain + text/html fallback in
the same mimebundle, so it renders in JupyterLab, Notebook 7, VS Code, nbviewer and in
papermill output alike.

- :class:`PoolCapacity` — pools by region: nodes by state, slots, backlog; live refresh.
- :class:`SubmissionView` — per action state, pool, region, latency; per job task progress.
- :class:`ExplainView` — a dry run as pools × constraints.
- :class:`LogsView` — the stdout / stderr of a submission's tasks, growing as they write.
- :class:`SubmitForm` — federation, YAML editor, dry-run and submit buttons.
- :class:`ShareView` — fair share of a federation's users: shares, usage, factor, work, spend.
- :class:`CapacitySampler` — capacity time series for :mod:`batchfed_lab.widgets.plots`.
- :mod:`batchfed_lab.widgets.plots` — matplotlib figures of capacity, placements and latency
  (``from batchfed_lab.widgets import plots``; matplotlib is imported when a figure is drawn).

Refresh threads only change widget traits and start only in an interactive frontend;
under papermill or ``BATCHFED_NONINTERACTIVE=1`` views render statically and start no
thread (see :func:`noninteractive_reason` for what is detected). The views use only the
client API. Importing this package creates no widget and starts nothing.
"""

from __future__ import annotations

from ._live import LiveView, live_views, stop_all
from ._mode import interactive, noninteractive_reason
from .capacity import CapacitySampler, PoolCapacity
from .explain import ExplainView
from .form import SubmitForm
from .glue import glue
from .logs import LogsView
from .share import ShareView
from .submission import SubmissionView

__all__ = [
    "CapacitySampler",
    "ExplainView",
    "LiveView",
    "LogsView",
    "PoolCapacity",
    "ShareView",
    "SubmissionView",
    "SubmitForm",
    "glue",
    "interactive",
    "live_views",
    "noninteractive_reason",
    "stop_all",
]
