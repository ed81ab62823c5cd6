"""The full-covariance Gaussian posterior, parameterized by its Cholesky factor:
`full_covariance`."""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.distributions import MultivariateNormal

from ..initialization import zero_init
from .base import POSTERIORS, Posterior, standard_normal_log_prob
from .nonfinite import check_finite

__all__ = ["FullCovarianceGaussian"]


@POSTERIORS.register(
    "full_covariance",
    "full-covariance Gaussian N(mu(h), L(h) L(h)^T), L lower-triangular",
)
class FullCovarianceGaussian(Posterior):
    """q(z | h) = N(z; mu(h), L(h) L(h)^T), L lower-triangular with a positive diagonal.

        L = diag(exp(s(h))) + strictly_lower(A(h))
        z = mu + L eps,   eps ~ N(0, I)
        log q(z) = log N(eps; 0, I) - sum_D s,   eps = L^{-1} (z - mu)
        KL(q || N(0, I)) = 1/2 (|L|_F^2 + |mu|^2 - D) - sum_D s

    The diagonal is exp(s), not softplus: log|det L| = sum s is then exact and free, and with
    A = 0 the family is exactly `diagonal` with logvar = 2 s. mu, s and A are linear in h.

    Shapes: h: (B, H) -> z: (K, B, D), log_q: (K, B); L: (B, D, D).
    """

    has_log_prob = True
    _rows: Tensor  # buffers: the strictly lower-triangular indices of L
    _cols: Tensor

    def __init__(self, feature_dim: int, latent_dim: int) -> None:
        super().__init__(feature_dim, latent_dim)
        self.mean = nn.Linear(feature_dim, latent_dim)
        self.log_diag = nn.Linear(feature_dim, latent_dim)
        # D = 1 has no off-diagonal entries (and a zero-width Linear warns at init).
        num_off = latent_dim * (latent_dim - 1) // 2
        self.off_diag = nn.Linear(feature_dim, num_off) if num_off else None
        rows, cols = torch.tril_indices(latent_dim, latent_dim, offset=-1)
        self.register_buffer("_rows", rows, persistent=False)
        self.register_buffer("_cols", cols, persistent=False)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Glorot heads, the off-diagonal head zero: at init L = diag(exp(s)), the `diagonal`
        family exactly (random off-diagonals put q tens of nats of KL away from it)."""
        super().reset_parameters()
        zero_init(self.off_diag)

    def params(self, h: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """mu: (B, D), the log-diagonal s: (B, D) and L: (B, D, D), without input checks."""
        mu, log_diag = self.mean(h), self.log_diag(h)
        scale_tril = torch.diag_embed(log_diag.exp())
        if self.off_diag is not None:
            d = self.latent_dim
            lower = h.new_zeros(h.shape[0], d, d)
            lower[:, self._rows, self._cols] = self.off_diag(h)
            scale_tril = scale_tril + lower
        family = self.family_name()
        check_finite(mu, family, None, "mu")
        check_finite(scale_tril, family, None, "scale_tril")
        return mu, log_diag, scale_tril

    def sample_from_noise(self, eps: Tensor, h: Tensor) -> tuple[Tensor, Tensor]:
        self.check_features(h)
        self.check_latent("eps", eps, h)
        mu, log_diag, scale_tril = self.params(h)
        z = mu + torch.einsum("bij,kbj->kbi", scale_tril, eps)
        return z, standard_normal_log_prob(eps) - log_diag.sum(-1)

    # rsample_and_log_prob: the base class's, derived from sample_from_noise.

    def log_prob(self, z: Tensor, h: Tensor) -> Tensor:
        self.check_features(h)
        self.check_latent("z", z, h)
        mu, log_diag, scale_tril = self.params(h)
        # Solve L eps = z - mu for all K at once: move K to the right-hand-side columns.
        diff = (z - mu).permute(1, 2, 0)  # (B, D, K)
        eps = torch.linalg.solve_triangular(scale_tril, diff, upper=False).permute(2, 0, 1)
        return standard_normal_log_prob(eps) - log_diag.sum(-1)

    def kl_to_prior(self, h: Tensor) -> Tensor:
        self.check_features(h)
        mu, log_diag, scale_tril = self.params(h)
        trace = scale_tril.square().sum((-2, -1))
        return 0.5 * (trace + mu.square().sum(-1) - self.latent_dim) - log_diag.sum(-1)

    def to_distribution(self, h: Tensor) -> MultivariateNormal:
        self.check_features(h)
        mu, _, scale_tril = self.params(h)
        return MultivariateNormal(mu, scale_tril=scale_tril)
