"""When a run stops and whether it converged: early stopping and the convergence rule, both
over its per-epoch validation bound.

Early stopping (`EarlyStopping`) ends a run after `patience` epochs without a better
validation bound; the loop then restores the best model.

A run has converged when the best validation bound stopped moving: either early stopping
ended it (`patience` epochs without a better bound), or the best bound gained less than
`tol` nats per example over the last `window` epochs,

    improvement = max_{e <= E} v_e - max_{e <= E - window} v_e  <  tol,

with v_e the validation bound (higher is better) after epoch e and E the last epoch. A run
shorter than `window + 1` epochs has not shown that it converged. The absolute tolerance in
nats is deliberate: a test NLL is compared across cells in nats, and a bound still rising by
more than `tol` would move the ranking by about that much.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["Convergence", "ConvergenceRule", "EarlyStopping"]


@dataclass
class EarlyStopping:
    """The early-stopping state of a run: the best validation bound so far (higher is better),
    its epoch, the epochs since, and whether `patience` such epochs ended the run (None: never).

    Its fields are stored in checkpoints under these names, so a resumed run continues the count.
    """

    patience: int | None = None
    best_valid: float = -math.inf
    best_epoch: int | None = None
    bad_epochs: int = 0
    stopped_early: bool = False

    def update(self, valid: float, epoch: int) -> bool:
        """Take the bound after `epoch` (1-based); True when it is the best so far (NaN: no bound, False)."""
        if math.isnan(valid):
            return False
        if valid > self.best_valid:
            self.best_valid, self.best_epoch, self.bad_epochs = valid, epoch, 0
            return True
        self.bad_epochs += 1
        self.stopped_early = self.patience is not None and self.bad_epochs >= self.patience
        return False


@dataclass(frozen=True)
class Convergence:
    """The verdict: converged or not, the best bound's gain over the window (nats per example,
    NaN when the run is too short), the window and tolerance used, and why."""

    converged: bool
    improvement: float
    window: int
    tol: float
    reason: str


@dataclass(frozen=True)
class ConvergenceRule:
    """window: epochs the best validation bound is watched over; tol: the largest gain in
    nats per example over that window that still counts as converged."""

    window: int = 20
    tol: float = 0.1

    def __post_init__(self) -> None:
        if isinstance(self.window, bool) or not isinstance(self.window, int) or self.window < 1:
            raise ValueError(f"ConvergenceRule.window must be an int >= 1, got {self.window!r}")
        if not self.tol > 0:
            raise ValueError(f"ConvergenceRule.tol must be > 0 nats, got {self.tol!r}")

    def check(self, valid_bound: Sequence[float], *, stopped_early: bool = False) -> Convergence:
        """The verdict for a run with per-epoch validation bounds `valid_bound` (E,)."""
        v = [float(x) for x in valid_bound]
        if not v or all(math.isnan(x) for x in v):
            return Convergence(False, math.nan, self.window, self.tol, "no validation bound recorded")
        if len(v) <= self.window:
            return Convergence(
                bool(stopped_early),
                math.nan,
                self.window,
                self.tol,
                f"early stopping ended it after {len(v)} epochs"
                if stopped_early
                else f"{len(v)} epochs, fewer than window + 1 = {self.window + 1}",
            )
        best_all = max(x for x in v if not math.isnan(x))
        earlier = [x for x in v[: len(v) - self.window] if not math.isnan(x)]
        best_before = max(earlier) if earlier else -math.inf
        improvement = best_all - best_before
        if stopped_early:
            return Convergence(
                True, improvement, self.window, self.tol, "early stopping (no better bound for patience epochs)"
            )
        ok = improvement < self.tol
        return Convergence(
            ok,
            improvement,
            self.window,
            self.tol,
            f"best validation bound gained {improvement:.3f} nats over the last {self.window} epochs "
            f"({'<' if ok else '>='} {self.tol})",
        )
