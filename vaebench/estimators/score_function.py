"""The score-function (REINFORCE) gradient of the ELBO with a leave-one-out baseline: `score_function`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

import torch
from torch import Tensor

from ..log_weights import LogWeights
from .base import ESTIMATORS, Estimator

if TYPE_CHECKING:
    from ..models.vae import VAE

__all__ = ["ScoreFunction"]


@ESTIMATORS.register("score_function", "REINFORCE gradient of the K-sample ELBO with a leave-one-out baseline")
class ScoreFunction(Estimator):
    """The score-function gradient of the ELBO: no reparameterization of z.

    With z_k ~ q(z | x) drawn without gradient and f_k = log w_k:
        grad_phi ~ 1/K sum_k [(f_k - b_k) grad_phi log q(z_k | x) - grad_phi log q(z_k | x)]
        grad_theta ~ 1/K sum_k grad_theta log p(x, z_k)
    The baseline is leave-one-out, b_k = 1/(K-1) sum_{j != k} f_j: independent of z_k, so the
    estimator stays unbiased, and it needs K >= 2. `baseline="none"` (b_k = 0) allows K = 1
    and shows the raw estimator's variance. Needs a family with log_prob.

    Args:
        num_samples: K.
        baseline: "leave_one_out" (K >= 2), "none", or "auto" (the default: leave-one-out
            for K >= 2, none for K = 1, so a sweep over K can include K = 1); the one in use
            is `self.baseline`.

    Shapes: x: (B, *event) -> bound: (B,), log_w: (K, B).

    References:
        Simple Statistical Gradient-Following Algorithms for Connectionist Reinforcement
        Learning, Williams, 1992 (Machine Learning 8; no arXiv id). Leave-one-out baseline:
        Buy 4 REINFORCE Samples, Get a Baseline for Free!, Kool, van Hoof, Welling, 2019
        (ICLR workshop; no arXiv id).
    """

    name = "score_function"
    needs_log_prob = True

    def __init__(self, num_samples: int = 2, baseline: Literal["auto", "leave_one_out", "none"] = "auto") -> None:
        super().__init__(num_samples)
        if baseline not in ("auto", "leave_one_out", "none"):
            raise ValueError(f"score_function: baseline must be 'auto', 'leave_one_out' or 'none', got {baseline!r}")
        if baseline == "auto":
            baseline = "leave_one_out" if num_samples >= 2 else "none"
        if baseline == "leave_one_out" and num_samples < 2:
            raise ValueError(
                "score_function: the leave-one-out baseline needs num_samples >= 2, got "
                f"{num_samples}; use num_samples >= 2 or baseline='none'"
            )
        self.baseline = baseline

    def log_weights(self, model: VAE, x: Tensor) -> LogWeights:
        """The weights of draws taken without gradient: z carries no reparameterization path, so
        log q's gradient is the score. Shapes: x: (B, *event) -> LogWeights (K, B)."""
        model.check_input(x)
        with torch.no_grad():
            latents, _ = model.sample_latents(x, self.num_samples)
        log_q = model.log_q(x, latents)
        log_px_z, log_pz = model.log_joint(x, latents)
        return LogWeights(log_px_z + log_pz - log_q, log_px_z, log_pz, log_q, latents[-1], latents)

    def objective(self, model: VAE, x: Tensor, lw: LogWeights) -> tuple[Tensor, Tensor]:
        f = lw.log_w.detach()
        if self.baseline == "leave_one_out":
            b = (f.sum(0, keepdim=True) - f) / (self.num_samples - 1)
        else:
            b = torch.zeros_like(f)
        return f.mean(0), ((f - b) * lw.log_q + lw.log_w).mean(0)
