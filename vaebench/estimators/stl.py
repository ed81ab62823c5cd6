"""Sticking the landing, the path-derivative gradient: `stl`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from torch import Tensor

from ..ops import log_mean_exp
from .base import ESTIMATORS, Estimator

if TYPE_CHECKING:
    from ..log_weights import LogWeights
    from ..models.vae import VAE

__all__ = ["STL"]


@ESTIMATORS.register("stl", "sticking the landing: log q with its parameters stopped (Roeder et al. 2017)")
class STL(Estimator):
    """The reparameterized gradient without the score term of log q.

        grad ~ 1/K sum_k grad_phi [log p(x, z_k(phi)) - log q_{stop(phi)}(z_k(phi))]

    The dropped term -grad_phi log q_phi(z) at fixed z has zero mean, so for the ELBO the
    estimator is unbiased, and its variance vanishes when q equals the posterior. With
    `importance_weighted=True` the bound is IWAE_K and the gradient sum_k w~_k grad log w_k
    with stopped log q: lower variance but biased for IWAE (use 'dreg' for unbiased).
    Needs a family with log_prob.

    Args:
        num_samples: K.
        importance_weighted: the IWAE bound (True) or the K-sample ELBO (False, the default).

    Shapes: x: (B, *event) -> bound: (B,), log_w: (K, B).

    References:
        Sticking the Landing: Simple, Lower-Variance Gradient Estimators for Variational
        Inference, Roeder, Wu, Duvenaud, 2017, arXiv:1703.09194.
    """

    name = "stl"
    needs_log_prob = True
    stop_q_params = True

    def __init__(self, num_samples: int = 1, importance_weighted: bool = False) -> None:
        super().__init__(num_samples)
        self.importance_weighted = bool(importance_weighted)

    def objective(self, model: VAE, x: Tensor, lw: LogWeights) -> tuple[Tensor, Tensor]:
        bound = log_mean_exp(lw.log_w, 0) if self.importance_weighted else lw.log_w.mean(0)
        return bound, bound
