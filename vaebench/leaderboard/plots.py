"""The leaderboard's figures, drawn from the aggregated records only (never from a run folder).

plot_vs_k: one panel per metric named `<name>@K=<k>`, mean ± se against K, one line per row;
log axes for SNR, variance, ESS and standard deviations (they span decades), a linear y for
bias (it changes sign); one legend for every panel, beneath them.
plot_differences: the headline metric's difference from the baseline per row, with its 95% CI.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from .table import Table

__all__ = ["plot_differences", "plot_vs_k"]

_LOG_Y = ("snr", "variance", "ess", "std", "examples_per_s")


def _plt():  # -> matplotlib.pyplot, imported late: the Agg backend first
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_vs_k(agg: pd.DataFrame, path: Path) -> Path | None:
    """agg: rows.aggregate of one block. Returns the PNG written, or None without `@K=` metrics."""
    parsed = agg["metric"].str.extract(r"^(?P<base>.+)@K=(?P<k>\d+)$")
    rows = agg.assign(base=parsed["base"], k=pd.to_numeric(parsed["k"])).dropna(subset=["base"])
    if rows.empty:
        return None
    plt = _plt()
    bases = sorted(set(rows["base"]))
    ncol = min(3, len(bases))
    nrow = -(-len(bases) // ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(4.2 * ncol, 3.3 * nrow), squeeze=False)
    handles: dict[str, object] = {}
    # strict=False: the last grid row can have spare axes, which stay empty.
    for ax, base in zip(axes.flat, bases, strict=False):
        part = rows[rows["base"] == base]
        log_y = any(s in base for s in _LOG_Y) and bool((part["mean"] > 0).all())
        for label, line in part.groupby("label", sort=True):
            line = line.sort_values("k")
            se = line["se"].fillna(0.0)
            h = ax.errorbar(line["k"], line["mean"], yerr=se, marker="o", ms=4, capsize=2, label=str(label))
            handles.setdefault(str(label), h)
        ax.set_xscale("log")
        if log_y:
            ax.set_yscale("log")
        else:
            ax.axhline(0.0, color="0.6", lw=0.8)
        ax.set_xlabel("K (samples)")
        ax.set_title(base + (" (log)" if log_y else ""), fontsize=10)
        ax.grid(alpha=0.3, which="both")
    for ax in list(axes.flat)[len(bases) :]:
        ax.set_visible(False)
    fig.legend(
        list(handles.values()), list(handles), loc="lower center", ncol=min(6, len(handles)), fontsize=8, frameon=False
    )
    fig.tight_layout(rect=(0, 0.06 + 0.02 * (len(handles) // 6), 1, 1))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plot_differences(t: Table, path: Path) -> Path | None:
    """Forest plot of the table's Δ column; None when no row has a difference with an interval."""
    pts: list[tuple[str, float, float, float]] = []
    for r, k in zip(t.raw, t.kinds, strict=True):
        d, lo, hi = r.get("diff"), r.get("diff low"), r.get("diff high")
        if k == "run" and isinstance(d, (int, float)) and isinstance(lo, (int, float)) and isinstance(hi, (int, float)):
            pts.append((str(r["row"]), d, lo, hi))
    if not pts:
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 0.35 * len(pts) + 1.2))
    ys = list(range(len(pts)))[::-1]
    for y, (_label, d, lo, hi) in zip(ys, pts, strict=True):
        ax.errorbar([d], [y], xerr=[[d - lo], [hi - d]], fmt="o", color="C0" if lo > 0 or hi < 0 else "C7", capsize=3)
    ax.axvline(0.0, color="C3", lw=1)
    ax.set_yticks(ys, [p[0] for p in pts], fontsize=8)
    ax.set_xlabel(f"{t.headline} minus {t.baseline} (95% CI)")
    ax.grid(alpha=0.3, axis="x")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
