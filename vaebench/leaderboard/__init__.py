"""Leaderboards: run records -> one row per protocol, per suite block, in md, html, tex and csv.

A row is one protocol (vaebench.runner.identity): suite, version, budget, dataset, cell and the hash of the
cell's resolved config without its seed; command-line overrides show in the row's label.
Rows hold mean ± se over distinct seeds (rows.py), the NLL's Monte Carlo error, and the
headline metric's paired difference from the suite's `baseline` cell with a 95% interval,
marking the best row and those not significantly different from it (significance.py). Each
block starts with its protocol and the runs' notes, deviations from the suite's `paper` budget
marked (protocol.py). Files, all generated, never edited, side by side in OUT (RESULTS/tables):

    index.html, <suite>.html          the static site (site.py, templates/)
    <suite>.md, .tex, .csv            the same tables (markdown.py, latex.py, csv_table.py)
    <suite>__<block>__*.png           plots (plots.py, kernels.py)
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from ..results import RunRecord, atomic_write_text, usable_records
from ..runner.suite import SuiteError, load_suite
from .csv_table import suite_csv
from .kernels import kernels_long, kernels_table, plot_kernels
from .latex import suite_latex
from .markdown import suite_markdown
from .plots import plot_differences, plot_vs_k
from .protocol import protocol_block
from .rows import Row, aggregate, collect_rows, higher_is_better, records_frame
from .significance import Difference, difference, marks, paired_difference, unpaired_difference
from .site import SuitePage, render_index, render_suite
from .table import Table, build_table

__all__ = [
    "Board",
    "Difference",
    "Row",
    "SuiteInfo",
    "Table",
    "aggregate",
    "build_leaderboard",
    "collect_rows",
    "difference",
    "higher_is_better",
    "marks",
    "paired_difference",
    "plot_vs_k",
    "records_frame",
    "reference_frame",
    "suite_info",
    "unpaired_difference",
]


@dataclass
class Board:
    """One suite's leaderboard: the aggregated frame, its Markdown, its tables and the files written."""

    suite: str
    frame: pd.DataFrame
    markdown: str
    tables: list[Table] = field(default_factory=list)
    paths: list[Path] = field(default_factory=list)


@dataclass
class SuiteInfo:
    """What the leaderboard reads from a suite file (defaults when the file is not found)."""

    name: str
    description: str = ""
    task: str = ""
    metrics: list[str] = field(default_factory=list)
    cells: list[str] = field(default_factory=list)
    baseline: str | None = None


def suite_info(suite: str) -> SuiteInfo:
    try:
        spec = load_suite(suite)
    except SuiteError:
        return SuiteInfo(suite)
    return SuiteInfo(
        suite,
        str(spec.description),
        str(spec.task),
        list(spec.metrics),
        [c.name for c in spec.cells],
        spec.get("baseline"),
    )


def reference_frame(suite: str) -> pd.DataFrame:
    """The suite file's published reference rows (empty when the suite file is not found)."""
    cols = ["cell", "dataset", "metric", "value", "status", "source", "note"]
    try:
        spec = load_suite(suite)
    except SuiteError:
        return pd.DataFrame(columns=cols)
    rows = [{c: getattr(ref, c) for c in cols} for ref in spec.references]
    return pd.DataFrame(rows, columns=cols)


def _task(info: SuiteInfo, rows: Sequence[Row]) -> str:
    if info.task:
        return info.task
    names = {m for r in rows for rec in r.runs.values() for m in rec.metrics}
    if "nll" in names:
        return "train_eval"
    return "kernels" if any("speedup" in m or m.endswith("_ms") for m in names) else ""


def _slug(text: object) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "-" for c in str(text))


