"""The prior p(z) over the top-level latent: the standard normal."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

__all__ = ["StandardNormalPrior"]

_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)


class StandardNormalPrior(nn.Module):
    """p(z) = N(z; 0, I_D), the prior of every model in the IWAE protocol.

        log p(z) = -1/2 sum_D (z_d^2 + log(2 pi))

    Args:
        latent_dim: D.
    """

    #: The analytic KL(q || p) of a diagonal Gaussian q is available (`Posterior.kl_to_prior`).
    is_standard_normal = True

    def __init__(self, latent_dim: int) -> None:
        super().__init__()
        if latent_dim < 1:
            raise ValueError(f"StandardNormalPrior: latent_dim must be >= 1, got {latent_dim}")
        self.latent_dim = latent_dim

    def log_prob(self, z: Tensor) -> Tensor:
        """log N(z; 0, I). Shapes: z: (*batch, D) -> (*batch,)."""
        if z.shape[-1] != self.latent_dim:
            raise ValueError(f"StandardNormalPrior.log_prob: z must be (..., {self.latent_dim}), got {tuple(z.shape)}")
        return -0.5 * z.square().sum(-1) - self.latent_dim * _HALF_LOG_2PI

    def sample(
        self,
        shape: tuple[int, ...],
        *,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """Draws z: (*shape, D)."""
        return torch.randn((*shape, self.latent_dim), device=device, dtype=dtype, generator=generator)
