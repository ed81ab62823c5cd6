"""The variational Renyi bound: `renyi`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from torch import Tensor

from ..ops import log_mean_exp
from .base import ESTIMATORS, Estimator, _finite_float

if TYPE_CHECKING:
    from ..log_weights import LogWeights
    from ..models.vae import VAE

__all__ = ["Renyi"]


@ESTIMATORS.register("renyi", "variational Renyi bound VR-alpha; alpha=0 is IWAE, alpha=1 the ELBO (Li & Turner 2016)")
class Renyi(Estimator):
    """The K-sample variational Renyi bound, reparameterized.

        L_alpha(x) = 1/(1 - alpha) log (1/K) sum_k exp((1 - alpha) log w_k),   alpha != 1
        L_1(x) = 1/K sum_k log w_k  (the limit alpha -> 1: the ELBO)

    For the same draws L_alpha is non-increasing in alpha (a power mean of w with exponent
    1 - alpha): alpha = 0 is IWAE_K, alpha = 1 the K-sample ELBO, alpha > 1 below the ELBO.

    Args:
        num_samples: K.
        alpha: >= 0. Negative alpha gives an upper bound of log p(x) in the limit K -> inf
            (VR-max) and is rejected here: use 'iwae' (alpha = 0) for the tightest lower bound.

    Shapes: x: (B, *event) -> bound: (B,), log_w: (K, B).

    References:
        Renyi Divergence Variational Inference, Li, Turner, 2016, arXiv:1602.02311.
    """

    name = "renyi"

    def __init__(self, num_samples: int = 1, alpha: float = 0.5) -> None:
        super().__init__(num_samples)
        alpha = _finite_float(alpha, "renyi: alpha")
        if alpha < 0:
            raise ValueError(
                f"renyi: alpha must be >= 0, got {alpha}; alpha < 0 gives an upper bound of log p(x) "
                "(not a training lower bound): use alpha = 0 (IWAE) for the tightest lower bound"
            )
        self.alpha = alpha

    def objective(self, model: VAE, x: Tensor, lw: LogWeights) -> tuple[Tensor, Tensor]:
        if self.alpha == 1.0:
            bound = lw.log_w.mean(0)
        else:
            bound = log_mean_exp((1.0 - self.alpha) * lw.log_w, 0) / (1.0 - self.alpha)
        return bound, bound
