"""The protocol block of a table: what was measured and how, and where it leaves the paper's.

Per block (suite, version, budget, dataset): the dataset and its split sizes, binarization,
K of the NLL, epochs/steps, batch size, seeds, and the runs' notes. Each item is compared with
the suite's `paper` budget (its published protocol) resolved for the block's baseline cell (or
first cell); an item that differs is a deviation and carries the paper's value.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ..datasets import card
from ..runner.identity import flatten, suite_resolution
from .rows import Row

__all__ = ["Item", "ProtocolBlock", "protocol_block"]

# (label, config key) of what the block shows, in order; the task decides which apply.
_ITEMS: dict[str, list[tuple[str, str]]] = {
    "train_eval": [
        ("dataset", "dataset.name"),
        ("train examples", "dataset.train_size"),
        ("test examples", "dataset.test_size"),
        ("NLL importance samples K", "eval.nll_samples"),
        ("ELBO samples", "eval.elbo_samples"),
        ("epochs", "train.epochs"),
        ("max steps", "train.max_steps"),
        ("batch size", "train.batch_size"),
        ("learning-rate schedule", "train.schedule"),
    ],
    "gradients": [
        ("dataset", "dataset.name"),
        ("train examples", "dataset.train_size"),
        ("training epochs before measuring", "train.epochs"),
        ("draws per gradient", "gradients.num_draws"),
        ("batch size", "gradients.batch_size"),
        ("K", "gradients.num_samples"),
    ],
    "exact": [
        ("dataset", "dataset.name"),
        ("test examples", "exact.num_examples"),
        ("draws per example", "exact.num_draws"),
        ("K", "exact.num_samples"),
        ("training epochs", "train.epochs"),
    ],
    "kernels": [
        ("sizes (K, B, D)", "kernels.sizes"),
        ("providers", "kernels.providers"),
        ("repeats", "kernels.repeats"),
        ("dtype", "kernels.dtype"),
        ("device", "device"),
    ],
}


@dataclass
class Item:
    """One line of the protocol block; `paper` is set when the value deviates from it."""

    label: str
    value: str
    paper: str | None = None


@dataclass
class ProtocolBlock:
    """The protocol of one block (suite, version, budget, dataset) and its runs' notes."""

    title: str
    suite: str = ""
    suite_version: int = 0
    budget: str = ""
    dataset: str = ""
    items: list[Item] = field(default_factory=list)
    notes: list[tuple[str, str]] = field(default_factory=list)  # (note, which rows)

    @property
    def deviations(self) -> list[Item]:
        return [i for i in self.items if i.paper is not None]


def _fmt(value: Any, key: str = "") -> str:
    if value is None:
        return "all" if key.endswith("_size") else "-"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    if isinstance(value, list):
        return ", ".join("x".join(map(str, v)) if isinstance(v, list) else str(v) for v in value)
    return str(value)


def _card_line(dataset: str) -> tuple[str | None, str | None, dict[str, int]]:
    try:
        c = card(dataset)
    except KeyError:  # an unregistered dataset (UnknownNameError): the block shows what the records say
        return None, None, {}
    return c.title, c.preprocessing, dict(c.sizes)


def protocol_block(rows: Sequence[Row], task: str, baseline: str | None) -> ProtocolBlock:
    """The block for rows of one (suite, version, budget, dataset) (rows must be non-empty)."""
    p = rows[0].protocol
    title = f"{p.suite} v{p.suite_version}, budget {p.budget}, dataset {p.dataset}"
    block = ProtocolBlock(title, p.suite, p.suite_version, p.budget, p.dataset)
    plain = [r for r in rows if not r.protocol.overrides] or list(rows)
    ref_row = next((r for r in plain if baseline and r.protocol.cell.split("@")[0] == baseline), plain[0])
    configs = [flatten(next(iter(r.runs.values())).config) for r in rows]
    paper = suite_resolution(p.suite, "paper", ref_row.protocol.cell) if p.budget != "paper" else None
    paper_flat = flatten(paper[1]) if paper is not None and paper[0] == p.suite_version else {}
    title_, preprocessing, sizes = _card_line(p.dataset)
    for label, key in _ITEMS.get(task, []):
        raw = [c.get(key) for c in configs]
        # numbers in increasing order (K 500; 1,000), everything else in row order
        if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in raw):
            raw = sorted(raw, key=float)  # type: ignore[arg-type]  # all numbers: checked just above
        values = list(dict.fromkeys(_fmt(v, key) for v in raw))
        if key in ("dataset.train_size", "dataset.test_size") and sizes:
            split = "train" if "train" in key else "test"
            full = sizes.get(split)
            values = [f"{v} of {full:,}" if v != "all" else f"all {full:,}" for v in values] if full else values
        if key == "dataset.name" and title_:
            values = [f"{v} ({title_})" for v in values]
        value = values[0] if len(values) == 1 else "varies by row: " + "; ".join(values)
        want = _fmt(paper_flat.get(key), key) if key in paper_flat else None
        if key == "train.epochs" and paper_flat.get("train.schedule"):  # the schedule sets the epochs
            want = f"set by the '{paper_flat['train.schedule']}' schedule"
        if want is not None and key == "dataset.name" and paper_flat.get(key) == configs[0].get(key):
            want = None
        deviates = want is not None and any(_fmt(c.get(key), key) != want for c in configs)
        block.items.append(Item(label, value, want if deviates else None))
    if preprocessing and task in ("train_eval", "gradients"):
        block.items.insert(1, Item("binarization / preprocessing", preprocessing))
    seeds = sorted({s for r in rows for s in r.runs})
    per_row = sorted({len(r.runs) for r in rows})
    block.items.append(Item("seeds", f"{', '.join(map(str, seeds))} ({'-'.join(map(str, per_row))} per row)"))
    dups = sum(r.duplicates for r in rows)
    if dups:
        block.items.append(
            Item("duplicate records", f"{dups} record(s) of an already counted seed left out (newest kept)")
        )
    labels = [r.protocol.label for r in rows]
    where: dict[str, list[str]] = {}
    for r in rows:
        for rec in r.runs.values():
            for note in rec.notes:
                where.setdefault(note, [])
                if r.protocol.label not in where[note]:
                    where[note].append(r.protocol.label)
    for note, which in where.items():
        block.notes.append((note, "all rows" if len(which) == len(labels) else ", ".join(which)))
    return block
