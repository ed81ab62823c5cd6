"""The planar flow posterior (Rezende & Mohamed 2015), amortized: `planar`."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .base import POSTERIORS
from .flow import AmortizedFlow

__all__ = ["PlanarFlow", "constrain_u", "planar_step"]

_LOG_E_MINUS_1 = math.log(math.e - 1.0)  # softplus(a) = 1, so m(a) = 0: the identity


@POSTERIORS.register("planar", "planar flow z + u_hat tanh(w.z + b), amortized from h")
class PlanarFlow(AmortizedFlow):
    """Diagonal Gaussian base, then `num_flows` planar layers with u, w, b linear in h.

        f(z) = z + u_hat tanh(w.z + b)
        u_hat = u + (m(w.u) - w.u) w / |w|^2,   m(a) = -1 + softplus(a)
        log|det df/dz| = log|1 + u_hat.psi|,   psi = (1 - tanh^2(w.z + b)) w

    u_hat makes w.u_hat = m(w.u) > -1, so f is invertible. The log-determinant is evaluated
    as log(t^2 + (1 - t^2) softplus(w.u)) with t = tanh(w.z + b), the same quantity without
    the cancellation in 1 + u_hat.psi when w.u_hat is near -1 (saturated m) and t near 0.
    |w|^2 is floored at the dtype's eps so that w = 0 (a pure shift) stays finite.

    Shapes: h: (B, H) -> z: (K, B, D), log_q: (K, B); u, w: (B, num_flows, D).

    References:
        Variational Inference with Normalizing Flows. Rezende, Mohamed, 2015. arXiv:1505.05770.
    """

    def __init__(self, feature_dim: int, latent_dim: int, num_flows: int = 4) -> None:
        super().__init__(feature_dim, latent_dim, num_flows)
        if num_flows:  # zero-width Linear layers warn at init
            self.u = nn.Linear(feature_dim, num_flows * latent_dim)
            self.w = nn.Linear(feature_dim, num_flows * latent_dim)
            self.b = nn.Linear(feature_dim, num_flows)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Start every layer at the identity: u_hat = 0 needs w.u = log(e - 1) (where
        m(w.u) = 0), which a head linear in h cannot give for every h unless w is constant.
        So the w and u heads start with zero weights and biases w0 ~ N(0, I/D) and
        u0 = log(e - 1) w0 / |w0|^2: u_hat = 0, f(z) = z and log|det| = 0 for every input,
        while every head still gets a gradient (zero u, w would not: u_hat would then be
        (log 2 - 1) w / |w|^2, a contraction along w that blows up as w -> 0)."""
        super().reset_parameters()
        if not self.num_flows:
            return
        d = self.latent_dim
        with torch.no_grad():
            nn.init.zeros_(self.u.weight)
            nn.init.zeros_(self.w.weight)
            w0 = torch.randn(self.num_flows, d, dtype=self.w.bias.dtype) / math.sqrt(d)
            u0 = _LOG_E_MINUS_1 * w0 / w0.square().sum(-1, keepdim=True)
            self.w.bias.copy_(w0.reshape(-1))
            self.u.bias.copy_(u0.reshape(-1))

    def flow_params(self, h: Tensor) -> list[tuple[Tensor, Tensor, Tensor]]:
        """(u, w, b) of every layer: (B, D), (B, D), (B,). Split once with `unbind`, whose backward
        is one stack: a per-layer select's backward writes a zero-filled (B, num_flows, D) copy."""
        shape = (h.shape[0], self.num_flows, self.latent_dim)
        return list(
            zip(self.u(h).view(shape).unbind(1), self.w(h).view(shape).unbind(1), self.b(h).unbind(1), strict=True)
        )

    def layer(self, index: int, z: Tensor, params: list[tuple[Tensor, Tensor, Tensor]]) -> tuple[Tensor, Tensor]:
        return planar_step(z, *params[index])


def constrain_u(u: Tensor, w: Tensor) -> tuple[Tensor, Tensor]:
    """u_hat = u + (m(w.u) - w.u) w / |w|^2 and 1 + w.u_hat (> 0: the invertibility margin).

    1 + w.u_hat is returned as (1 - ratio)(1 + w.u) + ratio softplus(w.u), ratio =
    |w|^2 / max(|w|^2, eps), which is softplus(w.u) > 0 without cancellation when |w|^2 is
    above the floor; below it u_hat moves only part of the way (and w = 0 leaves u as is).

    Shapes: u, w: (B, D) -> u_hat: (B, D), one_plus_wu_hat: (B,).
    """
    a = (w * u).sum(-1)
    w_sq = w.square().sum(-1)
    w_sq_floor = w_sq.clamp_min(torch.finfo(w.dtype).eps)
    ratio = w_sq / w_sq_floor
    sp = F.softplus(a)
    u_hat = u + ((sp - 1.0 - a) / w_sq_floor).unsqueeze(-1) * w
    return u_hat, (1.0 - ratio) * (1.0 + a) + ratio * sp


def planar_step(z: Tensor, u: Tensor, w: Tensor, b: Tensor) -> tuple[Tensor, Tensor]:
    """One planar layer with its invertibility constraint applied to u.

    Shapes: z: (K, B, D), u, w: (B, D), b: (B,) -> f(z): (K, B, D), log|det|: (K, B).
    """
    u_hat, one_plus_wu_hat = constrain_u(u, w)
    t = torch.tanh((z * w).sum(-1) + b)
    z_new = z + t.unsqueeze(-1) * u_hat
    # 1 + u_hat.psi = t^2 + (1 - t^2)(1 + w.u_hat): a sum of non-negative terms.
    t_sq = t.square()
    det = t_sq + (1.0 - t_sq) * one_plus_wu_hat
    return z_new, det.clamp_min(torch.finfo(det.dtype).tiny).log()
