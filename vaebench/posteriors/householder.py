"""The Householder flow posterior (Tomczak & Welling 2016): `householder`."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..ops import gaussian_kl
from .base import POSTERIORS
from .flow import AmortizedFlow

__all__ = ["HouseholderFlow", "reflect"]


@POSTERIORS.register("householder", "Householder flow: volume-preserving reflections, v_1 from h")
class HouseholderFlow(AmortizedFlow):
    """Diagonal Gaussian base, then `num_flows` Householder reflections.

        z_t = (I - 2 v_t v_t^T / |v_t|^2) z_{t-1},   v_1 = Linear(h),  v_{t+1} = Linear_t(v_t)
        log|det| = 0 (each reflection is orthogonal)

    A reflection is its own inverse, so log q(z) = log q0(H_1 ... H_T z) is tractable and
    `has_log_prob` is True (STL and DReG can use this family). q is the Gaussian
    N(U mu, U diag(sigma^2) U^T), U = H_T ... H_1, so KL(q || N(0, I)) is analytic too.

    Shapes: h: (B, H) -> z: (K, B, D), log_q: (K, B); v_t: (B, D).

    References:
        Improving Variational Auto-Encoders using Householder Flow. Tomczak, Welling, 2016.
            arXiv:1611.09630.
    """

    has_log_prob = True

    def __init__(self, feature_dim: int, latent_dim: int, num_flows: int = 4) -> None:
        super().__init__(feature_dim, latent_dim, num_flows)
        self.first = nn.Linear(feature_dim, latent_dim) if num_flows else None
        self.next = nn.ModuleList(nn.Linear(latent_dim, latent_dim) for _ in range(max(num_flows - 1, 0)))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Glorot v_1 head; every v_{t+1} = Linear_t(v_t) starts as the identity map, so all
        v_t are equal and consecutive reflections cancel: an even number of steps starts at
        the base exactly, an odd number at one reflection of it (a rotation of the base: the
        same KL and entropy, log|det| = 0)."""
        super().reset_parameters()
        with torch.no_grad():
            for linear in self.next:
                assert isinstance(linear, nn.Linear)
                linear.weight.copy_(torch.eye(self.latent_dim, dtype=linear.weight.dtype))
                nn.init.zeros_(linear.bias)

    def flow_params(self, h: Tensor) -> list[Tensor]:
        if self.first is None:
            return []
        vs = [self.first(h)]
        for linear in self.next:
            vs.append(linear(vs[-1]))
        return vs

    def layer(self, index: int, z: Tensor, params: list[Tensor]) -> tuple[Tensor, Tensor]:
        return reflect(z, params[index]), z.new_zeros(z.shape[:-1])

    def kl_to_prior(self, h: Tensor) -> Tensor:
        """KL(q || N(0, I)) = KL(q0 || N(0, I)): U is orthogonal and N(0, I) is invariant
        under it, so the flow changes neither term of the KL. Through the fused gaussian_kl."""
        self.check_features(h)
        return gaussian_kl(*self.base.params(h, self.family_name()))

    def log_prob(self, z: Tensor, h: Tensor) -> Tensor:
        self.check_features(h)
        self.check_latent("z", z, h)
        mu, logvar = self.base.params(h, self.family_name())
        for v in reversed(self.flow_params(h)):
            z = reflect(z, v)
        return self.base.log_prob_given(z, mu, logvar)


def reflect(z: Tensor, v: Tensor) -> Tensor:
    """(I - 2 v v^T / |v|^2) z; v = 0 (floored norm) leaves z unchanged instead of NaN.

    Shapes: z: (K, B, D), v: (B, D) -> (K, B, D).
    """
    unit = v / torch.linalg.vector_norm(v, dim=-1, keepdim=True).clamp_min(torch.finfo(v.dtype).tiny)
    return z - 2.0 * (z * unit).sum(-1, keepdim=True) * unit
