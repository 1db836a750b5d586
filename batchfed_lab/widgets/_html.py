"""Small HTML helpers shared by the views. Inline styles only: JupyterLab, nbviewer and
GitHub drop ``<style>`` blocks from untrusted output but keep simple inline styles."""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence
from typing import Any

esc = html.escape

# one palette for bars and legends (colour-blind friendly pairs: solid = dedicated, light = low-priority)
COLORS = {
    "dedicated_idle": "#2b8a3e",
    "dedicated_running": "#1864ab",
    "dedicated_other": "#868e96",
    "low_priority_idle": "#8ce99a",
    "low_priority_running": "#a5d8ff",
    "low_priority_other": "#dee2e6",
}
LABELS = {
    "dedicated_idle": "dedicated idle",
    "dedicated_running": "dedicated running",
    "dedicated_other": "dedicated other",
    "low_priority_idle": "low-priority idle",
    "low_priority_running": "low-priority running",
    "low_priority_other": "low-priority other",
}
STATE_COLORS = {
    "queued": "#868e96",
    "blocked": "#e67700",
    "placed": "#2b8a3e",
    "done": "#2b8a3e",
    "failed": "#c92a2a",
    "zapped": "#862e9c",
    "chosen": "#2b8a3e",
    "eligible": "#2f9e44",
    "excluded": "#c92a2a",
    "skipped": "#e67700",
}

TABLE = "border-collapse:collapse;font-size:12px;margin:2px 0 8px 0"
TH = "text-align:left;padding:2px 8px;border-bottom:1px solid #ced4da;font-weight:600"
TD = "text-align:left;padding:2px 8px;border-bottom:1px solid #f1f3f5;vertical-align:middle"


def badge(text: str, color: str | None = None) -> str:
    c = color or STATE_COLORS.get(text, "#495057")
    return f'<span style="color:#fff;background:{c};border-radius:3px;padding:0 5px;font-size:11px">{esc(text)}</span>'


def stacked_bar(parts: Sequence[tuple[str, int]], scale: float, height: int = 12) -> str:
    """Adjacent blocks, ``scale`` pixels per unit; each block's title names its part."""
    spans = []
    for key, n in parts:
        if n <= 0:
            continue
        w = max(2, round(n * scale))
        spans.append(
            f'<span title="{esc(LABELS.get(key, key))}: {n}" style="display:inline-block;width:{w}px;'
            f'height:{height}px;background:{COLORS.get(key, "#adb5bd")};margin-right:1px"></span>'
        )
    if not spans:
        return '<span style="color:#868e96">no nodes</span>'
    return f'<span style="white-space:nowrap;line-height:{height}px">{"".join(spans)}</span>'


def meter(used: int, total: int, width: int = 90) -> str:
    """A used / total bar with the numbers next to it."""
    frac = 0.0 if total <= 0 else min(1.0, used / total)
    fill = round(frac * width)
    return (
        f'<span style="display:inline-block;width:{width}px;height:10px;background:#e9ecef;vertical-align:middle">'
        f'<span style="display:inline-block;width:{fill}px;height:10px;background:#1864ab"></span></span>'
        f' <span style="font-variant-numeric:tabular-nums">{used} / {total}</span>'
    )


def legend(keys: Iterable[str]) -> str:
    items = [
        f'<span style="margin-right:10px;white-space:nowrap"><span style="display:inline-block;width:10px;height:10px;'
        f'background:{COLORS[k]};margin-right:3px"></span>{esc(LABELS[k])}</span>'
        for k in keys
    ]
    return f'<div style="font-size:11px;color:#495057;margin:2px 0">{"".join(items)}</div>'


def table(
    headers: Sequence[str], rows: Iterable[Sequence[Any]], *, attrs: Iterable[str] = (), widths: Sequence[int] | None = None
) -> str:
    """``rows`` hold ready HTML cells; ``attrs`` optional extra attributes per row; ``widths``
    (px per column) line up several tables one under the other."""
    if widths:
        head = "".join(f'<th style="{TH};width:{w}px">{esc(h)}</th>' for h, w in zip(headers, widths))
        style = f"{TABLE};table-layout:fixed;width:{sum(widths)}px"
    else:
        head = "".join(f'<th style="{TH}">{esc(h)}</th>' for h in headers)
        style = TABLE
    body = []
    attr_list = list(attrs)
    for i, row in enumerate(rows):
        extra = f" {attr_list[i]}" if i < len(attr_list) else ""
        body.append(f"<tr{extra}>" + "".join(f'<td style="{TD}">{c}</td>' for c in row) + "</tr>")
    return f'<table style="{style}"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'


def text_table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """A fixed-width plain-text table (the text/plain fallback)."""
    data = [[str(h) for h in headers]] + [["" if c is None else str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in data) for i in range(len(headers))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in data]
    return "\n".join(lines)
