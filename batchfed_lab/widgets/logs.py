"""``LogsView``: the stdout and stderr of a submission's tasks (or of one job) in the cell,
growing as the tasks write, refreshed by a background thread — other cells run meanwhile.
It stops by itself once every task has completed."""

from __future__ import annotations

from typing import Any

from . import _html as h
from ._live import LiveView

__all__ = ["LogsView"]

MAX_SHOWN_CHARS = 200_000  # the widget keeps the tail; ``text`` has everything


class LogsView(LiveView):
    """Follow ``source``: a :class:`~batchfed_lab.client.Submission`, or the iterator that
    ``Submission.logs(follow=True)`` / ``client.task_logs(…, follow=True)`` returns."""

    kind = "logs"

    def __init__(self, source: Any, *, interval: float = 1.0, autostart: bool = True):
        super().__init__(interval=interval, autostart=autostart)
        self.logs = source.logs(follow=True) if hasattr(source, "logs") else source
        self.text = ""
        self._done = False

    def _fetch(self) -> Any:
        if not self._done:
            piece, self._done = self.logs.step()
            self.text += piece
        return self.text

    def _finished(self) -> bool:
        return self._done

    def _shown(self) -> str:
        return self.text[-MAX_SHOWN_CHARS:] or "(no output yet)"

    def _render_text(self) -> str:
        return self._shown()

    def _render_html(self) -> str:
        return f"<pre style='max-height:24em;overflow:auto'>{h.esc(self._shown())}</pre>{self._status_html()}"

    def _build(self) -> Any:
        import ipywidgets as w

        return w.HTML()

    def _update(self) -> None:
        self._widget.value = self._render_html()
