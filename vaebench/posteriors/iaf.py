"""Inverse autoregressive flow (Kingma et al. 2016) with context from h: `iaf`."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..initialization import zero_init
from .base import POSTERIORS
from .flow import AmortizedFlow
from .made import MADE

__all__ = ["IAF", "iaf_step"]


@POSTERIORS.register("iaf", "inverse autoregressive flow: gated MADE steps with context h")
class IAF(AmortizedFlow):
    """Diagonal Gaussian base, then `num_flows` gated IAF steps, each a MADE of z with the
    encoder features h as context.

        [m, s] = MADE_t(z, h)   (h added to the first hidden layer)
        sigma = sigmoid(s + forget_bias)
        z <- sigma * z + (1 - sigma) * m
        log|det| = sum_D log sigma
    and the order of z is reversed between steps (a permutation: |det| = 1). The Jacobian of
    a step is triangular because m_i, s_i depend on z_{<i} only. log sigma is logsigmoid and
    1 - sigma is sigmoid(-(s + forget_bias)), so saturated gates stay finite.
    `forget_bias` (a constant, 1 to 2 in the paper; 3 by default here, see `reset_parameters`)
    starts each step near the identity.

    No cheap inverse (inverting is D sequential MADE passes), so `has_log_prob` is False.

    Shapes: h: (B, H) -> z: (K, B, D), log_q: (K, B).

    References:
        Improved Variational Inference with Inverse Autoregressive Flow. Kingma, Salimans,
            Jozefowicz, Chen, Sutskever, Welling, 2016. arXiv:1606.04934.
    """

    def __init__(
        self,
        feature_dim: int,
        latent_dim: int,
        num_flows: int = 4,
        *,
        hidden: int = 64,
        num_hidden_layers: int = 1,
        forget_bias: float = 3.0,
    ) -> None:
        super().__init__(feature_dim, latent_dim, num_flows)
        self.forget_bias = float(forget_bias)
        self.steps = nn.ModuleList(
            MADE(
                latent_dim,
                hidden,
                num_hidden_layers=num_hidden_layers,
                context_features=feature_dim,
                num_outputs=2,
            )
            for _ in range(num_flows)
        )
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Glorot MADE layers (masked, the context included), the MADE output zero: m = s = 0,
        so each step is z <- sigmoid(forget_bias) z and q at init is the base scaled by
        c = sigmoid(forget_bias)^T (order reversed T - 1 times): still a diagonal Gaussian,
        N(c mu, c^2 sigma^2), with log q = log q0 - D T log sigmoid(forget_bias). The default
        forget bias 3 (c = 0.953 per step) keeps q near the base; with 1 (c = 0.73) and a
        random MADE output IAF started 14 to 40 nats of KL from it and trained 3.9 nats
        behind diagonal at the quick budget (issue 10)."""
        super().reset_parameters()
        for made in self.steps:
            assert isinstance(made, MADE)
            zero_init(made.output)

    def flow_params(self, h: Tensor) -> Tensor:
        return h

    def layer(self, index: int, z: Tensor, params: Tensor) -> tuple[Tensor, Tensor]:
        out = self.steps[index](z, params)
        z_new, log_det = iaf_step(z, out[..., 0, :], out[..., 1, :], self.forget_bias)
        if index < self.num_flows - 1:
            z_new = z_new.flip(-1)
        return z_new, log_det

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, forget_bias={self.forget_bias}"


def iaf_step(z: Tensor, m: Tensor, s: Tensor, forget_bias: float) -> tuple[Tensor, Tensor]:
    """z' = sigma z + (1 - sigma) m, sigma = sigmoid(s + forget_bias); log|det| = sum log sigma.

    Shapes: z, m, s: (K, B, D) -> z': (K, B, D), log|det|: (K, B).
    """
    gate = s + forget_bias
    z_new = torch.sigmoid(gate) * z + torch.sigmoid(-gate) * m
    return z_new, F.logsigmoid(gate).sum(-1)
