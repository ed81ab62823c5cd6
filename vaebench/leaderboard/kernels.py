"""The kernels suite as a long table (op, size, provider, mode, time, GB/s, speedup) and its plots.

Metric names of the kernels task are `[<op>/]<K>x<B>x<D>/<provider>/<mode>_ms`,
`.../<provider>/<mode>_GBps` and `.../fused_speedup_vs_<provider>/<mode>`; the op is the prefix
or, without one, the cell. End-to-end cells (metrics without a size) stay in the appendix.
The plot puts the size (number of elements K*B*D) on a log x axis, time on a log y axis, one
line per provider, one panel per op and mode.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from .protocol import ProtocolBlock
from .table import Table, fmt_pm

if TYPE_CHECKING:  # matplotlib itself is imported where a plot is drawn (it is slow to import)
    from matplotlib.artist import Artist

__all__ = ["LONG_COLUMNS", "kernels_long", "kernels_table", "plot_kernels"]

_NAME = re.compile(r"^(?:(?P<op>[a-z_]+)/)?(?P<size>\d+(?:x\d+)*)/(?P<provider>[a-z_]+)/(?P<what>[A-Za-z_]+)$")
LONG_COLUMNS = [
    "op",
    "size",
    "provider",
    "mode",
    "time_ms",
    "time_se",
    "GBps",
    "speedup_vs_reference",
    "speedup_vs_compiled",
    "label",
]


def _numel(size: str) -> int:
    return math.prod(int(v) for v in size.split("x"))


def kernels_long(agg: pd.DataFrame) -> pd.DataFrame:
    """agg: rows.aggregate of kernels records -> one line per (row, op, size, provider, mode)."""
    out: dict[tuple[str, str, str, str, str], dict[str, object]] = {}
    for a in agg.to_dict("records"):
        m = _NAME.match(str(a["metric"]))
        if m is None:
            continue
        op = m["op"] or str(a["cell"])
        size, provider, what = m["size"], m["provider"], m["what"]
        if provider.startswith("fused_speedup_vs_"):
            key = (str(a["label"]), op, size, "fused", what)
            out.setdefault(key, {})[f"speedup_vs_{provider.removeprefix('fused_speedup_vs_')}"] = a["mean"]
            continue
        mode, unit = what.rsplit("_", 1) if what.endswith(("_ms", "_GBps")) else (what, "")
        key = (str(a["label"]), op, size, provider, mode)
        line = out.setdefault(key, {})
        if unit == "ms":
            line["time_ms"], line["time_se"] = a["mean"], a["se"]
        elif unit == "GBps":
            line["GBps"] = a["mean"]
    rows = [{"label": k[0], "op": k[1], "size": k[2], "provider": k[3], "mode": k[4], **v} for k, v in out.items()]
    frame = pd.DataFrame(rows, columns=LONG_COLUMNS)
    if frame.empty:
        return frame
    frame["_n"] = frame["size"].map(_numel)
    order = {"reference": 0, "compiled": 1, "fused": 2}
    frame["_p"] = frame["provider"].map(lambda p: order.get(p, 3))
    frame = frame.sort_values(["op", "mode", "_n", "_p", "label"]).drop(columns=["_n", "_p"])
    return frame.reset_index(drop=True)


def plot_kernels(long: pd.DataFrame, path: Path) -> Path | None:
    """Time vs size per provider, one panel per (op, mode); None when there is nothing timed."""
    timed = long.dropna(subset=["time_ms"])
    if timed.empty:
        return None
    import matplotlib  # lazy: slow to import, and only a drawn plot needs it

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = list(dict.fromkeys(zip(timed["op"], timed["mode"], strict=True)))
    ncol = min(3, len(panels))
    nrow = -(-len(panels) // ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(4.2 * ncol, 3.2 * nrow), squeeze=False)
    handles: dict[str, Artist] = {}
    # strict=False: the last grid row can have spare axes, which stay empty.
    for ax, (op, mode) in zip(axes.flat, panels, strict=False):
        part = timed[(timed["op"] == op) & (timed["mode"] == mode)]
        for provider, line in part.groupby("provider", sort=False):
            x = line["size"].map(_numel)
            h = ax.errorbar(
                x, line["time_ms"], yerr=line["time_se"].fillna(0.0), marker="o", ms=4, capsize=2, label=str(provider)
            )
            handles.setdefault(str(provider), h)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("elements K·B·D")
        ax.set_ylabel("time (ms)")
        ax.set_title(f"{op} {mode}", fontsize=10)
        ax.grid(alpha=0.3, which="both")
    for ax in list(axes.flat)[len(panels) :]:
        ax.set_visible(False)
    fig.legend(list(handles.values()), list(handles), loc="lower center", ncol=len(handles), fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def kernels_table(long: pd.DataFrame, agg: pd.DataFrame, block: ProtocolBlock) -> Table:
    """The block's Table: the long rows, and the end-to-end metrics (no size) in the appendix."""
    cols = ["op", "size", "provider", "mode", "time (ms)", "GB/s", "speedup vs reference", "speedup vs compiled"]
    t = Table(block, cols)
    several = long["label"].nunique() > long["op"].nunique() if not long.empty else False

    def num(line: dict[str, object], key: str, fmt: str = "{:.3g}") -> str:
        v = line.get(key)
        return "" if v is None or (isinstance(v, float) and math.isnan(v)) else fmt.format(v)

    for line in long.to_dict("records"):
        se = line.get("time_se")
        time = (
            "" if pd.isna(line.get("time_ms")) else fmt_pm(float(line["time_ms"]), None if pd.isna(se) else float(se))
        )
        op = f"{line['op']} ({line['label']})" if several else str(line["op"])
        t.cells.append(
            {
                "op": op,
                "size": str(line["size"]),
                "provider": str(line["provider"]),
                "mode": str(line["mode"]),
                "time (ms)": time,
                "GB/s": num(line, "GBps"),
                "speedup vs reference": num(line, "speedup_vs_reference", "{:.2f}x"),
                "speedup vs compiled": num(line, "speedup_vs_compiled", "{:.2f}x"),
            }
        )
        t.raw.append({k: (None if pd.isna(v) else v) for k, v in line.items()})
        t.kinds.append("run")
        t.marks.append("")
    rest = agg[~agg["metric"].map(lambda m: bool(_NAME.match(str(m))))]
    if not rest.empty:
        t.appendix_columns = ["row", "metric", "value", "seeds"]
        for a in rest.to_dict("records"):
            se = a["se"] if pd.notna(a["se"]) else None
            t.appendix.append(
                {
                    "row": str(a["label"]),
                    "metric": str(a["metric"]),
                    "value": fmt_pm(float(a["mean"]), se),
                    "seeds": str(a["seeds"]),
                }
            )
    return t
