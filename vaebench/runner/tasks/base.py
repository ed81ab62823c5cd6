"""A task: what a suite cell does, by the suite's `task` (train_eval, gradients, kernels, exact).

A task receives the resolved cell and a RunContext and returns a TaskResult (metrics with
standard errors, per-epoch curves, notes, artifact paths). It reaches the components only
through `vaebench.runner.adapters`. Each task is one module of this package, registered in
TASKS by name.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ...registry import Registry
from ...results import Metric
from ..resolve import ResolvedCell

__all__ = ["TASKS", "RunContext", "Task", "TaskResult"]


@dataclass
class RunContext:
    """Where a run writes (run_dir: checkpoints, plots) and how it reports."""

    results_dir: Path
    run_dir: Path
    device: torch.device
    progress: bool

    def artifact(self, path: Path) -> str:
        """`path` as a record stores it: relative to the results folder when inside it."""
        try:
            return str(path.resolve().relative_to(self.results_dir.resolve()))
        except ValueError:
            return str(path)


@dataclass
class TaskResult:
    """What a task measured; per_example and test_points as in vaebench.results.RunRecord."""

    metrics: dict[str, Metric] = field(default_factory=dict)
    curves: dict[str, list[float]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    artifacts: dict[str, str] = field(default_factory=dict)
    per_example: dict[str, list[float]] = field(default_factory=dict)
    test_points: dict[str, Any] = field(default_factory=dict)


Task = Callable[[ResolvedCell, RunContext], TaskResult]
TASKS: Registry[Task] = Registry("task")
