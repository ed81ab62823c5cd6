"""The ELBO with a Monte Carlo KL term: `elbo_mc`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from torch import Tensor

from .base import ESTIMATORS, Estimator, _finite_float

if TYPE_CHECKING:
    from ..log_weights import LogWeights
    from ..models.vae import VAE

__all__ = ["ELBOMC"]


@ESTIMATORS.register("elbo_mc", "ELBO with a Monte Carlo KL: the mean of K log weights (any family)")
class ELBOMC(Estimator):
    """The evidence lower bound estimated from K reparameterized draws, KL included.

        ELBO(x) ~ 1/K sum_k [log p(x | z_k) + log p(z_k) - log q(z_k | x)],   z_k ~ q(z | x)

    Works for every family (flows, hierarchies). With K = 1 it equals 'iwae' with K = 1.

    Args:
        num_samples: K.
        kl_weight: beta in E[log p(x | z) + beta (log p(z) - log q(z | x))] for KL warm-up;
            `bound` always reports the beta = 1 ELBO.

    Shapes: x: (B, *event) -> bound: (B,), log_w: (K, B).

    References:
        Auto-Encoding Variational Bayes, Kingma, Welling, 2013, arXiv:1312.6114.
    """

    name = "elbo_mc"

    def __init__(self, num_samples: int = 1, kl_weight: float = 1.0) -> None:
        super().__init__(num_samples)
        self.kl_weight = _finite_float(kl_weight, "elbo_mc: kl_weight")

    def objective(self, model: VAE, x: Tensor, lw: LogWeights) -> tuple[Tensor, Tensor]:
        bound = lw.log_w.mean(0)
        if self.kl_weight == 1.0:
            return bound, bound
        return bound, (lw.log_px_z + self.kl_weight * (lw.log_pz - lw.log_q)).mean(0)
