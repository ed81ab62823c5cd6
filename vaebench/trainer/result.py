"""What a training run produced: `TrainResult` (per-epoch curves, steps, best epoch, convergence)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from .convergence import Convergence

__all__ = ["TrainResult"]


@dataclass
class TrainResult:
    """What a run produced. `curves` has one entry per epoch under each key:
    epoch, steps, train_bound (mean estimator bound over the epoch's minibatches; the
    unweighted bound even during KL warm-up, which only scales the surrogate), valid_bound
    (NaN without validation data), lr, kl_weight (at the epoch's end), seconds (the epoch's
    wall time), examples_per_second."""

    curves: dict[str, list[float]]
    epochs: int
    steps: int
    seconds: float
    best_epoch: int | None = None
    best_valid_bound: float | None = None
    stopped_early: bool = False
    resumed_from: int | None = None
    checkpoint: str | None = None
    convergence: Convergence | None = None

    @property
    def converged(self) -> bool:
        """The ConvergenceRule's verdict on the validation curve (False without one)."""
        return self.convergence is not None and self.convergence.converged

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)
