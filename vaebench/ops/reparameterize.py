"""Reparameterized Gaussian sampling fused with log q: `vaebench::reparameterize`.

NOTE (skeleton): only the reference path is wired so far; the fused path, its fake kernel
and autograd registration land with csrc/reparameterize.cpp.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .reference import reparameterize_reference

__all__ = ["reparameterize"]


def reparameterize(
    mu: Tensor,
    logvar: Tensor,
    num_samples: int = 1,
    *,
    generator: torch.Generator | None = None,
    path_gradient: bool = False,
) -> tuple[Tensor, Tensor]:
    """Draw K reparameterized samples z = mu + exp(logvar / 2) * eps and their log q(z).

        log q(z_k) = sum_D (-eps_k^2 / 2 - logvar / 2 - log(2 pi) / 2),  eps_k ~ N(0, I)

    Args:
        mu, logvar: (*batch, D) mean and log-variance of the diagonal Gaussian.
        num_samples: K >= 1.
        generator: torch generator the seed is drawn from (default: torch's default CPU
            generator, so `torch.manual_seed` gives the same samples on CPU and CUDA).
        path_gradient: if True, log q reaches mu and logvar only through z ("sticking the
            landing", Roeder et al. 2017); if False, the full gradient.

    Returns:
        z: (K, *batch, D) and log_q: (K, *batch).
    """
    eps = torch.randn(
        (num_samples, *mu.shape), dtype=mu.dtype, device=mu.device, generator=generator
    )
    return reparameterize_reference(mu, logvar, eps, path_gradient)
