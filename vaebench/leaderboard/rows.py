"""Rows of a leaderboard: the records of one protocol, one per seed, and their means over seeds.

    mean = (1/S) sum_s m_s,   se = sd_s(m_s) / sqrt(S)   over the S distinct seeds (S >= 2);

with one seed, the run's own standard error over test examples is shown (`se_over` says
which). Two records of the same protocol and seed (two concurrent sweeps can write both)
count once: the newest is kept and the row's `duplicates` says how many were left out.

The NLL's own Monte Carlo error (of the importance-sampling estimate, not of the test sample):
per run mc_se = sqrt(sum_n mc_std_n^2) / N, and over seeds sqrt(sum_s mc_se_s^2) / S.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal, cast

import pandas as pd

from ..results import Metric, RunRecord
from ..runner.identity import Protocol, protocol_of

__all__ = ["Row", "aggregate", "better", "collect_rows", "higher_is_better", "mc_error", "records_frame"]

# Metric names (or parts of them) whose larger values are better, and those best at zero (a
# bias); every other metric is better smaller (nll, kl, time, variance).
_HIGHER = ("elbo", "active_units", "snr", "ess", "speedup", "GBps", "examples_per_s")
_ZERO = ("bias",)


def better(metric: str) -> Literal["higher", "lower", "zero"]:
    """Which values of a metric rank first: bounds, SNR, ESS, speedups higher; a bias nearer 0; the rest lower."""
    if any(metric.startswith(part) for part in _ZERO):
        return "zero"
    return "higher" if any(part in metric for part in _HIGHER) else "lower"


def higher_is_better(metric: str) -> bool:
    """True for bounds, SNR, ESS, speedups and throughputs; False for losses, times, variances, biases."""
    return better(metric) == "higher"


@dataclass
class Row:
    """One protocol's runs: seed -> newest record, and how many duplicate records were dropped."""

    protocol: Protocol
    runs: dict[int, RunRecord] = field(default_factory=dict)
    duplicates: int = 0

    @property
    def seeds(self) -> list[int]:
        return sorted(self.runs)

    def metric_names(self) -> list[str]:
        """Metrics every counted run of the row has."""
        runs = list(self.runs.values())
        return sorted(set.intersection(*(set(r.metrics) for r in runs))) if runs else []

    def metric(self, name: str) -> dict[int, Metric]:
        return {s: r.metrics[name] for s, r in sorted(self.runs.items()) if name in r.metrics}


def collect_rows(records: Iterable[RunRecord]) -> list[Row]:
    """Group records by protocol; of records with the same protocol and seed the newest counts."""
    rows: dict[Protocol, Row] = {}
    for r in sorted(records, key=lambda r: r.created):
        protocol = protocol_of(r)
        row = rows.setdefault(protocol, Row(protocol))
        if r.seed in row.runs:
            row.duplicates += 1
        row.runs[r.seed] = r  # sorted by creation time: the newest wins
    return list(rows.values())


def mc_error(row: Row) -> float | None:
    """Monte Carlo standard error of the row's mean NLL (module docstring), None without it."""
    per_run = []
    for r in row.runs.values():
        values = r.per_example.get("nll_mc_std")
        if values:
            per_run.append(math.sqrt(math.fsum(v * v for v in values)) / len(values))
        elif "nll_mc_std" in r.metrics:
            # schema 1 records keep only the mean and se of mc_std_n: E[mc_std^2] from them
            m = r.metrics["nll_mc_std"]
            second = m.mean**2 + (m.se or 0.0) ** 2 * max(m.n - 1, 0)
            per_run.append(math.sqrt(second / m.n))
        else:
            return None
    return math.sqrt(math.fsum(e * e for e in per_run)) / len(per_run) if per_run else None


def records_frame(records: Iterable[RunRecord] | Sequence[Row]) -> pd.DataFrame:
    """One row per (protocol, seed, metric): the counted records only (duplicates left out)."""
    items = list(records)
    # `records` is all rows or all records (the signature's union), so the first item tells which.
    if items and isinstance(items[0], Row):
        rows = cast("list[Row]", items)
    else:
        rows = collect_rows(cast("list[RunRecord]", items))
    out = []
    for row in rows:
        p = row.protocol
        for seed, r in sorted(row.runs.items()):
            for name, m in r.metrics.items():
                out.append(
                    {
                        "suite": p.suite,
                        "suite_version": p.suite_version,
                        "budget": p.budget,
                        "dataset": p.dataset,
                        "cell": p.cell,
                        "label": p.label,
                        "overrides": ", ".join(p.overrides),
                        "protocol": p.hash[:12],
                        "seed": seed,
                        "metric": name,
                        "mean": m.mean,
                        "se": m.se if m.se is not None else math.nan,
                        "n": m.n,
                        "duplicates": row.duplicates,
                        "created": r.created,
                    }
                )
    cols = [
        "suite",
        "suite_version",
        "budget",
        "dataset",
        "cell",
        "label",
        "overrides",
        "protocol",
        "seed",
        "metric",
        "mean",
        "se",
        "n",
        "duplicates",
        "created",
    ]
    return pd.DataFrame(out, columns=cols)


KEYS = ["suite", "suite_version", "budget", "dataset", "cell", "label", "overrides", "protocol"]


def aggregate(frame: pd.DataFrame) -> pd.DataFrame:
    """Mean and se over seeds per (protocol, metric); `seeds` counts distinct seeds."""
    cols = [*KEYS, "metric", "mean", "se", "se_over", "seeds", "duplicates"]
    if frame.empty:
        return pd.DataFrame(columns=cols)

    def over_seeds(g: pd.DataFrame) -> pd.Series:
        s = int(g["seed"].nunique())
        if s >= 2:
            se, over = float(g["mean"].std(ddof=1)) / math.sqrt(s), "seeds"
        else:
            se = float(g["se"].iloc[0])
            over = "examples" if math.isfinite(se) else ""
        return pd.Series(
            {
                "mean": float(g["mean"].mean()),
                "se": se,
                "se_over": over,
                "seeds": s,
                "duplicates": int(g["duplicates"].iloc[0]),
            }
        )

    out = frame.groupby([*KEYS, "metric"], sort=True)[["seed", "mean", "se", "duplicates"]].apply(over_seeds)
    out = out.reset_index()
    out["seeds"] = out["seeds"].astype(int)
    out["duplicates"] = out["duplicates"].astype(int)
    out["suite_version"] = out["suite_version"].astype(int)
    return out[cols]
