"""A suite block's table as data: columns, formatted cells, row kinds and marks.

The main table shows the suite's declared `metrics:` (shell patterns allowed) in the suite's
cell order, each `mean ± se`, the NLL's Monte Carlo error beside it, the headline metric's
paired difference from the baseline cell with its 95% interval, and a mark: best, or not
significantly different from the best (vaebench.leaderboard.significance). Every other metric
is in the appendix table (and the CSV). Reference rows (published numbers) follow the runs.
"""

from __future__ import annotations

import fnmatch
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import pandas as pd

from .protocol import ProtocolBlock
from .rows import Row, mc_error
from .significance import Difference, difference, marks

__all__ = ["BEST", "TIE", "Table", "build_table", "fmt_diff", "fmt_pm", "shown_metrics"]

BEST, TIE = "best", "≈ best"


def _decimals(se: float) -> int:
    """Decimals that show `se` to two significant digits (0 to 6)."""
    if se <= 0 or not math.isfinite(se):
        return 2
    return int(min(6, max(0, 1 - math.floor(math.log10(se)))))


def _plain(x: float) -> str:
    if not math.isfinite(x):
        return str(x)
    if x != 0 and (abs(x) >= 1e5 or abs(x) < 1e-3):
        return f"{x:.3g}"
    return f"{x:.4g}" if abs(x) < 1000 else f"{x:.0f}"


def fmt_pm(mean: float, se: float | None, pm: str = "±") -> str:
    """`mean ± se`, se to two significant digits and the mean to the same decimal place."""
    if se is None or not math.isfinite(se) or not math.isfinite(mean):
        return _plain(mean)
    if se == 0:  # equal in every seed (a count, or a fixed setting)
        return f"{_plain(mean)} {pm} 0"
    d = _decimals(se)
    return f"{mean:.{d}f} {pm} {se:.{d}f}"


def fmt_diff(d: Difference | None) -> str:
    if d is None:
        return ""
    if d.low is None or d.high is None:
        return f"{d.diff:+.3g} (no error estimate)"
    dec = _decimals(d.se or 0.0)
    return f"{d.diff:+.{dec}f} [{d.low:+.{dec}f}, {d.high:+.{dec}f}]" + ("" if d.paired else " unpaired")


def shown_metrics(declared: Sequence[str], present: Sequence[str]) -> list[str]:
    """The declared metrics that exist, patterns expanded, in declared order."""
    out = [
        m
        for pat in declared
        for m in (
            fnmatch.filter(sorted(present), pat) if any(c in pat for c in "*?[") else ([pat] if pat in present else [])
        )
    ]
    return list(dict.fromkeys(out))


@dataclass
class Table:
    """One block: `cells` are formatted strings by column; `raw` the numbers behind them."""

    block: ProtocolBlock
    columns: list[str]
    cells: list[dict[str, str]] = field(default_factory=list)
    kinds: list[str] = field(default_factory=list)  # "run" | "reference"
    marks: list[str] = field(default_factory=list)
    raw: list[dict[str, float | int | str | None]] = field(default_factory=list)
    appendix_columns: list[str] = field(default_factory=list)
    appendix: list[dict[str, str]] = field(default_factory=list)
    headline: str | None = None
    baseline: str | None = None
    diff_column: str | None = None

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.cells, columns=self.columns)


def _mean_se(row: Row, metric: str) -> tuple[float, float | None, str]:
    ms = list(row.metric(metric).values())
    mean = math.fsum(m.mean for m in ms) / len(ms)
    if len(ms) >= 2:
        var = math.fsum((m.mean - mean) ** 2 for m in ms) / (len(ms) - 1)
        return mean, math.sqrt(var / len(ms)), "seeds"
    return mean, ms[0].se, "examples" if ms[0].se is not None else ""


def _order(rows: Sequence[Row], cell_order: Sequence[str]) -> list[Row]:
    """The suite file's rows first, in its cell order; then each set of overrides, in cell order."""
    pos = {c: i for i, c in enumerate(cell_order)}
    return sorted(rows, key=lambda r: (r.protocol.overrides, pos.get(r.protocol.cell, len(pos)), r.protocol.cell))


