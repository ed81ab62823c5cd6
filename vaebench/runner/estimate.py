"""How long a cell will take, estimated from earlier records of the same cell (`--dry-run`).

There is no cost model of the hardware: the estimate scales the wall time of an earlier run of
the same suite cell (any budget, any results folder the user points at) by the ratio of work
units, so it is as good as that record is close (same machine, same device). Without an earlier
record the estimate is None ("unknown"), never a made-up number.

Work units of a train_eval run: training examples x epochs x K (a forward and a backward pass,
counted as 3 forward passes) plus test examples x nll_samples (forward passes). Other tasks are
estimated only from a record of the same budget, unscaled.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..datasets import DATASETS
from ..results import RunRecord
from ..trainer.schedules import resolve_epochs
from .resolve import ResolvedCell

__all__ = ["Estimate", "estimate_seconds", "work_units"]

_BACKWARD_COST = 3.0  # a training step (forward + backward) counted as about 3 forward passes


@dataclass(frozen=True)
class Estimate:
    """Seconds a cell should take (None: unknown) and what the number rests on."""

    seconds: float | None
    basis: str


def _split_size(config: Mapping[str, Any], split: str) -> int | None:
    dc = config["dataset"]
    size = dc.get(f"{split}_size")
    name = dc.get("name")
    if name not in DATASETS:
        return size
    full = DATASETS.get(name).card.sizes.get(split)
    return full if size is None else (min(size, full) if full else size)


def work_units(config: Mapping[str, Any]) -> float | None:
    """Forward-pass-equivalents of a train_eval run with this (plain) config; None if unknown."""
    train_n, test_n = _split_size(config, "train"), _split_size(config, "test")
    if train_n is None or test_n is None:
        return None
    tc, ec = config["train"], config["eval"]
    # what the trainer runs at most: train.epochs, else the schedule's own length (early stopping
    # may end it sooner; the estimate is then an upper bound)
    epochs = resolve_epochs(tc["epochs"], tc["schedule"])
    k_train = config["estimator"]["num_samples"]
    steps = epochs * train_n * k_train * _BACKWARD_COST
    if tc.get("max_steps"):
        steps = min(steps, tc["max_steps"] * tc["batch_size"] * k_train * _BACKWARD_COST)
    return float(steps + test_n * ec["nll_samples"])


def estimate_seconds(cell: ResolvedCell, earlier: Sequence[RunRecord]) -> Estimate:
    """The expected wall time of `cell` from `earlier` records (any suites; the cell's are used)."""
    same_cell = [r for r in earlier if r.suite == cell.suite and r.cell == cell.cell and r.wall_time_s > 0]
    exact = [r.wall_time_s for r in same_cell if r.config_hash == cell.config_hash]
    if exact:
        return Estimate(statistics.median(exact), f"{len(exact)} earlier run(s) of this exact config")
    same_budget = [r.wall_time_s for r in same_cell if r.budget == cell.budget]
    if cell.task != "train_eval":
        if same_budget:
            return Estimate(statistics.median(same_budget), f"{len(same_budget)} earlier run(s), same budget")
        return Estimate(None, "no earlier run of this cell")
    work = work_units(cell.plain_config())
    scaled = []
    for r in same_cell:
        try:
            before = work_units(r.config)
        except (KeyError, TypeError):  # an older record's config without a section
            continue
        if work is not None and before:
            scaled.append(r.wall_time_s * work / before)
    if scaled:
        return Estimate(
            statistics.median(scaled), f"scaled by work units from {len(scaled)} earlier run(s) of this cell"
        )
    return Estimate(None, "no earlier run of this cell")
