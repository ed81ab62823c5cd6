"""One-pass log-mean-exp over K importance weights: `vaebench::log_mean_exp`, and the
normalized weights with their effective sample size: `importance_weights`.

NOTE (skeleton): only the reference path is wired so far.
"""

from __future__ import annotations

from torch import Tensor

from .reference import importance_weights_reference, log_mean_exp_reference

__all__ = ["importance_weights", "log_mean_exp"]


def log_mean_exp(log_w: Tensor, dim: int = 0) -> Tensor:
    """log (1/K) sum_k exp(log_w_k) along `dim`; the IWAE bound from log-weights.

    Shapes: log_w: (..., K, ...) -> without `dim`. Backward: the self-normalized weights.
    """
    return log_mean_exp_reference(log_w, dim)


def importance_weights(log_w: Tensor, dim: int = 0) -> tuple[Tensor, Tensor]:
    """Normalized weights w (like log_w) and effective sample size 1 / sum w^2 (without `dim`)."""
    return importance_weights_reference(log_w, dim)
