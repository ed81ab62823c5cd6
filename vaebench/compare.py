"""Comparing two result sets: which metrics moved, measured in standard errors.

For each (suite, budget, dataset, cell, metric) present in both sets, with A the baseline:

    d = mean_B - mean_A,   se_d = sqrt(se_A^2 + se_B^2),   z = d / se_d

and the metric moved when |z| > threshold (2 by default: about a 5% two-sided false alarm
rate per metric for normal errors). Without standard errors a metric "moved" when it changed.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

from .leaderboard import aggregate, records_frame
from .results import usable_records

__all__ = ["Change", "compare", "render"]


@dataclass
class Change:
    suite: str
    budget: str
    dataset: str
    cell: str
    metric: str
    a_mean: float
    a_se: float
    b_mean: float
    b_se: float
    diff: float
    z: float | None  # None when neither side has a standard error
    moved: bool


def compare(
    a: str | os.PathLike[str], b: str | os.PathLike[str], *, suite: str | None = None, threshold: float = 2.0,
    strict: bool = False,
) -> list[Change]:
    """Metrics of the runs both sets share, baseline `a` vs candidate `b` (moved ones first).

    Damaged or foreign record files are reported and skipped (`strict`: a RecordError listing them).
    """
    if threshold <= 0:
        raise ValueError(f"threshold must be > 0 standard errors, got {threshold}")
    keys = ["suite", "budget", "dataset", "cell", "metric"]
    fa = aggregate(records_frame(usable_records(a, suite, strict=strict)))
    fb = aggregate(records_frame(usable_records(b, suite, strict=strict)))
    joined = fa.merge(fb, on=keys, suffixes=("_a", "_b"))
    if joined.empty:
        raise ValueError(
            f"no (suite, budget, dataset, cell, metric) in common between {a} and {b}"
            + (f" for suite '{suite}'" if suite else "") + "; compare runs of the same suite and budget"
        )
    out = []
    for row in joined.itertuples(index=False):
        d = row.mean_b - row.mean_a
        sa = row.se_a if math.isfinite(row.se_a) else 0.0
        sb = row.se_b if math.isfinite(row.se_b) else 0.0
        se = math.hypot(sa, sb)
        z = d / se if se > 0 else None
        moved = abs(z) > threshold if z is not None else d != 0
        out.append(Change(row.suite, row.budget, row.dataset, row.cell, row.metric, row.mean_a, row.se_a,
                          row.mean_b, row.se_b, d, z, bool(moved)))
    out.sort(key=lambda c: (not c.moved, -(abs(c.z) if c.z is not None else 0.0), c.suite, c.cell, c.metric))
    return out


def render(changes: list[Change], a: object, b: object, *, threshold: float = 2.0, only_moved: bool = True) -> str:
    """A Markdown table of the changes (only the moved ones unless `only_moved=False`)."""
    import pandas as pd

    moved = [c for c in changes if c.moved]
    shown = moved if only_moved else changes
    head = (f"A = {a}\nB = {b}\n{len(moved)} of {len(changes)} shared metrics moved "
            f"(|B - A| > {threshold:g} standard errors)")
    if not shown:
        return head
    rows = [{
        "suite": c.suite, "cell": c.cell, "metric": c.metric,
        "A": f"{c.a_mean:.4g} ± {c.a_se:.2g}", "B": f"{c.b_mean:.4g} ± {c.b_se:.2g}",
        "B - A": f"{c.diff:+.4g}", "z": "n/a" if c.z is None else f"{c.z:+.1f}",
        "moved": "yes" if c.moved else "no",
    } for c in shown]
    return head + "\n\n" + pd.DataFrame(rows).to_markdown(index=False)
