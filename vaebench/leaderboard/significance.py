"""Paired differences between two rows of a leaderboard, with a 95% confidence interval.

For a metric x of row A and y of row B (e.g. the baseline), over the S seeds both have and the
N test examples, d_{s,n} = x_{s,n} - y_{s,n}, D_s = (1/N) sum_n d_{s,n}, D = (1/S) sum_s D_s.

Paired, test points shared by every seed (equal test_points sha256, the binarized datasets):
    v_seed = Var_s(D_s) / S              training randomness (0 when S = 1)
    v_ex   = Var_n(dbar_n) / N,  dbar_n = (1/S) sum_s d_{s,n}   the test sample, common to all seeds
    se^2   = v_seed + v_ex
Paired, test points drawn per seed (linear_gaussian): Var_s(D_s) already holds the test
sample's error, so se^2 = Var_s(D_s) / S (S >= 2), or Var_n(d_{1,n}) / N for one seed.
Unpaired (records without per-example values): D_s = mean_x,s - mean_y,s, and v_ex is
(1/S) sum_s (se_x,s^2 + se_y,s^2) -- the independent-samples error, which for a shared test
set overstates the error of a difference (the examples' common difficulty cancels in d).
Var is the sample variance (ddof 1). The interval is D +- t_{0.975, df} se, with df by
Welch-Satterthwaite: df = se^4 / (v_seed^2 / (S - 1) + v_ex^2 / (N - 1)), terms with zero
variance left out.

Marks: the best row has the lowest mean (the highest for metrics where larger is better, the
one nearest 0 for a bias: rows.better); a row is "not significantly different" from it when the interval of
its difference from the best row contains 0.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from scipy import stats

from ..results import Metric
from .rows import Row, better

__all__ = ["Difference", "difference", "marks", "paired_difference", "unpaired_difference"]

LEVEL = 0.95


@dataclass
class Difference:
    """D = A - B with its standard error and 95% interval; se None: no error estimate."""

    diff: float
    se: float | None
    low: float | None
    high: float | None
    df: float | None
    paired: bool
    seeds: int
    examples: int | None

    @property
    def significant(self) -> bool | None:
        """Whether the interval excludes 0 (None without an error estimate)."""
        if self.low is None or self.high is None:
            return None
        return not (self.low <= 0.0 <= self.high)


def _var(xs: Sequence[float]) -> float:
    n = len(xs)
    if n < 2:
        return 0.0
    m = math.fsum(xs) / n
    return math.fsum((x - m) ** 2 for x in xs) / (n - 1)


def _interval(
    diff: float, parts: Sequence[tuple[float, int]], paired: bool, seeds: int, examples: int | None
) -> Difference:
    """parts: (variance component, its sample size) pairs summed into se^2."""
    se2 = math.fsum(v for v, _ in parts)
    if not parts or not math.isfinite(se2):
        return Difference(diff, None, None, None, None, paired, seeds, examples)
    if se2 == 0.0:  # every paired difference equal: the difference is exact
        return Difference(diff, 0.0, diff, diff, math.inf, paired, seeds, examples)
    denom = math.fsum(v * v / (k - 1) for v, k in parts if v > 0 and k > 1)
    df = se2 * se2 / denom if denom > 0 else math.inf
    se = math.sqrt(se2)
    t = float(stats.t.ppf(0.5 + LEVEL / 2, df)) if math.isfinite(df) else float(stats.norm.ppf(0.5 + LEVEL / 2))
    return Difference(diff, se, diff - t * se, diff + t * se, df, paired, seeds, examples)


def paired_difference(
    a: Mapping[int, Sequence[float]], b: Mapping[int, Sequence[float]], *, shared_points: bool
) -> Difference:
    """Paired D over the seeds both have; a, b: seed -> (N,) per-example values in test order."""
    seeds = sorted(set(a) & set(b))
    if not seeds:
        raise ValueError(f"paired_difference needs a common seed, got seeds {sorted(a)} and {sorted(b)}")
    n = len(a[seeds[0]])
    for s in seeds:
        if len(a[s]) != n or len(b[s]) != n:
            raise ValueError(f"seed {s}: per-example values of {len(a[s])} and {len(b[s])} examples, expected {n}")
    d = {s: [x - y for x, y in zip(a[s], b[s], strict=True)] for s in seeds}
    per_seed = [math.fsum(d[s]) / n for s in seeds]
    diff = math.fsum(per_seed) / len(seeds)
    S = len(seeds)
    if shared_points:
        dbar = [math.fsum(d[s][i] for s in seeds) / S for i in range(n)]
        parts = [(_var(per_seed) / S, S), (_var(dbar) / n, n)]
    elif S >= 2:
        parts = [(_var(per_seed) / S, S)]
    else:
        parts = [(_var(d[seeds[0]]) / n, n)]
    return _interval(diff, [(v, k) for v, k in parts if k > 1 or v > 0], True, S, n)


def unpaired_difference(a: Mapping[int, Metric], b: Mapping[int, Metric]) -> Difference:
    """D from per-seed means and their standard errors over examples (no per-example values)."""
    seeds = sorted(set(a) & set(b))
    if not seeds:
        raise ValueError(f"unpaired_difference needs a common seed, got seeds {sorted(a)} and {sorted(b)}")
    S = len(seeds)
    per_seed = [a[s].mean - b[s].mean for s in seeds]
    diff = math.fsum(per_seed) / S
    if any(a[s].se is None or b[s].se is None for s in seeds):
        if S < 2:
            return Difference(diff, None, None, None, None, False, S, None)
        return _interval(diff, [(_var(per_seed) / S, S)], False, S, None)
    n = min(min(a[s].n, b[s].n) for s in seeds)
    # No se is None: returned above.
    v_ex = math.fsum(a[s].se ** 2 + b[s].se ** 2 for s in seeds) / S  # type: ignore[operator]
    return _interval(diff, [(_var(per_seed) / S, S), (v_ex, n)], False, S, n)


def difference(row: Row, base: Row, metric: str) -> Difference | None:
    """row - base on `metric`: paired where both have per-example values on the same points.

    None when the rows share no seed or one lacks the metric.
    """
    seeds = sorted(set(row.metric(metric)) & set(base.metric(metric)))
    if not seeds:
        return None
    ra, rb = [row.runs[s] for s in seeds], [base.runs[s] for s in seeds]
    paired = all(metric in r.per_example and r.test_points.get("sha256") for r in ra + rb) and all(
        x.test_points["sha256"] == y.test_points["sha256"] for x, y in zip(ra, rb, strict=True)
    )
    if paired:
        shared = len({r.test_points["sha256"] for r in ra}) == 1
        return paired_difference(
            {s: row.runs[s].per_example[metric] for s in seeds},
            {s: base.runs[s].per_example[metric] for s in seeds},
            shared_points=shared,
        )
    return unpaired_difference(
        {s: row.runs[s].metrics[metric] for s in seeds}, {s: base.runs[s].metrics[metric] for s in seeds}
    )


def marks(rows: Sequence[Row], metric: str) -> dict[int, str]:
    """index in rows -> "best", "tie" (not significantly different from the best) or "".

    Rows without the metric get "". A difference without an error estimate is not a tie.
    """
    have = [(i, r) for i, r in enumerate(rows) if r.metric(metric)]
    if not have:
        return {}
    way = better(metric)

    def rank(r: Row) -> float:
        ms = r.metric(metric).values()
        mean = math.fsum(m.mean for m in ms) / len(ms)
        return -mean if way == "higher" else abs(mean) if way == "zero" else mean

    best_i, best = min(have, key=lambda ir: rank(ir[1]))
    out = {i: "" for i in range(len(rows))}
    out[best_i] = "best"
    for i, r in have:
        if i == best_i:
            continue
        d = difference(r, best, metric)
        if d is not None and d.significant is False:
            out[i] = "tie"
    return out
