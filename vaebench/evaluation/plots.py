"""Matplotlib figures of the evaluation results (generated from results, never edited)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from .gradient_stats import GradientStats, jackknife_se

__all__ = ["plot_gradient_stats"]


def plot_gradient_stats(
    results: Sequence[GradientStats | Mapping[str, Any]],
    *,
    axes: Any = None,
    slopes: Mapping[tuple[str, str], tuple[float, float]] | None = None,
) -> Any:
    """Two log-log panels: gradient variance (mean over parameters) and SNR against K.

    The SNR panel shows the floor-corrected group SNR `snr_norm` where the rows have it (else
    the mean per-parameter SNR), with jackknife standard errors as error bars where the rows
    carry `snr_norm_jackknife`; `slopes` maps (estimator, group) to (log-log slope, its
    standard error), shown in the legend.

    `results` are `GradientStats` or their tidy rows (`to_records()`, e.g. read back from a
    results file), one line per (estimator, group). Returns the matplotlib Figure.

    References:
        Tighter Variational Bounds are Not Necessarily Better, Rainforth et al., 2018,
        arXiv:1802.04537 (figure 2 plots the same quantities).
    """
    import matplotlib.pyplot as plt  # imported here so that evaluation does not need a display

    rows: list[Mapping[str, Any]] = []
    for r in results:
        rows.extend(r.to_records() if isinstance(r, GradientStats) else [r])
    if not rows:
        raise ValueError("results is empty: nothing to plot")
    if axes is None:
        fig, axes = plt.subplots(1, 2, figsize=(9, 3.5), constrained_layout=True)
    else:
        fig = axes[0].figure
    lines: dict[tuple[str, str], list[Mapping[str, Any]]] = {}
    for row in rows:
        lines.setdefault((row["estimator"], row["group"]), []).append(row)
    for (est, group), pts in sorted(lines.items()):
        pts = sorted(pts, key=lambda r: r["num_samples"])
        ks = [r["num_samples"] for r in pts]
        axes[0].plot(ks, [r["variance_mean"] for r in pts], marker="o", label=f"{est} {group}")
        has_norm = all(isinstance(r.get("snr_norm"), float) and not math.isnan(r["snr_norm"]) for r in pts)
        key = "snr_norm" if has_norm else "snr_mean"
        label = f"{est} {group}"
        if slopes and (est, group) in slopes:
            s, se = slopes[(est, group)]
            label += f" (slope {s:+.2f} ± {se:.2f})"
        errors = [jackknife_se(r.get("snr_norm_jackknife") or []) for r in pts] if has_norm else []
        if errors and all(e is not None for e in errors):
            axes[1].errorbar(ks, [r[key] for r in pts], yerr=errors, marker="o", capsize=2, label=label)
        else:
            axes[1].plot(ks, [r[key] for r in pts], marker="o", label=label)
    snr_label = (
        "SNR |E g| / std g (floor-corrected, per group)"
        if any("snr_norm" in r for r in rows)
        else ("SNR |E g| / std g (mean over params)")
    )
    for ax, label in zip(axes, ("gradient variance (mean over params)", snr_label), strict=True):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("K (samples per example)")
        ax.set_ylabel(label)
        ax.grid(True, which="both", alpha=0.3)
    axes[1].legend(fontsize="small")
    return fig
