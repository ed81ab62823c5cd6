"""A suite's leaderboard as one long CSV: every metric of every row, the protocol and the notes.

One line per (row, metric) with kind "run"; the headline metric's line carries the difference
from the baseline and the mark. Lines of kind "protocol" (metric = the item, text = its value,
paper = the published protocol's value where it deviates), "note" (text, rows) and
"reference" (published numbers) make the file self-describing. Integer columns stay integer.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from .table import Table

__all__ = ["COLUMNS", "suite_csv"]

COLUMNS = [
    "kind",
    "suite",
    "suite_version",
    "budget",
    "dataset",
    "row",
    "cell",
    "overrides",
    "protocol",
    "metric",
    "mean",
    "se",
    "se_over",
    "seeds",
    "duplicates",
    "nll_mc_se",
    "diff",
    "diff_se",
    "diff_low",
    "diff_high",
    "paired",
    "mark",
    "text",
    "paper",
    "status",
    "source",
]
_INTS = ["suite_version", "seeds", "duplicates"]


def suite_csv(agg: pd.DataFrame, tables: Sequence[Table], references: pd.DataFrame) -> str:
    """agg: rows.aggregate of the suite's records; tables: its blocks (same order as written)."""
    lines = []
    raw = {}
    for t in tables:
        for r, kind in zip(t.raw, t.kinds, strict=True):
            if kind == "run" and "row" in r:
                raw[(t.block.title, r["row"])] = (t, r)
        b = t.block
        where = {"suite": b.suite, "suite_version": b.suite_version, "budget": b.budget, "dataset": b.dataset}
        for item in b.items:
            lines.append({"kind": "protocol", **where, "metric": item.label, "text": item.value, "paper": item.paper})
        for note, which in b.notes:
            lines.append({"kind": "note", **where, "text": note, "row": which})
    for a in agg.to_dict("records"):
        title = f"{a['suite']} v{a['suite_version']}, budget {a['budget']}, dataset {a['dataset']}"
        line = {
            "kind": "run",
            **{
                k: a[k]
                for k in (
                    "suite",
                    "suite_version",
                    "budget",
                    "dataset",
                    "cell",
                    "overrides",
                    "protocol",
                    "metric",
                    "mean",
                    "se",
                    "se_over",
                    "seeds",
                    "duplicates",
                )
            },
            "row": a["label"],
        }
        found = raw.get((title, a["label"]))
        if found is not None:
            t, r = found
            if a["metric"] == t.headline:
                line.update(
                    {
                        "diff": r.get("diff"),
                        "diff_se": r.get("diff se"),
                        "diff_low": r.get("diff low"),
                        "diff_high": r.get("diff high"),
                        "paired": r.get("paired"),
                        "mark": t.marks[t.raw.index(r)] or None,
                    }
                )
            if a["metric"] == "nll":
                line["nll_mc_se"] = r.get("nll mc_se")
        lines.append(line)
    for ref in references.to_dict("records"):
        lines.append(
            {
                "kind": "reference",
                "row": ref["cell"],
                "cell": ref["cell"],
                "dataset": ref["dataset"],
                "metric": ref["metric"],
                "mean": ref["value"],
                "status": ref["status"],
                "source": ref["source"],
                "text": ref["note"],
            }
        )
    suite = agg["suite"].iloc[0] if not agg.empty else ""
    frame = pd.DataFrame(lines)
    for col in COLUMNS:
        if col not in frame:
            frame[col] = None
    frame["suite"] = frame["suite"].fillna(suite)
    for col in _INTS:
        frame[col] = pd.to_numeric(frame[col]).astype("Int64")
    return frame[COLUMNS].to_csv(index=False)
