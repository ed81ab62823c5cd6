"""The linear-Gaussian (probabilistic PCA) model's closed forms, in one place.

    z ~ N(0, I_d),  x | z ~ N(W z + b, s^2 I_D)
    p(x) = N(x; b, C),  C = W W^T + s^2 I_D
    p(z | x) = N(A (x - b), S),  A = M^-1 W^T,  S = s^2 M^-1,  M = W^T W + s^2 I_d

The dataset (`vaebench.datasets.LinearGaussian`), the model (`vaebench.models.LinearGaussianVAE`)
and the tests' toy models import these; each takes the parameters as tensors, so gradients
reach W, b and s. Every function computes in W's dtype and device.

References:
    Probabilistic Principal Component Analysis, Tipping, Bishop, 1999 (JRSS B; no arXiv id).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

__all__ = ["kl_to_posterior", "log_marginal", "marginal_covariance", "posterior", "posterior_map"]

_LOG_2PI = math.log(2.0 * math.pi)


def _variance(W: Tensor, s: Tensor | float) -> Tensor:
    return torch.as_tensor(s, dtype=W.dtype, device=W.device) ** 2


def marginal_covariance(W: Tensor, s: Tensor | float) -> Tensor:
    """C = W W^T + s^2 I_D, the covariance of p(x). Shapes: W: (D, d) -> (D, D)."""
    return W @ W.T + _variance(W, s) * torch.eye(W.shape[0], dtype=W.dtype, device=W.device)


def log_marginal(x: Tensor, W: Tensor, b: Tensor, s: Tensor | float) -> Tensor:
    """log p(x) = log N(x; b, W W^T + s^2 I_D), through the Cholesky factor of C.

    Shapes: x: (..., D), W: (D, d), b: (D,) -> (...).
    """
    D = W.shape[0]
    L = torch.linalg.cholesky(marginal_covariance(W, s))
    r = (x.to(W.dtype) - b).reshape(-1, D)
    white = torch.linalg.solve_triangular(L, r.T, upper=False)  # (D, N)
    value = -0.5 * white.square().sum(0) - torch.log(torch.diagonal(L)).sum() - 0.5 * D * _LOG_2PI
    return value.reshape(x.shape[:-1])


def posterior_map(W: Tensor, s: Tensor | float) -> tuple[Tensor, Tensor]:
    """The exact posterior as an affine map: E[z | x] = A (x - b), Cov[z | x] = S.

    A = M^-1 W^T and S = s^2 M^-1 with M = W^T W + s^2 I_d (the same S for every x).
    Shapes: W: (D, d) -> A: (d, D), S: (d, d).
    """
    s2 = _variance(W, s)
    M = W.T @ W + s2 * torch.eye(W.shape[1], dtype=W.dtype, device=W.device)
    L = torch.linalg.cholesky(M)
    return torch.cholesky_solve(W.T, L), s2 * torch.cholesky_inverse(L)


def posterior(x: Tensor, W: Tensor, b: Tensor, s: Tensor | float) -> tuple[Tensor, Tensor]:
    """p(z | x) = N(mean, cov). Shapes: x: (..., D) -> mean: (..., d), cov: (d, d)."""
    A, cov = posterior_map(W, s)
    return (x.to(W.dtype) - b) @ A.T, cov


def kl_to_posterior(x: Tensor, W: Tensor, b: Tensor, s: Tensor | float, q_mean: Tensor, q_cov: Tensor) -> Tensor:
    """KL(N(q_mean, q_cov) || p(z | x)) = log p(x) - ELBO(q), in closed form.

        KL = 1/2 [tr(S^-1 V) + (m - mu)^T S^-1 (m - mu) - d + log|S| - log|V|]

    with p(z | x) = N(m, S) and q = N(mu, V). A diagonal q passes `torch.diag_embed(var)`.
    Shapes: x: (B, D), q_mean: (B, d), q_cov: (d, d) or (B, d, d) -> (B,).
    """
    m, S = posterior(x, W, b, s)
    d = m.shape[-1]
    Ls = torch.linalg.cholesky(S)
    V = q_cov.to(W.dtype)
    Lv = torch.linalg.cholesky(V)
    trace = torch.cholesky_solve(V, Ls).diagonal(dim1=-2, dim2=-1).sum(-1)
    diff = (m - q_mean.to(W.dtype)).unsqueeze(-1)  # (B, d, 1)
    maha = (diff * torch.cholesky_solve(diff, Ls)).sum((-2, -1))
    logdet_s = 2 * torch.log(torch.diagonal(Ls)).sum()
    logdet_v = 2 * torch.log(torch.diagonal(Lv, dim1=-2, dim2=-1)).sum(-1)
    return 0.5 * (trace + maha - d + logdet_s - logdet_v)
