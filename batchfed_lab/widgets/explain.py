"""``ExplainView``: a dry run as a grid of pools × constraints, per job.

Each pool row says whether the pool is chosen, eligible, excluded by a hard constraint or
skipped by the load filter; the column of the constraint it fails holds the required and
the actual value (``needs eastus / is westeurope``). The scheduler stops at a pool's first
failing constraint (SPEC §4.5), so an excluded pool's other columns read "·" (not
checked) — a ✓ there would claim more than is known.
"""

from __future__ import annotations

from collections.abc import Sequence
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

from . import _html as h
from ._live import LiveView, _plain

if TYPE_CHECKING:
    import pandas as pd

    from ..client import Client
    from ..results import Explanation

__all__ = ["ExplainView"]

SYMBOL = {"chosen": "✔ chosen", "eligible": "✓ eligible", "excluded": "✗ excluded", "skipped": "⏸ skipped"}


def _frame(source: Any) -> pd.DataFrame:
    import pandas as pd

    if isinstance(source, pd.DataFrame):
        return source
    explanations = list(source)
    if not explanations:
        raise ValueError("nothing to explain: no explanations given")
    frames = [e.frame() for e in explanations]
    return pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]


class ExplainView(LiveView):
    """The verdicts of a dry run: ``ExplainView(%fed explain … -o plan)`` (a verdicts
    DataFrame) or ``ExplainView(client.explain(fed, jobs))`` (Explanation objects), or
    :meth:`run`. Static: it never starts a thread; :meth:`refresh` re-runs the dry run
    when it was made with :meth:`run`."""

    kind = "explain"
    live = False

    def __init__(self, verdicts: pd.DataFrame | Sequence[Explanation], *, headline: dict[str, str] | None = None):
        super().__init__(autostart=False)
        self._source: tuple[Client, str, Any, dict[str, Any]] | None = None
        self._set(verdicts, headline)
        self._ticks = 1  # built from data: nothing to fetch before the first display

    @classmethod
    def run(cls, client: Client, federation_id: str, jobs: Any, **kwargs: Any) -> ExplainView:
        """Dry-run ``jobs`` (path, YAML text, dict) on the federation and show the verdicts."""
        view = cls(client.explain(federation_id, jobs, **kwargs))
        view._source = (client, federation_id, jobs, kwargs)
        return view

    def _set(self, verdicts: Any, headline: dict[str, str] | None) -> None:
        explanations = None if hasattr(verdicts, "columns") else list(verdicts)
        self._df = _frame(verdicts if explanations is None else explanations)
        self._headline = dict(headline or {})
        for e in explanations or ():
            self._headline.setdefault(e.job_id, f"→ {e.pool_id}" if e.pool_id else f"would block: {e.decision.reason}")
        self._model = self._df

    def _fetch(self) -> Any:
        if self._source is not None:
            client, fed, jobs, kwargs = self._source
            self._set(client.explain(fed, jobs, **kwargs), None)
        return self._df

    # -- model ---------------------------------------------------------------------------
    def frame(self) -> pd.DataFrame:
        """The verdicts (the columns of :func:`batchfed_lab.frames.verdicts_frame`)."""
        return self._df.copy()

    @property
    def jobs(self) -> list[str]:
        return list(dict.fromkeys(self._df["job_id"]))

    def chosen(self) -> dict[str, str | None]:
        """Job id → the pool that would be chosen now (None: the action would block)."""
        out: dict[str, str | None] = dict.fromkeys(self.jobs)
        for j in self.jobs:
            for r in self._job_rows(j):
                if r.status == "chosen":
                    out[j] = r.pool_id
        return out

    def _job_rows(self, job_id: str) -> list[SimpleNamespace]:
        """The job's verdicts with plain values (None for NA/NaN), by region then pool."""
        df = self._df[self._df["job_id"] == job_id]
        rows = [SimpleNamespace(**{k: _plain(v) for k, v in rec.items()}) for rec in df.to_dict("records")]
        return sorted(rows, key=lambda r: (r.location or "", r.pool_id or ""))

    @staticmethod
    def _constraints(rows: Sequence[Any]) -> list[str]:
        return sorted({r.constraint for r in rows if r.constraint})

    def _headline_for(self, job_id: str) -> str:
        if job_id in self._headline:
            return self._headline[job_id]
        pool = self.chosen().get(job_id)
        return f"→ {pool}" if pool else "would block: no pool is eligible now"

    @staticmethod
    def _cost(r: Any) -> str:
        """The job's estimated cost on the pool and the node price (an estimate; '' unknown)."""
        est, rate = getattr(r, "est_cost", None), getattr(r, "price_per_hour", None)
        return "" if est is None or rate is None else f"~${est:,.2f} (${rate:,.2f}/h)"

    # -- rendering -------------------------------------------------------------------------
    def _job_html(self, job_id: str) -> str:
        rows = self._job_rows(job_id)
        cons = self._constraints(rows)
        cells = []
        for r in rows:
            status = str(r.status)
            row = [
                f"<b>{h.esc(r.pool_id)}</b>",
                h.esc(r.location or ""),
                h.badge(SYMBOL.get(status, status), h.STATE_COLORS.get(status)),
                h.esc(self._cost(r)),
            ]
            for c in cons:
                if r.constraint == c:
                    color = "#c92a2a" if status == "excluded" else "#e67700"
                    row.append(
                        f'<span style="color:{color}" title="{h.esc(r.verdict or "")}">✗ needs {h.esc(r.required or "?")} / '
                        f"has {h.esc(r.actual or '?')}</span>"
                    )
                elif status in ("chosen", "eligible"):
                    row.append('<span style="color:#2b8a3e">✓</span>')
                else:
                    row.append('<span style="color:#adb5bd" title="not checked: the pool failed an earlier check">·</span>')
            cells.append(row)
        head = f'<div style="margin-top:6px"><b>{h.esc(job_id)}</b> {h.esc(self._headline_for(job_id))}</div>'
        return head + h.table(["pool", "region", "verdict", "est. cost", *cons], cells)

    def _render_html(self) -> str:
        body = "".join(self._job_html(j) for j in self.jobs) or "<i>the federation has no pools</i>"
        return f'<div class="batchfed-explain">{body}</div>'

    def _render_text(self) -> str:
        out = []
        for j in self.jobs:
            out.append(f"{j} {self._headline_for(j)}")
            rows = [
                [r.pool_id, r.location or "", r.status, self._cost(r), r.constraint or "", r.required or "", r.actual or ""]
                for r in self._job_rows(j)
            ]
            out.extend(
                "  " + line
                for line in h.text_table(
                    ["pool", "region", "status", "est. cost", "constraint", "required", "actual"], rows
                ).splitlines()
            )
        return "\n".join(out)

    def status_text(self) -> str:
        n = len(self.jobs)
        placed = sum(1 for p in self.chosen().values() if p)
        return f"{n} jobs explained: {placed} would be placed now, {n - placed} would block"

    # -- widget --------------------------------------------------------------------------------
    def _build(self) -> Any:
        import ipywidgets as w

        # many jobs: one grid at a time (the dropdown) rather than a page of grids
        first = self.jobs[0] if len(self.jobs) > 3 else "(all jobs)"
        self._pick = w.Dropdown(description="job", options=["(all jobs)", *self.jobs], value=first)
        self._grid = w.HTML()
        self._foot = w.HTML()
        self._pick.observe(lambda _change: self._update(), names="value")
        children = [self._grid, self._foot] if len(self.jobs) <= 1 else [self._pick, self._grid, self._foot]
        box = w.VBox(children)
        box.add_class("batchfed-explain-widget")
        return box

    def _update(self) -> None:
        opts = ["(all jobs)", *self.jobs]
        if list(self._pick.options) != opts:
            self._pick.options = opts
        pick = self._pick.value
        self._grid.value = self._job_html(pick) if pick in self.jobs else self._render_html()
        self._foot.value = f'<div style="font-size:11px;color:#868e96">{h.esc(self.status_text())}</div>'
