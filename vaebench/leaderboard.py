"""Leaderboards: records aggregated over seeds (pandas) into tables per suite and dataset.

    mean = (1/S) sum_s m_s,   se = std_s(m_s) / sqrt(S)   over S seeds (S >= 2);
    with one seed, the run's own standard error (over test examples) is shown.

Published numbers from the suite file (`references:`, from REFERENCES.md) are added as
reference rows, marked V (checked against released code) or unverified. Tables are written to
RESULTS/tables/<suite>.{md,html,tex,csv} (and <suite>_vs_K.png where metrics are named
`name@K=k`): generated, never edited.
"""

from __future__ import annotations

import html
import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from .results import RunRecord, atomic_write_text, usable_records

__all__ = ["Board", "aggregate", "build_leaderboard", "plot_vs_k", "records_frame", "reference_frame"]

_KEYS = ["suite", "suite_version", "budget", "dataset", "cell"]


def records_frame(records: Iterable[RunRecord]) -> pd.DataFrame:
    """One row per (record, metric); of records sharing a config hash only the newest counts."""
    latest: dict[str, RunRecord] = {}
    for r in records:
        if r.config_hash not in latest or r.created > latest[r.config_hash].created:
            latest[r.config_hash] = r
    rows = []
    for r in latest.values():
        dataset = str(r.config.get("dataset", {}).get("name", ""))
        for name, m in r.metrics.items():
            rows.append({
                "suite": r.suite, "suite_version": r.suite_version, "budget": r.budget, "dataset": dataset,
                "cell": r.cell, "seed": r.seed, "metric": name, "mean": m.mean,
                "se": m.se if m.se is not None else math.nan, "n": m.n,
                "config_hash": r.config_hash, "created": r.created,
            })
    cols = [*_KEYS, "seed", "metric", "mean", "se", "n", "config_hash", "created"]
    return pd.DataFrame(rows, columns=cols)


def aggregate(frame: pd.DataFrame) -> pd.DataFrame:
    """Mean and standard error over seeds per (suite, version, budget, dataset, cell, metric)."""
    if frame.empty:
        return pd.DataFrame(columns=[*_KEYS, "metric", "mean", "se", "seeds"])

    def over_seeds(g: pd.DataFrame) -> pd.Series:
        s = len(g)
        if s >= 2:
            se = float(g["mean"].std(ddof=1)) / math.sqrt(s)
        else:
            se = float(g["se"].iloc[0])
        return pd.Series({"mean": float(g["mean"].mean()), "se": se, "seeds": s})

    out = frame.groupby([*_KEYS, "metric"], sort=True)[["mean", "se"]].apply(over_seeds).reset_index()
    out["seeds"] = out["seeds"].astype(int)
    return out


def reference_frame(suite: str) -> pd.DataFrame:
    """The suite file's published reference rows (empty when the suite file is not found)."""
    from .runner.suite import SuiteError, load_suite

    cols = ["cell", "dataset", "metric", "value", "status", "source", "note"]
    try:
        spec = load_suite(suite)
    except SuiteError:
        return pd.DataFrame(columns=cols)
    rows = [{c: getattr(ref, c) for c in cols} for ref in spec.references]
    return pd.DataFrame(rows, columns=cols)


def _fmt(mean: float, se: float) -> str:
    if not math.isfinite(mean):
        return str(mean)
    return f"{mean:.4g} ± {se:.2g}" if math.isfinite(se) else f"{mean:.4g}"


def _wide(agg: pd.DataFrame) -> pd.DataFrame:
    """cells as rows, metrics as columns, `mean ± se` strings."""
    agg = agg.assign(value=[_fmt(m, s) for m, s in zip(agg["mean"], agg["se"])])
    wide = agg.pivot_table(index=["cell", "seeds"], columns="metric", values="value", aggfunc="first")
    wide.columns.name = None
    return wide.reset_index()


@dataclass
class Board:
    """One suite's leaderboard: the aggregated frame, its Markdown, and the files written."""

    suite: str
    frame: pd.DataFrame
    markdown: str
    paths: list[Path] = field(default_factory=list)


def _plots(records: Sequence[RunRecord], suite: str) -> list[str]:
    return sorted({a for r in records if r.suite == suite for k, a in r.artifacts.items() if k.startswith("plot")})


