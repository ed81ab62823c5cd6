"""The two-stochastic-layer VAE of Burda et al. 2015: q(z1 | x) q(z2 | z1), p(z2) p(z1 | z2) p(x | z1)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from ..posteriors.base import Posterior
from .likelihoods import Likelihood
from .mlp import MLP
from .priors import StandardNormalPrior
from .vae import (
    VAE,
    LogWeights,
    call_with_stopped_params,
)

__all__ = ["GaussianConditional", "HierarchicalVAE"]

_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)


class GaussianConditional(nn.Module):
    """The learned conditional prior p(z1 | z2) = N(z1; m(z2), diag exp(l(z2))), an MLP.

        log p(z1 | z2) = sum_D -(z1 - m)^2 / (2 exp(l)) - l / 2 - log(2 pi) / 2

    Shapes: z1: (K, B, D1), z2: (K, B, D2) -> (K, B).
    """

    def __init__(self, in_dim: int, out_dim: int, hidden: Sequence[int] = (100, 100), activation: str = "tanh") -> None:
        super().__init__()
        self.out_dim = out_dim
        self.net = MLP([in_dim, *hidden, 2 * out_dim], activation)

    def params(self, z2: Tensor) -> tuple[Tensor, Tensor]:
        """mean, logvar: (*batch, D1) for z2: (*batch, D2)."""
        mean, logvar = self.net(z2).chunk(2, dim=-1)
        return mean, logvar

    def log_prob(self, z1: Tensor, z2: Tensor) -> Tensor:
        mean, logvar = self.params(z2)
        return (-0.5 * (z1 - mean).square() * torch.exp(-logvar) - 0.5 * logvar - _HALF_LOG_2PI).sum(-1)


class HierarchicalVAE(VAE):
    """Two stochastic layers (z1 near x, z2 on top), both posteriors from one family.

        log w = log p(x | z1) + log p(z1 | z2) + log p(z2) - log q(z1 | x) - log q(z2 | z1)

    `LogWeights.log_pz` holds log p(z1 | z2) + log p(z2), `z` the top layer z2, `latents`
    (z1, z2). `posterior` is q(z2 | z1) (the top layer, whose size is `latent_dim`);
    `posterior1` is q(z1 | x). With stopped parameters (STL, DReG) both layers' log q are
    evaluated with phi stopped while z1 still feeds q(z2 | z1): the joint path derivative.

    Shapes: x: (B, *event); z1: (K, B, D1); z2: (K, B, D2).

    References:
        Importance Weighted Autoencoders, Burda, Grosse, Salakhutdinov, 2015, arXiv:1509.00519.
    """

    def __init__(
        self,
        encoder: nn.Module,
        posterior1: Posterior,
        encoder2: nn.Module,
        posterior2: Posterior,
        conditional_prior: GaussianConditional,
        decoder: nn.Module,
        likelihood: Likelihood,
        event_shape: tuple[int, ...],
    ) -> None:
        super().__init__(
            encoder, posterior2, decoder, likelihood, event_shape, StandardNormalPrior(posterior2.latent_dim)
        )
        if not isinstance(posterior1, Posterior):
            raise TypeError(
                f"HierarchicalVAE: posterior1 must be a vaebench Posterior, got {type(posterior1).__name__}"
            )
        if conditional_prior.out_dim != posterior1.latent_dim:
            raise ValueError(
                f"HierarchicalVAE: p(z1 | z2) outputs {conditional_prior.out_dim} dims, q(z1 | x) has {posterior1.latent_dim}"
            )
        self.posterior1 = posterior1
        self.encoder2 = encoder2
        self.conditional_prior = conditional_prior

    @property
    def has_log_prob(self) -> bool:
        return self.posterior1.has_log_prob and self.posterior.has_log_prob

    def q_modules(self) -> list[nn.Module]:
        return [self.encoder, self.posterior1, self.encoder2, self.posterior]

    def p_modules(self) -> list[nn.Module]:
        return [self.decoder, self.likelihood, self.prior, self.conditional_prior]

    def _upper(self, z1: Tensor) -> Tensor:
        return z1.reshape(-1, z1.shape[-1])

    def sample_latents(
        self, x: Tensor, num_samples: int, *, stop_q_params: bool = False
    ) -> tuple[tuple[Tensor, ...], Tensor]:
        z1, log_q1 = self.posterior1.rsample_and_log_prob(self.encode(x), num_samples)
        k, b = z1.shape[:2]
        z2, log_q2 = self.posterior.rsample_and_log_prob(self.encoder2(self._upper(z1)), 1)
        latents = (z1, z2.reshape(k, b, -1))
        if stop_q_params:
            # z1 must keep feeding q(z2 | z1) through the stopped network: not the families'
            # path_gradient, which stops the features h too.
            return latents, self.log_q(x, latents, stop_params=True)
        return latents, log_q1 + log_q2.reshape(k, b)

    def log_q(self, x: Tensor, latents: tuple[Tensor, ...], *, stop_params: bool = False) -> Tensor:
        z1, z2 = latents
        k, b = z1.shape[:2]
        z2_flat = z2.reshape(1, k * b, -1)
        h1 = self.encode(x)
        if stop_params:
            log_q1 = self.posterior1.log_prob_stopped(z1, h1)
            h2 = call_with_stopped_params(self.encoder2, "forward", self._upper(z1))
            log_q2 = self.posterior.log_prob_stopped(z2_flat, h2, stop_features=False)
        else:
            self.posterior1.require_log_prob("HierarchicalVAE.log_q")
            self.posterior.require_log_prob("HierarchicalVAE.log_q")
            log_q1 = self.posterior1.log_prob(z1, h1)
            log_q2 = self.posterior.log_prob(z2_flat, self.encoder2(self._upper(z1)))
        return log_q1 + log_q2.reshape(k, b)

    def log_joint(self, x: Tensor, latents: tuple[Tensor, ...]) -> tuple[Tensor, Tensor]:
        z1, z2 = latents
        log_pz = self.prior.log_prob(z2) + self.conditional_prior.log_prob(z1, z2)
        return self.log_likelihood(x, z1), log_pz

    def log_weights_and_kl(self, x: Tensor, num_samples: int) -> tuple[LogWeights, Tensor | None]:
        return self.log_weights(x, num_samples), None

    def kl(self, x: Tensor) -> Tensor | None:
        """None: the learned conditional prior p(z1 | z2) has no analytic KL; use 'elbo_mc'."""
        self.check_input(x)
        return None

    @torch.no_grad()
    def posterior_mean(self, x: Tensor, num_samples: int = 64) -> Tensor:
        """E_q[z2 | x]: (B, D2), by Monte Carlo over q(z1 | x) q(z2 | z1)."""
        self.check_input(x)
        latents, _ = self.sample_latents(x, num_samples)
        return latents[-1].mean(0)

    @torch.no_grad()
    def sample(self, num_samples: int) -> Tensor:
        p = next(self.parameters())
        z2 = self.prior.sample((1, num_samples), device=p.device, dtype=p.dtype)
        mean, logvar = self.conditional_prior.params(z2)
        z1 = mean + torch.exp(0.5 * logvar) * torch.randn_like(mean)
        return self.likelihood.mean(self.decode(z1))[0]
