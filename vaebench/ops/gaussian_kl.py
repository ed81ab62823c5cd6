"""Analytic KL between diagonal Gaussians: `vaebench::gaussian_kl`.

NOTE (skeleton): only the reference path is wired so far.
"""

from __future__ import annotations

from torch import Tensor

from .reference import gaussian_kl_reference

__all__ = ["gaussian_kl"]


def gaussian_kl(
    mu: Tensor,
    logvar: Tensor,
    prior_mu: Tensor | None = None,
    prior_logvar: Tensor | None = None,
) -> Tensor:
    """KL(N(mu, exp(logvar)) || N(prior_mu, exp(prior_logvar))) summed over D.

    Shapes: mu, logvar: (*batch, D); prior_mu, prior_logvar: broadcastable to (*batch, D) or
    None for the standard normal -> (*batch,).
    """
    return gaussian_kl_reference(mu, logvar, prior_mu, prior_logvar)
