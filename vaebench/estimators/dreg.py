"""Doubly reparameterized gradients for the IWAE bound: `dreg`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from torch import Tensor

from ..ops import importance_weights, log_mean_exp
from .base import ESTIMATORS, Estimator

if TYPE_CHECKING:
    from ..log_weights import LogWeights
    from ..models.vae import VAE

__all__ = ["DReG"]


@ESTIMATORS.register("dreg", "doubly reparameterized IWAE gradient, unbiased and lower variance (Tucker et al. 2018)")
class DReG(Estimator):
    """The IWAE bound with the doubly reparameterized encoder gradient.

    Encoder (phi), with normalized weights w~_k and log q evaluated with phi stopped:
        grad_phi ~ sum_k stopgrad(w~_k^2) grad_phi [log p(x, z_k(phi)) - log q_{stop(phi)}(z_k(phi))]
    Decoder (theta): the ordinary IWAE gradient sum_k w~_k grad_theta log p(x, z_k).
    Both are unbiased for the gradient of IWAE_K; the encoder's SNR no longer falls with K.

    With one latent layer this takes one pass: the surrogate is sum_k stopgrad(w~_k) log w_k
    (stopped log q) and a gradient hook multiplies dL/dz_k by w~_k, turning the encoder's
    w~_k into w~_k^2. With several layers (z1 feeds q(z2 | z1)) a hook would scale twice,
    so the decoder term is corrected by a second pass with stopped latents:
        sum_k stopgrad(w~_k^2) log w_k + stopgrad(w~_k - w~_k^2) log p(x, stopgrad(z_k)).
    Needs a family with log_prob.

    Args:
        num_samples: K.
        single_pass: use the hook where the model has one latent layer and the family's stopped
            log q flows through z (`Posterior.path_gradient_through_z`); False always takes
            the two-pass form. Both give the same gradient.

    Shapes: x: (B, *event) -> bound: (B,), log_w: (K, B).

    References:
        Doubly Reparameterized Gradient Estimators for Monte Carlo Objectives, Tucker, Lawson,
        Gu, Maddison, 2018, arXiv:1810.04152.
    """

    name = "dreg"
    needs_log_prob = True
    stop_q_params = True

    def __init__(self, num_samples: int = 1, single_pass: bool = True) -> None:
        super().__init__(num_samples)
        self.single_pass = bool(single_pass)

    def objective(self, model: VAE, x: Tensor, lw: LogWeights) -> tuple[Tensor, Tensor]:
        w, _ = importance_weights(lw.log_w.detach(), 0)  # (K, B), sums to 1 over K
        z = lw.latents[0] if lw.latents else lw.z
        # The hook sees log q's path derivative only where it flows through z in the graph; the
        # fused diagonal kernel computes it internally, so that family takes the two-pass form.
        if self.single_pass and len(lw.latents) <= 1 and model.posterior.path_gradient_through_z(z):
            if z.requires_grad:
                z.register_hook(lambda grad: grad * w.unsqueeze(-1))
            grad_term = (w * lw.log_w).sum(0)
        else:
            stopped = tuple(latent.detach() for latent in lw.latents)
            log_px_z, log_pz = model.log_joint(x, stopped)
            grad_term = (w.square() * lw.log_w).sum(0) + ((w - w.square()) * (log_px_z + log_pz)).sum(0)
        return log_mean_exp(lw.log_w.detach(), 0), grad_term