def plot_vs_k(agg: pd.DataFrame, path: Path) -> Path | None:
    """One panel per metric named `<name>@K=<k>` (SNR, variance, bias, ...): mean ± se vs K per cell.

    Returns the written PNG, or None when the suite has no such metrics.
    """
    parsed = agg["metric"].str.extract(r"^(?P<base>.+)@K=(?P<k>\d+)$")
    rows = agg.assign(base=parsed["base"], k=pd.to_numeric(parsed["k"])).dropna(subset=["base"])
    if rows.empty:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    bases = sorted(set(rows["base"]))
    fig, axes = plt.subplots(1, len(bases), figsize=(4 * len(bases), 3.2), squeeze=False)
    for ax, base in zip(axes[0], bases):
        for cell, part in rows[rows["base"] == base].groupby("cell"):
            part = part.sort_values("k")
            ax.errorbar(part["k"], part["mean"], yerr=part["se"].fillna(0.0), marker="o", capsize=2, label=str(cell))
        ax.set_xscale("log")
        ax.set_xlabel("K")
        ax.set_title(base)
        ax.grid(alpha=0.3)
    axes[0][-1].legend(fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def build_leaderboard(
    results_dir: str | os.PathLike[str] = "results",
    *,
    out_dir: str | os.PathLike[str] | None = None,
    suites: Sequence[str] | None = None,
    strict: bool = False,
) -> dict[str, Board]:
    """Aggregate every record under `results_dir` and write each suite's tables.

    Damaged or foreign files are reported and skipped (`strict`: a RecordError listing them).

    Returns suite -> Board. Files: OUT/<suite>.md, .html (with the runs' plots), .tex, .csv
    (OUT defaults to RESULTS/tables).
    """
    results_dir = Path(results_dir)
    out = Path(out_dir) if out_dir is not None else results_dir / "tables"
    has_records = (results_dir / "records").is_dir() or results_dir.is_file()
    records = usable_records(results_dir, strict=strict) if has_records else []
    frame = records_frame(records)
    agg = aggregate(frame)
    boards: dict[str, Board] = {}
    for suite in sorted(set(agg["suite"])):
        if suites and suite not in suites:
            continue
        sub = agg[agg["suite"] == suite]
        refs = reference_frame(suite)
        md, tex, htm = [f"# {suite}\n"], [], [f"<h1>{html.escape(suite)}</h1>"]
        for (version, budget, dataset), part in sub.groupby(["suite_version", "budget", "dataset"], sort=True):
            wide = _wide(part)
            title = f"{suite} v{version}, budget {budget}, dataset {dataset}"
            md += [f"## {title}\n", wide.to_markdown(index=False), ""]
            tex += [f"% {title}", wide.to_latex(index=False, caption=title.replace("_", r"\_"), escape=True)]
            htm += [f"<h2>{html.escape(title)}</h2>", wide.to_html(index=False, escape=True)]
        if not refs.empty:
            ref_title = "published reference numbers (not runs of this suite; V = checked against released code)"
            md += [f"## {ref_title}\n", refs.to_markdown(index=False), ""]
            tex += [f"% {ref_title}", refs.to_latex(index=False, caption="published reference numbers", escape=True)]
            htm += [f"<h2>{html.escape(ref_title)}</h2>", refs.to_html(index=False, escape=True)]
        vs_k = plot_vs_k(sub, out / f"{suite}_vs_K.png")
        if vs_k is not None:
            htm.append(f'<figure><img src="{html.escape(vs_k.name)}" width="960"><figcaption>metrics vs K, every cell'
                       "</figcaption></figure>")
            md += [f"![metrics vs K]({vs_k.name})", ""]
        for plot in _plots(records, suite):
            rel = os.path.relpath(results_dir / plot, out)
            htm.append(f'<figure><img src="{html.escape(rel)}" width="640"><figcaption>{html.escape(plot)}</figcaption></figure>')
        markdown = "\n".join(md)
        csv = pd.concat([sub.assign(kind="run"), refs.rename(columns={"value": "mean"}).assign(suite=suite, kind="reference")],
                        ignore_index=True) if not refs.empty else sub.assign(kind="run")
        paths = [
            atomic_write_text(out / f"{suite}.md", markdown + "\n"),
            atomic_write_text(out / f"{suite}.html", "<!doctype html><meta charset='utf-8'>\n" + "\n".join(htm) + "\n"),
            atomic_write_text(out / f"{suite}.tex", "\n".join(tex) + "\n"),
            atomic_write_text(out / f"{suite}.csv", csv.to_csv(index=False)),
        ]
        if vs_k is not None:
            paths.append(vs_k)
        boards[suite] = Board(suite, sub.reset_index(drop=True), markdown, paths)
    return boards
