"""The base of every view: one mimebundle (widget + text/plain + text/html), an optional
refresh thread that only mutates widget traits, and the non-interactive switch.

Rules the subclasses follow (ipywidgets#1790/#2358, ipykernel#1289):

- nothing is displayed or printed from the refresh thread; errors become status text;
- the thread starts when the view is first displayed in an interactive frontend, never
  in non-interactive mode (see :mod:`._mode`), and stops when the view is finished,
  paused, stopped or closed;
- a subclass implements ``_fetch`` (client calls; returns the model), ``_render_html``,
  ``_render_text`` (the fallbacks) and ``_build``/``_update`` (the widget and its traits).
"""

from __future__ import annotations

import threading
import time
import weakref
from typing import Any, ClassVar

from ._html import esc
from ._mode import interactive, noninteractive_reason

__all__ = ["LiveView", "live_views", "stop_all"]

_views: weakref.WeakSet[LiveView] = weakref.WeakSet()
_views_lock = threading.Lock()

MAX_ERRORS = 5  # consecutive failed ticks before a view stops polling (e.g. after `fed down`)


def live_views() -> list[LiveView]:
    """Views whose refresh thread is running."""
    with _views_lock:
        return [v for v in list(_views) if v.running]


def stop_all(timeout: float = 5.0) -> int:
    """Stop every running refresh thread (e.g. before bringing the stack down); returns how many."""
    views = live_views()
    for v in views:
        v.stop(timeout=timeout)
    return len(views)


