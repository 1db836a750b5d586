"""matplotlib figures for notebooks and reports. Each function takes a DataFrame the
library produces and returns a :class:`matplotlib.figure.Figure` (closed in pyplot, so a
notebook shows it once, as the cell's value, and scripts can ``fig.savefig(...)``).

- :func:`capacity_over_time` — samples from ``PoolCapacity.samples()`` or ``CapacitySampler.frame()``;
- :func:`placements` — ``Submission.status()`` / ``SubmissionView.frame()`` or ``%fed jobs`` (locations);
- :func:`latency_histogram` — submit → placed latency from the same placement frames.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

__all__ = ["capacity_over_time", "latency_histogram", "placements"]

METRICS = {
    "slots_available": "available slots",
    "slots_in_use": "slots in use",
    "active_tasks": "backlog (active tasks)",
}


def _figure(nrows: int = 1, ncols: int = 1, **kwargs):  # -> tuple[Figure, Any]
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(nrows, ncols, **kwargs)
    plt.close(fig)  # not a pyplot "current figure": shown once, as the returned value
    return fig, axes


def _need(df: pd.DataFrame, columns: list[str], what: str) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ValueError(f"{what} needs the columns {', '.join(missing)} (got {', '.join(map(str, df.columns))})")


def capacity_over_time(
    samples: pd.DataFrame,
    metrics: tuple[str, ...] = ("slots_available", "slots_in_use", "active_tasks"),
    *,
    title: str | None = None,
) -> Figure:
    """Per region, the sum over its pools of each metric at every sample time: one panel per
    metric, one line per region."""
    _need(samples, ["time", "location", *metrics], "capacity_over_time")
    fig, axes = _figure(len(metrics), 1, figsize=(8, 2.2 * len(metrics) + 0.6), sharex=True, squeeze=False)
    if len(samples) == 0:
        axes[0][0].text(0.5, 0.5, "no samples yet", ha="center", va="center", transform=axes[0][0].transAxes)
    data = samples.copy()
    for m in metrics:
        data[m] = data[m].astype("float64")  # nullable Int64 → NaN for missing counts
    per_region = data.groupby(["time", "location"], observed=True)[list(metrics)].sum(min_count=1).reset_index()
    for ax, metric in zip((a[0] for a in axes), metrics):
        for region, part in per_region.groupby("location", observed=True):
            ax.step(part["time"], part[metric], where="post", marker="o", markersize=3, label=str(region))
        ax.set_ylabel(METRICS.get(metric, metric))
        ax.set_ylim(bottom=0)
        ax.yaxis.get_major_locator().set_params(integer=True)
        ax.grid(alpha=0.3)
    if len(per_region):
        axes[0][0].legend(title="region", fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    import matplotlib.dates as mdates

    axes[-1][0].xaxis.set_major_formatter(mdates.DateFormatter("%H:%M:%S"))
    axes[-1][0].set_xlabel("time (UTC)")
    fig.suptitle(title or "capacity over time, per region")
    fig.autofmt_xdate()
    fig.tight_layout()
    return fig


def placements(frame: pd.DataFrame, *, title: str | None = None) -> Figure:
    """Placed task groups per pool (bars coloured by region) and per region. Takes a
    placement frame (rows without a pool — queued, blocked — are left out) or a locations
    frame (``%fed jobs``)."""
    _need(frame, ["pool_id", "location"], "placements")
    placed = frame[frame["pool_id"].notna()]
    if "state" in placed.columns:
        placed = placed[placed["state"].astype(str).isin(["placed", "done"])]
    fig, (ax_pool, ax_region) = _figure(1, 2, figsize=(10, 3.4), gridspec_kw={"width_ratios": [3, 1.4]})
    if len(placed) == 0:
        for ax in (ax_pool, ax_region):
            ax.text(0.5, 0.5, "nothing placed", ha="center", va="center", transform=ax.transAxes)
    else:
        by_pool = placed.groupby(["location", "pool_id"], observed=True).size().reset_index(name="n")
        regions = sorted(by_pool["location"].astype(str).unique())
        import matplotlib

        cmap = matplotlib.colormaps["tab10"]
        color = {r: cmap(i % 10) for i, r in enumerate(regions)}
        ax_pool.bar(by_pool["pool_id"].astype(str), by_pool["n"], color=[color[str(r)] for r in by_pool["location"]])
        ax_pool.set_ylabel("task groups placed")
        ax_pool.tick_params(axis="x", rotation=30)
        for lbl in ax_pool.get_xticklabels():
            lbl.set_horizontalalignment("right")
        by_region = placed.groupby("location", observed=True).size()
        ax_region.bar([str(r) for r in by_region.index], by_region.values, color=[color[str(r)] for r in by_region.index])
        ax_region.set_ylabel("task groups placed")
        ax_region.tick_params(axis="x", rotation=30)
        from matplotlib.patches import Patch

        ax_pool.legend(handles=[Patch(color=color[r], label=r) for r in regions], title="region", fontsize=8)
    ax_pool.set_title("per pool")
    ax_region.set_title("per region")
    for ax in (ax_pool, ax_region):
        ax.yaxis.get_major_locator().set_params(integer=True)
        ax.grid(axis="y", alpha=0.3)
    fig.suptitle(title or "placements")
    fig.tight_layout()
    return fig


def latency_histogram(frame: pd.DataFrame, *, bins: int = 20, title: str | None = None) -> Figure:
    """Histogram of submit → placed latency (``latency_s`` of a placement frame), with the
    median and 95th percentile marked."""
    _need(frame, ["latency_s"], "latency_histogram")
    lat = frame["latency_s"].astype("float64").dropna()
    fig, ax = _figure(figsize=(6, 3.2))
    if len(lat) == 0:
        ax.text(0.5, 0.5, "nothing placed yet", ha="center", va="center", transform=ax.transAxes)
    else:
        ax.hist(lat, bins=min(bins, max(1, len(lat))), color="#1864ab", alpha=0.8)
        for q, style in ((0.5, "-"), (0.95, "--")):
            v = float(lat.quantile(q))
            ax.axvline(v, color="#c92a2a", linestyle=style, label=f"p{int(q * 100)} = {v:.2f} s")
        ax.legend(fontsize=8)
    ax.set_xlabel("submit → placed latency (s)")
    ax.set_ylabel("actions")
    ax.grid(alpha=0.3)
    ax.set_title(title or f"placement latency ({len(lat)} actions)")
    fig.tight_layout()
    return fig
