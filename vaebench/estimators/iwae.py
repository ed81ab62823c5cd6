"""The importance-weighted bound: `iwae`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from torch import Tensor

from ..ops import log_mean_exp
from .base import ESTIMATORS, Estimator

if TYPE_CHECKING:
    from ..log_weights import LogWeights
    from ..models.vae import VAE

__all__ = ["IWAE"]


@ESTIMATORS.register("iwae", "importance-weighted bound log (1/K) sum_k w_k, reparameterized (Burda et al. 2015)")
class IWAE(Estimator):
    """The K-sample importance-weighted bound and its reparameterized gradient.

        IWAE_K(x) = log (1/K) sum_k exp(log w_k),  log w_k = log p(x, z_k) - log q(z_k | x)

    IWAE_1 is the ELBO; IWAE_K is non-decreasing in K and tends to log p(x). The gradient is
    sum_k w~_k grad log w_k (w~ the normalized weights), through `vaebench.ops.log_mean_exp`.

    Shapes: x: (B, *event) -> bound: (B,), log_w: (K, B).

    References:
        Importance Weighted Autoencoders, Burda, Grosse, Salakhutdinov, 2015, arXiv:1509.00519.
    """

    name = "iwae"

    def objective(self, model: VAE, x: Tensor, lw: LogWeights) -> tuple[Tensor, Tensor]:
        bound = log_mean_exp(lw.log_w, 0)
        return bound, bound