class LiveView:
    """A view that can refresh itself. ``interval`` is in seconds; ``autostart`` starts the
    refresh thread on first display when the frontend is interactive."""

    kind: ClassVar[str] = "view"
    live: ClassVar[bool] = True  # False: a static view (explain) that never starts a thread

    def __init__(self, *, interval: float = 2.0, autostart: bool = True):
        if interval <= 0:
            raise ValueError("interval must be > 0 seconds")
        self.interval = float(interval)
        self.autostart = autostart
        self._lock = threading.RLock()  # one refresh at a time (thread, button, wait())
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._widget: Any = None
        self._model: Any = None
        self._error: str | None = None
        self._errors = 0
        self._ticks = 0
        self._tick_ms = 0.0
        self._updated: float | None = None
        self._user_paused = False
        self._closed = False
        self._active = False  # the loop is refreshing (False while it writes its final status)

    # -- subclass hooks ----------------------------------------------------------------
    def _fetch(self) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def _render_html(self) -> str:  # pragma: no cover - abstract
        raise NotImplementedError

    def _render_text(self) -> str:  # pragma: no cover - abstract
        raise NotImplementedError

    def _build(self) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def _update(self) -> None:
        """Push the current model into the widget's traits (called with the lock held)."""

    def _finished(self) -> bool:
        """True when there is nothing more to watch (the thread then stops itself)."""
        return False

    # -- state -------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        t = self._thread
        return self._active and t is not None and t.is_alive()

    @property
    def ticks(self) -> int:
        """How many refreshes succeeded."""
        return self._ticks

    @property
    def error(self) -> str | None:
        """The last refresh error (None after a successful refresh)."""
        return self._error

    def status_text(self) -> str:
        parts = []
        if self._updated is not None:
            parts.append(f"updated {time.strftime('%H:%M:%S', time.localtime(self._updated))} ({self._tick_ms:.0f} ms)")
        parts.append(f"refreshes {self._ticks}")
        if self.running:
            parts.append(f"live every {self.interval:g} s")
        elif self._finished():
            parts.append("finished")
        elif self._user_paused:
            parts.append("paused")
        elif self._errors >= MAX_ERRORS:
            parts.append(f"stopped after {self._errors} failed refreshes (resume to retry)")
        elif self._thread is not None:
            parts.append("stopped")
        elif self.live:
            reason = noninteractive_reason()
            parts.append(f"static: {reason}" if reason else "not refreshing")
        if self._error:
            parts.append(f"error: {self._error}")
        return " · ".join(parts)

    # -- refresh -------------------------------------------------------------------------
    def refresh(self) -> LiveView:
        """Fetch now and update the widget (if built). Raises what the client raises."""
        with self._lock:
            t0 = time.perf_counter()
            try:
                self._model = self._fetch()
            except Exception as exc:
                self._error = _one_line(exc)
                self._errors += 1
                if self._widget is not None:
                    self._update()
                raise
            self._tick_ms = (time.perf_counter() - t0) * 1000
            self._updated = time.time()
            self._ticks += 1
            self._error = None
            self._errors = 0
            if self._widget is not None:
                self._update()
        return self

    def _safe_refresh(self) -> None:
        try:
            self.refresh()
        except Exception:  # recorded in self._error and shown as status; never printed
            pass

    # -- thread ----------------------------------------------------------------------------
    def start(self) -> LiveView:
        """Start refreshing every ``interval`` seconds (interactive frontends only; in
        non-interactive mode this refreshes once and starts nothing)."""
        self._user_paused = False
        if self._closed:
            raise RuntimeError(f"this {self.kind} view is closed")
        if not self.live or not interactive():
            self._safe_refresh()
            return self
        if self.running or self._finished():
            return self
        self._stop = threading.Event()
        self._active = True
        self._thread = threading.Thread(target=self._loop, args=(self._stop,), name=f"batchfed-{self.kind}", daemon=True)
        with _views_lock:
            _views.add(self)
        self._thread.start()
        return self

    resume = start

    def pause(self) -> LiveView:
        """Stop refreshing until :meth:`resume`; the last state stays on screen."""
        self._user_paused = True
        self.stop()
        return self

    def stop(self, timeout: float = 5.0, *, final_refresh: bool = True) -> LiveView:
        """Stop the refresh thread and wait for it to exit. A view that was live refreshes
        once more, so what stays on screen is the state now, not one interval ago."""
        self._stop.set()
        self._active = False
        t = self._thread
        if t is not None and t is not threading.current_thread():
            t.join(timeout)
        if self._widget is not None:
            if final_refresh and t is not None:
                self._safe_refresh()
            with self._lock:
                self._update()
        return self

    def close(self) -> None:
        """Stop the thread and close the widget (its comms)."""
        self.stop(final_refresh=False)
        self._closed = True
        if self._widget is not None:
            for w in _walk(self._widget):
                w.close()
            self._widget = None

    def _loop(self, stop: threading.Event) -> None:
        while not stop.is_set():
            started = time.monotonic()
            self._safe_refresh()
            if self._errors >= MAX_ERRORS:
                break  # the status line says why; resume() tries again
            if self._finished():
                break
            stop.wait(max(0.05, self.interval - (time.monotonic() - started)))
        self._active = False
        if self._widget is not None:
            with self._lock:
                self._update()  # final status: finished / stopped

    # -- display -----------------------------------------------------------------------------
    @property
    def widget(self) -> Any:
        """The ipywidgets tree (built on first use)."""
        if self._widget is None:
            with self._lock:
                if self._widget is None:
                    if self._ticks == 0:
                        self._safe_refresh()  # built with data (federation list, first table), not empty
                    self._widget = self._build()
                    self._update()
        return self._widget

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        live = interactive()
        if self._ticks == 0 or not live:
            self._safe_refresh()  # a static view shows the state now, not when it was built
        bundle: dict[str, Any] = {}
        if live:
            bundle.update(self.widget._repr_mimebundle_(include=include, exclude=exclude) or {})
            if self.live and self.autostart and not self._user_paused:
                self.start()
        bundle["text/plain"] = self._render_text()
        bundle["text/html"] = self._render_html()
        return bundle

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.status_text()}>"

    def _status_html(self) -> str:
        color = "#c92a2a" if self._error else "#868e96"
        return f'<div style="font-size:11px;color:{color}">{esc(self.status_text())}</div>'


def _walk(widget: Any) -> list[Any]:
    out = [widget]
    for child in getattr(widget, "children", ()) or ():
        out.extend(_walk(child))
    return out


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"


def _plain(v: Any) -> Any:
    """NA / NaN / NaT → None; categories and numpy scalars → Python values."""
    try:
        import pandas as pd

        if v is None or (not isinstance(v, (str, bytes)) and pd.isna(v)):
            return None
    except (TypeError, ValueError):  # list-likes: keep
        return v
    if hasattr(v, "item") and not isinstance(v, str):
        try:
            return v.item()
        except (ValueError, AttributeError):
            return v
    return v
