"""The leaderboard as a static site: index.html and one page per suite, from jinja2 templates.

The pages, their plots and the md/tex/csv files lie side by side in one folder (RESULTS/tables),
so the site opens from a fresh clone: every link and image is a relative path to a file
written by the same `vaebench leaderboard` call (nothing points into the untracked runs/).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import jinja2
import pandas as pd

from .markdown import legend
from .table import BEST, TIE, Table

__all__ = ["SuitePage", "render_index", "render_suite"]


@dataclass
class SuitePage:
    """What the index says about a suite page."""

    name: str
    page: str
    description: str
    blocks: int
    rows: int
    records: int
    latest: str
    baseline: str | None = None
    figures: list[list[tuple[str, str]]] = field(default_factory=list)


def _env() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("vaebench.leaderboard", "templates"),
        autoescape=jinja2.select_autoescape(["html", "j2"]),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def _sort_value(raw: dict[str, Any], column: str) -> float | None:
    keys = {
        "time (ms)": "time_ms",
        "GB/s": "GBps",
        "speedup vs reference": "speedup_vs_reference",
        "speedup vs compiled": "speedup_vs_compiled",
        "nll MC ±": "nll mc_se",
        "seeds": "seeds",
    }
    v = raw.get(keys.get(column, column))
    if column.startswith("Δ "):
        v = raw.get("diff")
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(float(v)):
        return None
    return float(v)


def _block(t: Table, figures: Sequence[tuple[str, str]]) -> dict[str, Any]:
    rows = []
    for cells, raw, kind, mark in zip(t.cells, t.raw, t.kinds, t.marks, strict=True):
        cls = "reference" if kind == "reference" else {BEST: "best", TIE: "tie"}.get(mark, "")
        rows.append(
            {
                "cls": cls,
                "cells": [{"text": cells.get(c, ""), "v": _sort_value(raw, c), "mark": c == "mark"} for c in t.columns],
            }
        )
    return {
        "title": t.block.title,
        "protocol": t.block.items,
        "notes": t.block.notes,
        "deviations": t.block.deviations,
        "columns": t.columns,
        "rows": rows,
        "legend": legend(t),
        "figures": [{"src": s, "caption": c} for s, c in figures],
        "appendix": t.appendix,
        "appendix_columns": t.appendix_columns,
    }


def render_suite(
    suite: str,
    description: str,
    tables: Sequence[Table],
    figures: Sequence[Sequence[tuple[str, str]]],
    references: pd.DataFrame,
) -> str:
    blocks = [_block(t, figures[i] if i < len(figures) else ()) for i, t in enumerate(tables)]
    refs = references.astype(str).to_dict("records") if not references.empty else []
    return (
        _env()
        .get_template("suite.html.j2")
        .render(
            title=suite,
            suite=suite,
            description=description,
            blocks=blocks,
            references=refs,
            reference_columns=list(references.columns),
        )
    )


def render_index(pages: Sequence[SuitePage]) -> str:
    return _env().get_template("index.html.j2").render(title="suites", suites=list(pages))
