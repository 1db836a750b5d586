"""``ShareView``: the fair share of a federation's users (``%fed share`` as a live view)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from . import _html as h
from ._live import LiveView, _plain

if TYPE_CHECKING:
    import pandas as pd

    from ..client import Client

HEADERS = [
    "user",
    "group",
    "shares",
    "usage (core-h)",
    "fair share",
    "queued",
    "blocked",
    "placed",
    "held cores",
    "spent / budget",
]


def _num(x: Any, fmt: str = "{:.3g}") -> str:
    return "" if x is None else fmt.format(x)


class ShareView(LiveView):
    """``ShareView(client, "fed")``: users with their shares, decayed usage, fair-share factor
    (a bar: 1 unserved, 0.5 at their share), queued and running work and this month's spend;
    refreshes every ``interval`` seconds in a live frontend, static under papermill."""

    kind = "share"

    def __init__(self, client: Client, federation_id: str, *, interval: float = 5.0, autostart: bool = True):
        super().__init__(interval=interval, autostart=autostart)
        self.client = client
        self.federation_id = federation_id

    def _fetch(self) -> Any:
        return self.client.share_frame(self.federation_id)

    def frame(self) -> pd.DataFrame:
        """The users as of the last refresh (refreshes first if there was none)."""
        if self._model is None:
            self.refresh()
        return self._model.copy()

    def _rows(self) -> list[dict[str, Any]]:
        if self._model is None:
            return []
        return [{k: _plain(v) for k, v in r.items()} for r in self._model.to_dict("records")]

    @staticmethod
    def _spend(r: dict[str, Any]) -> str:
        spent = f"${r['spent']:,.2f}"
        return spent if r["budget"] is None else f"{spent} / ${r['budget']:,.0f}"

    def _summary(self) -> str:
        rows = self._rows()
        return f"fair share in {self.federation_id}: {len(rows)} user(s) · usage and spend are estimates"

    def _render_html(self) -> str:
        cells = [
            [
                f"<b>{h.esc(r['user'])}</b>",
                h.esc(r["group"] or ""),
                h.esc(_num(r["shares"], "{:g}")),
                h.esc(_num(r["usage"])),
                h.meter(round(100 * (r["fair_share"] or 0)), 100),
                h.esc(str(r["queued"])),
                h.esc(str(r["blocked"])),
                h.esc(str(r["placed"])),
                h.esc(_num(r["held_cores"], "{:g}")),
                h.esc(self._spend(r)),
            ]
            for r in self._rows()
        ]
        return (
            f'<div class="batchfed-share"><div style="font-weight:600">{h.esc(self._summary())}</div>'
            f"{h.table(HEADERS, cells)}{self._status_html()}</div>"
        )

    def _render_text(self) -> str:
        rows = [
            [
                r["user"],
                r["group"] or "",
                _num(r["shares"], "{:g}"),
                _num(r["usage"]),
                _num(r["fair_share"], "{:.3f}"),
                r["queued"],
                r["blocked"],
                r["placed"],
                _num(r["held_cores"], "{:g}"),
                self._spend(r),
            ]
            for r in self._rows()
        ]
        return "\n".join([self._summary(), h.text_table(HEADERS, rows), self.status_text()])

    def _build(self) -> Any:
        import ipywidgets as w

        self._html = w.HTML()
        box = w.VBox([self._html])
        box.add_class("batchfed-share-widget")
        return box

    def _update(self) -> None:
        self._html.value = self._render_html()
