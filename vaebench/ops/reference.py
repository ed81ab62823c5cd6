"""The pure-PyTorch truth for every fused op: one place, imported by the tests, the benchmarks
and the fallback path. Written for clarity and exact autograd, not for speed."""

from __future__ import annotations

import math

import torch
from torch import Tensor

__all__ = [
    "gaussian_kl_reference",
    "importance_weights_reference",
    "log_mean_exp_reference",
    "reparameterize_reference",
]

_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)


def reparameterize_reference(
    mu: Tensor, logvar: Tensor, eps: Tensor, path_gradient: bool = False
) -> tuple[Tensor, Tensor]:
    """z = mu + exp(logvar / 2) * eps and log q(z) = sum_D log N(z; mu, exp(logvar)).

    log q is computed from eps, never by re-standardizing z:
        log q = sum_D (-eps^2 / 2 - logvar / 2 - log(2 pi) / 2).
    With `path_gradient`, log q reaches mu and logvar only through z (the "sticking the
    landing" gradient, Roeder et al. 2017): d log q / dz = -eps / sigma, no score term.

    Shapes: mu, logvar: (*batch, D); eps: (K, *batch, D) -> z: (K, *batch, D), log_q: (K, *batch).
    """
    std = torch.exp(0.5 * logvar)
    z = mu + std * eps
    if path_gradient:
        # eps_path equals eps in value and carries d/dz = 1 / sigma with mu, logvar stopped.
        eps_path = eps + (z - z.detach()) / std.detach()
        log_q = (-0.5 * eps_path.square() - 0.5 * logvar.detach() - _HALF_LOG_2PI).sum(-1)
    else:
        log_q = (-0.5 * eps.square() - 0.5 * logvar - _HALF_LOG_2PI).sum(-1)
    return z, log_q


def gaussian_kl_reference(
    mu: Tensor,
    logvar: Tensor,
    prior_mu: Tensor | None = None,
    prior_logvar: Tensor | None = None,
) -> Tensor:
    """KL(N(mu, exp(logvar)) || N(prior_mu, exp(prior_logvar))), summed over the last dim.

        KL = 1/2 sum_D [ pl - l + (exp(l) + (mu - pm)^2) / exp(pl) - 1 ]
    with None meaning the standard normal (pm = 0, pl = 0). exp(l - pl) instead of
    exp(l) / exp(pl) keeps it finite for |logvar| up to ~80 in float32.

    Shapes: mu, logvar: (*batch, D); prior_*: broadcastable to (*batch, D) -> (*batch,).
    """
    if prior_mu is None:
        prior_mu = torch.zeros((), dtype=mu.dtype, device=mu.device)
    if prior_logvar is None:
        prior_logvar = torch.zeros((), dtype=mu.dtype, device=mu.device)
    diff = mu - prior_mu
    kl = 0.5 * (
        prior_logvar - logvar + torch.exp(logvar - prior_logvar) + diff.square() * torch.exp(-prior_logvar) - 1.0
    )
    return kl.sum(-1)


def log_mean_exp_reference(log_w: Tensor, dim: int = 0) -> Tensor:
    """log (1/K) sum_k exp(log_w_k) along `dim` (K = log_w.shape[dim]).

    An all -inf slice gives -inf with a zero gradient: its entries are swapped for zeros before
    torch.logsumexp, whose backward exp(log_w - lse) would be exp(-inf + inf) = NaN there.
    Shapes: log_w: (..., K, ...) -> the same without `dim`.
    """
    dead = torch.isneginf(log_w).all(dim=dim, keepdim=True)
    lse = torch.logsumexp(torch.where(dead, torch.zeros_like(log_w), log_w), dim=dim)
    lse = torch.where(dead.squeeze(dim), torch.full_like(lse, -math.inf), lse)
    return lse - math.log(log_w.shape[dim])


def importance_weights_reference(log_w: Tensor, dim: int = 0) -> tuple[Tensor, Tensor]:
    """Self-normalized weights w_k = exp(log_w_k) / sum_j exp(log_w_j) along `dim`, and the
    effective sample size ESS = 1 / sum_k w_k^2 (between 1 and K).

    An all -inf slice has no weights: w = 0 and ESS = 0 there (and a zero gradient: its entries
    are swapped for zeros before the softmax, which would give NaN there).
    Shapes: log_w: (..., K, ...) -> w: like log_w, ess: log_w without `dim`.
    """
    dead = torch.isneginf(log_w).all(dim=dim, keepdim=True)
    w = torch.softmax(torch.where(dead, torch.zeros_like(log_w), log_w), dim=dim)
    w = torch.where(dead, torch.zeros_like(w), w)
    sq = w.square().sum(dim=dim)
    ess = torch.where(sq > 0, 1.0 / sq, torch.zeros_like(sq))
    return w, ess
