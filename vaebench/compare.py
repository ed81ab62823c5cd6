"""Comparing two result sets: which metrics moved, measured in standard errors.

Rows pair by protocol identity (vaebench.runner.identity: suite, version, budget, dataset,
cell and the hash of the config without its seed), so a run with other overrides never pairs
with the default one. For each metric of a pair, with A the baseline:

    d = mean_B - mean_A
    se_d = the paired standard error of vaebench.leaderboard.significance where both rows
           have per-example values on the same test points and seeds (the common test
           examples' difficulty cancels), else sqrt(se_A^2 + se_B^2) from the rows' se
    z = d / se_d

and the metric moved when |z| > threshold (2 by default: about a 5% two-sided false alarm
rate per metric for normal errors). A metric without an error estimate on either side (a
timing or a count measured once) is never called moved: it is listed as "no error estimate".
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Literal

import pandas as pd

from .leaderboard.rows import Row, collect_rows
from .leaderboard.significance import difference
from .results import usable_records

__all__ = ["Change", "compare", "render"]

Status = Literal["moved", "same", "no error estimate"]


@dataclass
class Change:
    """One metric of one protocol row in both sets; se None: no error estimate on that side."""

    suite: str
    budget: str
    dataset: str
    cell: str
    metric: str
    a_mean: float
    a_se: float | None
    b_mean: float
    b_se: float | None
    diff: float
    se: float | None  # of the difference; None: no error estimate
    z: float | None
    paired: bool
    status: Status

    @property
    def moved(self) -> bool:
        return self.status == "moved"


def _mean_se(row: Row, metric: str) -> tuple[float, float | None]:
    ms = list(row.metric(metric).values())
    mean = math.fsum(m.mean for m in ms) / len(ms)
    if len(ms) >= 2:
        return mean, math.sqrt(math.fsum((m.mean - mean) ** 2 for m in ms) / (len(ms) - 1) / len(ms))
    se = ms[0].se
    return mean, se if se is not None and math.isfinite(se) else None


def compare(
    a: str | os.PathLike[str],
    b: str | os.PathLike[str],
    *,
    suite: str | None = None,
    threshold: float = 2.0,
    strict: bool = False,
) -> list[Change]:
    """Metrics of the protocols both sets share, baseline `a` vs candidate `b` (moved ones first).

    Damaged or foreign record files are reported and skipped (`strict`: a RecordError listing them).
    """
    if threshold <= 0:
        raise ValueError(f"threshold must be > 0 standard errors, got {threshold}")
    rows_a = {r.protocol: r for r in collect_rows(usable_records(a, suite, strict=strict))}
    rows_b = {r.protocol: r for r in collect_rows(usable_records(b, suite, strict=strict))}
    shared = [p for p in rows_a if p in rows_b]
    if not shared:
        labels_a = sorted({p.label for p in rows_a})[:5]
        labels_b = sorted({p.label for p in rows_b})[:5]
        raise ValueError(
            f"no protocol in common between {a} and {b}"
            + (f" for suite '{suite}'" if suite else "")
            + f" (A has {labels_a}, B has {labels_b}): rows pair only when suite, version, budget, dataset, "
            "cell and the config without the seed are equal; compare runs of the same suite, budget and overrides"
        )
    out = []
    for p in shared:
        ra, rb = rows_a[p], rows_b[p]
        for metric in sorted(set(ra.metric_names()) & set(rb.metric_names())):
            ma, sa = _mean_se(ra, metric)
            mb, sb = _mean_se(rb, metric)
            d = mb - ma
            paired = False
            se: float | None = None
            diff = difference(rb, ra, metric) if set(ra.runs) == set(rb.runs) else None
            if diff is not None and diff.paired and diff.se is not None:
                se, paired = diff.se, True
            elif sa is not None and sb is not None:
                se = math.hypot(sa, sb)
            status: Status
            if se is None:
                z, status = None, "no error estimate"
            elif se == 0:
                z, status = None, "same" if d == 0 else "moved"
            else:
                z = d / se
                status = "moved" if abs(z) > threshold else "same"
            out.append(Change(p.suite, p.budget, p.dataset, p.label, metric, ma, sa, mb, sb, d, se, z, paired, status))
    order = {"moved": 0, "same": 1, "no error estimate": 2}
    out.sort(key=lambda c: (order[c.status], -(abs(c.z) if c.z is not None else 0.0), c.suite, c.cell, c.metric))
    return out


def _pm(mean: float, se: float | None) -> str:
    return f"{mean:.4g} ± {se:.2g}" if se is not None else f"{mean:.4g}"


def render(changes: list[Change], a: object, b: object, *, threshold: float = 2.0, only_moved: bool = True) -> str:
    """A Markdown table of the changes (only the moved ones unless `only_moved=False`)."""
    moved = [c for c in changes if c.moved]
    unknown = [c for c in changes if c.status == "no error estimate"]
    shown = moved if only_moved else changes
    head = (
        f"A = {a}\nB = {b}\n{len(moved)} of {len(changes) - len(unknown)} shared metrics with an error estimate "
        f"moved (|B - A| > {threshold:g} standard errors); {len(unknown)} without an error estimate (timings, "
        "counts, single measurements)" + (", shown with --all" if only_moved and unknown else "")
    )
    if not shown:
        return head
    rows = [
        {
            "suite": c.suite,
            "row": c.cell,
            "metric": c.metric,
            "A": _pm(c.a_mean, c.a_se),
            "B": _pm(c.b_mean, c.b_se),
            "B - A": f"{c.diff:+.4g}" + (f" ± {c.se:.2g}" if c.se is not None else ""),
            "z": "no error estimate" if c.z is None and c.se is None else ("" if c.z is None else f"{c.z:+.1f}"),
            "pairing": "paired" if c.paired else ("unpaired" if c.se is not None else ""),
            "status": c.status,
        }
        for c in shown
    ]
    return head + "\n\n" + pd.DataFrame(rows).to_markdown(index=False)
