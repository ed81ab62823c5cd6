"""The radial flow posterior (Rezende & Mohamed 2015), amortized: `radial`."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..initialization import zero_init
from .base import POSTERIORS
from .flow import AmortizedFlow

__all__ = ["RadialFlow", "radial_step"]


@POSTERIORS.register("radial", "radial flow z + beta (z - z0) / (alpha + r), amortized from h")
class RadialFlow(AmortizedFlow):
    """Diagonal Gaussian base, then `num_flows` radial layers with z0, alpha, beta from h.

        f(z) = z + beta h(alpha, r) (z - z0),   h = 1 / (alpha + r),   r = |z - z0|
        log|det df/dz| = (D - 1) log(1 + beta h) + log(1 + beta h + beta h' r)

    alpha = softplus(.) > 0 and beta = -alpha + softplus(.) >= -alpha keep f invertible.
    Substituting beta, both factors become ratios of non-negative terms,
        1 + beta h = (r + softplus_beta) / (alpha + r)
        1 + beta h + beta h' r = (r (2 alpha + r) + alpha softplus_beta) / (alpha + r)^2
    which is how they are evaluated: finite at the centre r = 0 and for large r.

    Shapes: h: (B, H) -> z: (K, B, D), log_q: (K, B); z0: (B, num_flows, D).

    References:
        Variational Inference with Normalizing Flows. Rezende, Mohamed, 2015. arXiv:1505.05770.
    """

    def __init__(self, feature_dim: int, latent_dim: int, num_flows: int = 4) -> None:
        super().__init__(feature_dim, latent_dim, num_flows)
        if num_flows:  # zero-width Linear layers warn at init
            self.centre = nn.Linear(feature_dim, num_flows * latent_dim)
            self.alpha = nn.Linear(feature_dim, num_flows)
            self.beta = nn.Linear(feature_dim, num_flows)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Glorot centres; zero alpha and beta heads, so beta = softplus(0) - softplus(0) = 0:
        every layer starts at the identity."""
        super().reset_parameters()
        if self.num_flows:
            zero_init(self.alpha)
            zero_init(self.beta)

    def flow_params(self, h: Tensor) -> list[tuple[Tensor, Tensor, Tensor]]:
        """(centre, alpha, beta) of every layer: (B, D), (B,), (B,), split once with `unbind`
        (one stack in the backward, where per-layer selects would each write a zero-filled copy)."""
        centre = self.centre(h).view(h.shape[0], self.num_flows, self.latent_dim)
        return list(zip(centre.unbind(1), self.alpha(h).unbind(1), self.beta(h).unbind(1), strict=True))

    def layer(self, index: int, z: Tensor, params: list[tuple[Tensor, Tensor, Tensor]]) -> tuple[Tensor, Tensor]:
        return radial_step(z, *params[index])


def radial_step(z: Tensor, centre: Tensor, alpha_raw: Tensor, beta_raw: Tensor) -> tuple[Tensor, Tensor]:
    """One radial layer from unconstrained parameters (alpha, beta mapped as in the class).

    Shapes: z: (K, B, D), centre: (B, D), alpha_raw, beta_raw: (B,) -> (K, B, D), (K, B).
    """
    tiny = torch.finfo(z.dtype).tiny
    alpha = F.softplus(alpha_raw).clamp_min(tiny)
    sp_beta = F.softplus(beta_raw).clamp_min(tiny)
    beta = sp_beta - alpha
    diff = z - centre
    r = torch.linalg.vector_norm(diff, dim=-1)  # its gradient at r = 0 is 0, not NaN
    alpha_r = alpha + r
    z_new = z + (beta / alpha_r).unsqueeze(-1) * diff
    d = z.shape[-1]
    log_det = (d - 1) * (torch.log(r + sp_beta) - torch.log(alpha_r))
    log_det = log_det + torch.log(r * (2.0 * alpha + r) + alpha * sp_beta) - 2.0 * torch.log(alpha_r)
    return z_new, log_det