def _suite_board(suite: str, rows: list[Row], out: Path) -> tuple[Board, SuitePage]:
    info = suite_info(suite)
    task = _task(info, rows)
    refs = reference_frame(suite)
    agg = aggregate(records_frame(rows))
    blocks: dict[tuple[str, int, str, str], list[Row]] = {}
    for r in rows:
        blocks.setdefault(r.protocol.block, []).append(r)
    tables: list[Table] = []
    figures: list[list[tuple[str, str]]] = []
    written: list[Path] = []
    for key in sorted(blocks, key=lambda k: (-k[1], k[2], k[3])):
        part = blocks[key]
        _, version, budget, dataset = key
        block = protocol_block(part, task, info.baseline)
        sub = agg[(agg["suite_version"] == version) & (agg["budget"] == budget) & (agg["dataset"] == dataset)]
        slug = f"{_slug(suite)}__v{version}_{_slug(budget)}_{_slug(dataset)}"
        figs: list[tuple[str, str]] = []
        if task == "kernels":
            long = kernels_long(sub)
            t = kernels_table(long, sub, block)
            png = plot_kernels(long, out / f"{slug}__time_vs_size.png")
            if png is not None:
                figs.append((png.name, "time against size per provider, one panel per op and mode (log axes)"))
        else:
            t = build_table(
                part, block, declared=info.metrics, cell_order=info.cells, baseline=info.baseline, references=refs
            )
            png = plot_vs_k(sub, out / f"{slug}__vs_K.png")
            if png is not None:
                figs.append((png.name, "metrics against K, one line per row (log axes for SNR, variance, ESS, std)"))
            png = plot_differences(t, out / f"{slug}__diff.png")
            if png is not None:
                caption = f"{t.headline} minus the baseline {info.baseline}, 95% interval (grey: includes 0)"
                figs.append((png.name, caption))
        written += [out / f for f, _ in figs]
        tables.append(t)
        figures.append(figs)
    markdown = suite_markdown(suite, tables, refs, figures)
    written = [
        atomic_write_text(out / f"{suite}.md", markdown + "\n"),
        atomic_write_text(out / f"{suite}.html", render_suite(suite, info.description, tables, figures, refs)),
        atomic_write_text(out / f"{suite}.tex", suite_latex(suite, tables) + "\n"),
        atomic_write_text(out / f"{suite}.csv", suite_csv(agg, tables, refs)),
        *written,
    ]
    latest = max(rec.created for r in rows for rec in r.runs.values())[:19].replace("T", " ")
    page = SuitePage(
        suite,
        f"{suite}.html",
        info.description,
        len(tables),
        len(rows),
        sum(len(r.runs) + r.duplicates for r in rows),
        latest + " UTC",
        info.baseline,
    )
    return Board(suite, agg, markdown, tables, written), page


def build_leaderboard(
    results_dir: str | os.PathLike[str],
    *,
    out_dir: str | os.PathLike[str] | None = None,
    suites: Sequence[str] | None = None,
    records: Sequence[RunRecord] | None = None,
    strict: bool = False,
) -> dict[str, Board]:
    """Read every record under `results_dir` and write the site and tables of each suite.

    Returns suite -> Board. OUT defaults to RESULTS/tables; index.html lists every suite with
    records (also when `suites` limits which pages are rewritten). Damaged or foreign record
    files are reported and skipped (`strict`: a RecordError listing them).
    """
    results_dir = Path(results_dir)
    out = Path(out_dir) if out_dir is not None else results_dir / "tables"
    if records is None:
        has = (results_dir / "records").is_dir() or results_dir.is_file()
        records = usable_records(results_dir, strict=strict) if has else []
    by_suite: dict[str, list[RunRecord]] = {}
    for r in records:
        by_suite.setdefault(r.suite, []).append(r)
    boards: dict[str, Board] = {}
    pages: list[SuitePage] = []
    for suite in sorted(by_suite):
        rows = collect_rows(by_suite[suite])
        if suites and suite not in suites:
            info = suite_info(suite)
            pages.append(
                SuitePage(
                    suite,
                    f"{suite}.html",
                    info.description,
                    len({r.protocol.block for r in rows}),
                    len(rows),
                    sum(len(r.runs) + r.duplicates for r in rows),
                    max(rec.created for r in rows for rec in r.runs.values())[:19].replace("T", " ") + " UTC",
                    info.baseline,
                )
            )
            continue
        board, page = _suite_board(suite, rows, out)
        boards[suite] = board
        pages.append(page)
    if pages:
        index = atomic_write_text(out / "index.html", render_index(pages))
        for board in boards.values():
            board.paths.append(index)
    return boards