def _baseline_of(rows: Sequence[Row], row: Row, baseline: str | None) -> Row | None:
    """The baseline cell's row with the same overrides ("diagonal" matches "diagonal@mnist")."""
    if not baseline:
        return None
    for r in rows:
        if r.protocol.cell.split("@")[0] == baseline.split("@")[0] and r.protocol.overrides == row.protocol.overrides:
            return r
    return None


def build_table(
    rows: Sequence[Row],
    block: ProtocolBlock,
    *,
    declared: Sequence[str],
    cell_order: Sequence[str],
    baseline: str | None,
    references: pd.DataFrame | None = None,
) -> Table:
    """The block's table (rows: one block's rows, any order)."""
    rows = _order(rows, cell_order)
    present = sorted({m for r in rows for rec in r.runs.values() for m in rec.metrics})
    shown = shown_metrics(declared, present) or present[:8]
    headline = shown[0] if shown else None
    has_mc = any(mc_error(r) is not None for r in rows) and "nll" in shown
    diff_col = f"Δ {headline} vs {baseline} [95% CI]" if headline and baseline else None
    columns = ["row", "seeds"]
    for m in shown:
        columns.append(m)
        if m == "nll" and has_mc:
            columns.append("nll MC ±")
    columns += [c for c in (diff_col, "mark") if c]
    t = Table(block, columns, headline=headline, baseline=baseline, diff_column=diff_col)
    # marks within rows of the same overrides: a row is only ranked against its own protocol
    groups: dict[tuple[str, ...], list[int]] = {}
    for i, r in enumerate(rows):
        groups.setdefault(r.protocol.overrides, []).append(i)
    mark = [""] * len(rows)
    if headline:
        for idx in groups.values():
            for j, m in marks([rows[i] for i in idx], headline).items():
                mark[idx[j]] = {"best": BEST, "tie": TIE}.get(m, "")
    for i, r in enumerate(rows):
        cells = {
            "row": r.protocol.label,
            "seeds": str(len(r.runs)) + (f" (+{r.duplicates} dup)" if r.duplicates else ""),
        }
        raw: dict[str, float | int | str | None] = {
            "row": r.protocol.label,
            "seeds": len(r.runs),
            "duplicates": r.duplicates,
        }
        for m in shown:
            if not r.metric(m):
                cells[m] = ""
                continue
            mean, se, over = _mean_se(r, m)
            cells[m] = fmt_pm(mean, se)
            raw[m], raw[f"{m} se"], raw[f"{m} se over"] = mean, se, over
            if m == "nll" and has_mc:
                mc = mc_error(r)
                cells["nll MC ±"] = "" if mc is None else f"{mc:.2g}"
                raw["nll mc_se"] = mc
        if diff_col and headline:
            base = _baseline_of(rows, r, baseline)
            if base is None:
                cells[diff_col] = "no baseline row"
            elif base is r:
                cells[diff_col] = "baseline"
            else:
                d = difference(r, base, headline)
                cells[diff_col] = fmt_diff(d) if d is not None else "no common seed"
                if d is not None:
                    raw.update(
                        {"diff": d.diff, "diff se": d.se, "diff low": d.low, "diff high": d.high, "paired": d.paired}
                    )
        if "mark" in columns:
            cells["mark"] = mark[i]
        t.cells.append(cells)
        t.raw.append(raw)
        t.kinds.append("run")
        t.marks.append(mark[i])
    if references is not None and not references.empty:
        for ref in references.itertuples(index=False):
            if ref.metric not in shown:
                continue
            cells = {c: "" for c in columns}
            cells["row"] = f"{ref.cell} — published, {ref.dataset} [{ref.status}]"
            cells["seeds"] = "ref"
            cells[ref.metric] = _plain(float(ref.value))
            t.cells.append(cells)
            t.raw.append({"row": cells["row"], ref.metric: float(ref.value)})
            t.kinds.append("reference")
            t.marks.append("")
    rest = [m for m in present if m not in shown]
    if rest:
        t.appendix_columns = ["row", *rest]
        for r in rows:
            row_cells = {"row": r.protocol.label}
            for m in rest:
                row_cells[m] = fmt_pm(*_mean_se(r, m)[:2]) if r.metric(m) else ""
            t.appendix.append(row_cells)
    return t
