"""``PoolCapacity``: the federation's pools by region — nodes by state (dedicated and
low-priority, stacked), slots in use / available, backlog — refreshed on a background
thread; and ``CapacitySampler``, the time series behind :func:`batchfed_lab.widgets.plots.capacity_over_time`.

"Slots in use" counts the slots of nodes that run tasks (Batch reports node states, not
per-slot use, so a node running one task of two slots counts both); "available" is
``(idle + running nodes) × slots per node`` (SPEC §1); "backlog" is the pool's active
(waiting) tasks and their ratio to available slots.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from . import _html as h
from ._live import LiveView

if TYPE_CHECKING:
    import pandas as pd

    from ..client import Client
    from ..results import PoolSnapshot

__all__ = ["SAMPLE_COLUMNS", "CapacitySampler", "PoolCapacity"]

NODE_PARTS = (
    "dedicated_idle",
    "dedicated_running",
    "dedicated_other",
    "low_priority_idle",
    "low_priority_running",
    "low_priority_other",
)
COLUMNS = ("pool", "account", "vm size", "nodes (ded | low-pri)", "slots used / avail", "backlog", "state")
WIDTHS = (100, 60, 175, 170, 140, 65, 135)  # px: the tables of all regions line up
SAMPLE_COLUMNS = (
    "time",
    "federation_id",
    "pool_id",
    "account",
    "location",
    *NODE_PARTS,
    "slots_in_use",
    "slots_available",
    "slots_total",
    "active_tasks",
    "allocation_state",
)


def _sample_row(at: datetime, federation_id: str, s: PoolSnapshot) -> dict[str, Any]:
    f = s.facts
    slots = f.task_slots_per_node
    return {
        "time": at,
        "federation_id": federation_id,
        "pool_id": f.pool_id,
        "account": f.account,
        "location": f.location,
        "dedicated_idle": s.dedicated.idle,
        "dedicated_running": s.dedicated.running,
        "dedicated_other": s.dedicated.other,
        "low_priority_idle": s.low_priority.idle,
        "low_priority_running": s.low_priority.running,
        "low_priority_other": s.low_priority.other,
        "slots_in_use": (s.dedicated.running + s.low_priority.running) * slots,
        "slots_available": s.total_slots,
        "slots_total": (s.dedicated.total + s.low_priority.total) * slots,
        "active_tasks": s.active_tasks,
        "allocation_state": s.allocation_state,
    }


class CapacitySampler:
    """Takes capacity samples of a federation (one row per pool per sample) through the
    client, keeping the last ``max_samples`` samples. No thread of its own: call
    :meth:`sample` (the PoolCapacity widget does, on every refresh)."""

    def __init__(self, client: Client, federation_id: str | None = None, *, max_samples: int = 3600):
        self.client = client
        self.federation_id = federation_id
        self._ticks: deque[list[dict[str, Any]]] = deque(maxlen=max_samples)

    def snapshots(self) -> list[PoolSnapshot]:
        if not self.federation_id:
            return []
        return self.client.pool_snapshots(self.federation_id)

    def record(self, snapshots: Sequence[PoolSnapshot], at: datetime | None = None) -> None:
        at = at or datetime.now(timezone.utc)
        self._ticks.append([_sample_row(at, self.federation_id or "", s) for s in snapshots])

    def sample(self) -> list[PoolSnapshot]:
        """One sample now; returns the snapshots it recorded."""
        snaps = self.snapshots()
        self.record(snaps)
        return snaps

    def collect(self, count: int, every: float) -> pd.DataFrame:
        """``count`` samples ``every`` seconds apart in the caller's thread (for scripts and
        papermill runs, where no refresh thread runs); returns :meth:`frame`."""
        pause = threading.Event()  # Event.wait: interruptible, unlike time.sleep in a kernel
        for i in range(count):
            self.sample()
            if i + 1 < count:
                pause.wait(every)
        return self.frame()

    def clear(self) -> None:
        self._ticks.clear()

    def __len__(self) -> int:
        return len(self._ticks)

    def frame(self) -> pd.DataFrame:
        """The samples: ``time`` (UTC), ``federation_id``, ``pool_id``, ``account``,
        ``location``, node counts by kind and state, ``slots_in_use``,
        ``slots_available``, ``slots_total``, ``active_tasks`` (Int64), ``allocation_state``."""
        import pandas as pd

        rows = [r for tick in self._ticks for r in tick]
        df = pd.DataFrame(rows, columns=list(SAMPLE_COLUMNS))
        df["time"] = pd.to_datetime(df["time"], utc=True)
        for col in (*NODE_PARTS, "slots_in_use", "slots_available", "slots_total"):
            df[col] = df[col].astype("int64")
        df["active_tasks"] = df["active_tasks"].astype("Int64")
        return df


class PoolCapacity(LiveView):
    """Live capacity of a federation's pools, grouped by region.

    ``PoolCapacity(client, "fed", interval=2)`` — display it as a cell's last value. In
    JupyterLab it refreshes every ``interval`` seconds on a background thread (pause /
    resume with the button or :meth:`pause` / :meth:`resume`; pick another federation in
    the dropdown); under papermill or ``BATCHFED_NONINTERACTIVE=1`` it renders a static
    table. Every refresh is also a sample: :meth:`samples` feeds
    :func:`batchfed_lab.widgets.plots.capacity_over_time`.
    """

    kind = "capacity"

    def __init__(
        self,
        client: Client,
        federation_id: str | None = None,
        *,
        interval: float = 2.0,
        autostart: bool = True,
        max_samples: int = 3600,
    ):
        super().__init__(interval=interval, autostart=autostart)
        self.client = client
        if federation_id is None:
            feds = [f.id for f in client.federations()]
            federation_id = feds[0] if feds else None
        self.sampler = CapacitySampler(client, federation_id, max_samples=max_samples)
        self._federations: list[str] = []
        self._snapshots: list[PoolSnapshot] = []
        self._last_html = ""
        self._sync = threading.local()  # per thread: a user click racing a refresh is still seen

    # -- model ---------------------------------------------------------------------------
    @property
    def federation_id(self) -> str | None:
        return self.sampler.federation_id

    @federation_id.setter
    def federation_id(self, value: str | None) -> None:
        with self._lock:
            if value != self.sampler.federation_id:
                self.sampler.federation_id = value
                self._snapshots = []
        self._safe_refresh()

    @property
    def snapshots(self) -> list[PoolSnapshot]:
        """The pools as of the last refresh."""
        return list(self._snapshots)

    def _fetch(self) -> Any:
        self._federations = [f.id for f in self.client.federations()]
        self._snapshots = sorted(self.sampler.sample(), key=lambda s: (s.facts.location, s.facts.pool_id))
        return self._snapshots

    def samples(self) -> pd.DataFrame:
        """Every refresh so far, one row per pool (see :meth:`CapacitySampler.frame`)."""
        return self.sampler.frame()

    def frame(self) -> pd.DataFrame:
        """The last refresh, one row per pool (the columns of :meth:`samples`)."""
        df = self.samples()
        return df[df["time"] == df["time"].max()].reset_index(drop=True) if len(df) else df

    def wait_until(
        self, predicate: Callable[[list[PoolSnapshot]], bool], timeout: float = 60.0, every: float = 0.2
    ) -> PoolCapacity:
        """Refresh in the caller's thread until ``predicate(snapshots)`` holds; raises
        ``TimeoutError`` naming the last state after ``timeout`` seconds."""
        pause = threading.Event()
        deadline = time.monotonic() + timeout
        while True:
            self.refresh()
            if predicate(self.snapshots):
                return self
            if time.monotonic() > deadline:
                raise TimeoutError(f"pools not ready after {timeout:g}s: {self._render_text().splitlines()[0]}")
            pause.wait(every)

    def wait_steady(self, timeout: float = 60.0) -> PoolCapacity:
        """Wait until every pool is steady with all its nodes up (none starting)."""
        return self.wait_until(
            lambda snaps: (
                bool(snaps)
                and all(s.allocation_state == "steady" and s.dedicated.other + s.low_priority.other == 0 for s in snaps)
            ),
            timeout,
        )

    # -- rendering -----------------------------------------------------------------------------
    def _groups(self) -> dict[str, list[PoolSnapshot]]:
        groups: dict[str, list[PoolSnapshot]] = {}
        for s in self._snapshots:
            groups.setdefault(s.facts.location or "(no region)", []).append(s)
        return groups

    def _summary(self) -> str:
        if not self.federation_id:
            return "no federation (create one, then pick it)"
        n = len(self._snapshots)
        regions = len({s.facts.location for s in self._snapshots})
        schedulable = sum(s.total_slots for s in self._snapshots)
        used = sum((s.dedicated.running + s.low_priority.running) * s.facts.task_slots_per_node for s in self._snapshots)
        backlog = sum(s.active_tasks or 0 for s in self._snapshots)
        burn = self.client.burn_rate(self._snapshots)
        cost = "" if burn is None else f" · burn rate ~${burn:,.2f}/h (estimate)"
        # "available" read as "free" while every slot was busy: say both numbers and what they count
        return (
            f"federation {self.federation_id}: {n} pools in {regions} regions · "
            f"{used} of {schedulable} schedulable slots in use · backlog {backlog} tasks{cost}"
        )

    def _render_html(self) -> str:
        return f'<div class="batchfed-pool-capacity">{self._render_body()}{self._status_html()}</div>'

    def _render_body(self) -> str:
        parts = [f'<div style="font-weight:600;margin:2px 0">{h.esc(self._summary())}</div>']
        if self._snapshots:
            most = max((s.dedicated.total + s.low_priority.total) for s in self._snapshots) or 1
            scale = min(24.0, 120.0 / most)  # px per node: bars of different pools compare
            parts.append(h.legend(NODE_PARTS))
            now = time.time()
            for region, snaps in self._groups().items():
                avail = sum(s.total_slots for s in snaps)
                used = sum((s.dedicated.running + s.low_priority.running) * s.facts.task_slots_per_node for s in snaps)
                parts.append(
                    f'<div style="margin-top:6px;font-weight:600">{h.esc(region)} '
                    f'<span style="font-weight:400;color:#495057">— {len(snaps)} pools · {used} / {avail} slots in use</span></div>'
                )
                rows, attrs = [], []
                for s in snaps:
                    rows.append(self._row_html(s, scale, now))
                    attrs.append(f'data-pool="{h.esc(s.facts.pool_id)}"')
                parts.append(h.table(COLUMNS, rows, attrs=attrs, widths=WIDTHS))
        return "".join(parts)

    @staticmethod
    def _row_html(s: PoolSnapshot, scale: float, now: float) -> list[str]:
        f = s.facts
        d, lp = s.dedicated, s.low_priority
        bar = h.stacked_bar(
            [
                ("dedicated_idle", d.idle),
                ("dedicated_running", d.running),
                ("dedicated_other", d.other),
                ("low_priority_idle", lp.idle),
                ("low_priority_running", lp.running),
                ("low_priority_other", lp.other),
            ],
            scale,
        )
        counts = f'<span style="font-size:11px;color:#495057"> {d.total} | {lp.total}</span>'
        slots = f.task_slots_per_node
        used = (d.running + lp.running) * slots
        avail = s.total_slots
        if s.active_tasks is None:
            backlog = "?"
        else:
            ratio = f" ({s.active_tasks / avail:.2f})" if avail else ""
            backlog = f"{s.active_tasks}{ratio}"
        flags = [s.allocation_state]
        if f.autoscale:
            flags.append("autoscale")
        if s.blackout_until and s.blackout_until > now:
            flags.append(f"blackout {s.blackout_until - now:.0f}s")
        if s.state != "active":
            flags.append(s.state)
        return [
            f"<b>{h.esc(f.pool_id)}</b>",
            h.esc(f.account or ""),
            h.esc(f"{f.vm_size} ×{slots}"),
            bar + counts,
            h.meter(used, avail),
            h.esc(backlog),
            h.esc(", ".join(flags)),
        ]

    def _render_text(self) -> str:
        lines = [self._summary()]
        for region, snaps in self._groups().items():
            lines.append(f"[{region}]")
            rows = []
            for s in snaps:
                d, lp = s.dedicated, s.low_priority
                slots = s.facts.task_slots_per_node
                rows.append(
                    [
                        s.facts.pool_id,
                        s.facts.account,
                        s.facts.vm_size,
                        f"{d.idle}/{d.running}/{d.other}",
                        f"{lp.idle}/{lp.running}/{lp.other}",
                        f"{(d.running + lp.running) * slots}/{s.total_slots}",
                        "?" if s.active_tasks is None else s.active_tasks,
                        s.allocation_state,
                    ]
                )
            table = h.text_table(
                ["pool", "account", "vm size", "ded i/r/o", "lowpri i/r/o", "slots used/avail", "backlog", "state"], rows
            )
            lines.extend("  " + line for line in table.splitlines())
        lines.append(self.status_text())
        return "\n".join(lines)

    # -- widget --------------------------------------------------------------------------------
    def _build(self) -> Any:
        import ipywidgets as w

        self._picker = w.Dropdown(
            description="federation", options=self._federations or [], value=None, layout=w.Layout(width="260px")
        )
        if self.federation_id in (self._picker.options or ()):
            self._picker.value = self.federation_id
        self._toggle = w.ToggleButton(
            value=False,
            description="Pause",
            icon="pause",
            tooltip="pause / resume the live refresh",
            layout=w.Layout(width="100px"),
        )
        self._every = w.BoundedFloatText(
            value=self.interval, min=0.2, max=3600, step=0.5, description="every (s)", layout=w.Layout(width="160px")
        )
        self._body = w.HTML()
        self._status = w.HTML()
        self._picker.observe(self._on_pick, names="value")
        self._toggle.observe(self._on_toggle, names="value")
        self._every.observe(self._on_every, names="value")
        box = w.VBox([w.HBox([self._picker, self._toggle, self._every]), self._body, self._status])
        box.add_class("batchfed-pool-capacity-widget")
        return box

    def _update(self) -> None:
        self._sync.on = True  # trait changes made here are not user input: observers ignore them
        try:
            opts = tuple(self._federations)
            if tuple(self._picker.options) != opts:
                self._picker.options = opts
            want = self.federation_id if self.federation_id in opts else None
            if self._picker.value != want:
                self._picker.value = want
            body = self._render_body()
            if body != self._last_html:  # an unchanged table costs no message to the frontend
                self._body.value = body
                self._last_html = body
            self._status.value = self._status_html()
            stopped = not self.running
            if self._toggle.value != stopped:
                self._toggle.value = stopped
            self._toggle.description = "Resume" if stopped else "Pause"
            self._toggle.icon = "play" if stopped else "pause"
        finally:
            self._sync.on = False

    def _syncing(self) -> bool:
        return getattr(self._sync, "on", False)

    def _on_pick(self, change: dict[str, Any]) -> None:
        if not self._syncing() and change["new"] and change["new"] != self.federation_id:
            self.federation_id = change["new"]

    def _on_toggle(self, change: dict[str, Any]) -> None:
        if self._syncing():
            return
        if change["new"]:
            self.pause()
        else:
            self.resume()

    def _on_every(self, change: dict[str, Any]) -> None:
        if not self._syncing() and change["new"] and change["new"] > 0:
            self.interval = float(change["new"])
