"""Exact streaming log-mean-exp over importance weights that arrive in chunks of K.

Keeps, per example, L1 = logsumexp_k(log_w_k) and L2 = logsumexp_k(2 log_w_k) and merges
chunks with logaddexp, so K = 5000 samples never have to be in memory at once and the result
equals the one-shot log-mean-exp up to rounding.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from ..ops import log_mean_exp

__all__ = ["LogWeightAccumulator"]


class LogWeightAccumulator:
    """Running log-mean-exp, effective sample size and Monte Carlo error of log p̂(x).

        log p̂(x) = L1 - log K,       ESS = exp(2 L1 - L2) = (sum w)^2 / sum w^2,
        Var[log p̂(x)] ≈ Var(w) / (K E[w]^2) = (K / ESS - 1) / K      (delta method).

    Shapes: each `update(log_w)` takes log_w: (k, B); results are (B,).

    References:
        Importance Weighted Autoencoders, Burda, Grosse, Salakhutdinov, 2015, arXiv:1509.00519.
    """

    def __init__(self) -> None:
        self.count = 0
        self._l1: Tensor | None = None
        self._l2: Tensor | None = None

    def update(self, log_w: Tensor) -> None:
        """Fold in a chunk of log weights log_w: (k, B)."""
        if log_w.dim() != 2 or log_w.shape[0] < 1:
            raise ValueError(f"log_w must be (k, B) with k >= 1, got shape {tuple(log_w.shape)}")
        if self._l1 is not None and log_w.shape[1] != self._l1.shape[0]:
            raise ValueError(
                f"log_w must have B = {self._l1.shape[0]} columns like earlier chunks, got {log_w.shape[1]}"
            )
        k = log_w.shape[0]
        log_k = math.log(k)
        # The op (fused where built) gives log-mean-exp; + log k turns it into logsumexp.
        l1 = log_mean_exp(log_w, 0) + log_k
        l2 = log_mean_exp(2.0 * log_w, 0) + log_k
        if self._l1 is None or self._l2 is None:
            self._l1, self._l2 = l1, l2
        else:
            self._l1 = torch.logaddexp(self._l1, l1)
            self._l2 = torch.logaddexp(self._l2, l2)
        self.count += k

    def _sums(self) -> tuple[Tensor, Tensor]:
        """The running logsumexp of w and of w^2: (B,) each, once a chunk has come."""
        if self._l1 is None or self._l2 is None:
            raise RuntimeError("LogWeightAccumulator has no chunks yet: call update(log_w) first")
        return self._l1, self._l2

    def log_mean_exp(self) -> Tensor:
        """log (1/K) sum_k w_k over all chunks so far: (B,)."""
        l1, _ = self._sums()
        return l1 - math.log(self.count)

    def ess(self) -> Tensor:
        """Effective sample size (sum w)^2 / sum w^2 in [1, K]; 0 where every weight is 0: (B,)."""
        l1, l2 = self._sums()
        ess = torch.exp(2.0 * l1 - l2)
        return torch.where(torch.isneginf(l1), torch.zeros_like(ess), ess)

    def mc_std(self) -> Tensor:
        """Delta-method standard deviation of log p̂(x) as an estimator: sqrt((K/ESS - 1)/K): (B,)."""
        ess = self.ess()
        k = float(self.count)
        var = (k / ess - 1.0).clamp_min(0.0) / k
        return torch.where(ess > 0, var.sqrt(), torch.full_like(var, math.inf))
