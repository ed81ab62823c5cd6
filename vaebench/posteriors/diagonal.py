"""The diagonal Gaussian posterior, the VAE's default: `diagonal`."""

from __future__ import annotations

import math

from torch import Tensor, nn
from torch.distributions import Independent, Normal

from ..ops import gaussian_kl, reparameterize
from ..ops.reference import reparameterize_reference
from ..ops.reparameterize import runs_fused
from .base import POSTERIORS, Posterior
from .nonfinite import check_finite

__all__ = ["DiagonalGaussian"]

_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)


@POSTERIORS.register("diagonal", "diagonal Gaussian N(mu(h), diag exp(logvar(h)))")
class DiagonalGaussian(Posterior):
    """q(z | h) = N(z; mu(h), diag(exp(logvar(h)))), mu and logvar linear in h.

        z = mu + exp(logvar / 2) * eps,   eps ~ N(0, I)
        log q(z) = sum_D (-(z - mu)^2 / (2 exp(logvar)) - logvar / 2 - log(2 pi) / 2)
        KL(q || N(0, I)) = 1/2 sum_D (exp(logvar) + mu^2 - 1 - logvar)

    Sampling and the KL go through the fused ops `vaebench.ops.reparameterize` and
    `vaebench.ops.gaussian_kl`; `path_gradient=True` is the op's own path gradient.
    The flows use this family as their base distribution.

    Shapes: h: (B, H) -> z: (K, B, D), log_q: (K, B).

    References:
        Auto-Encoding Variational Bayes. Kingma, Welling, 2013. arXiv:1312.6114.
    """

    has_log_prob = True

    def __init__(self, feature_dim: int, latent_dim: int) -> None:
        super().__init__(feature_dim, latent_dim)
        self.mean = nn.Linear(feature_dim, latent_dim)
        self.logvar = nn.Linear(feature_dim, latent_dim)
        self.reset_parameters()

    def params(self, h: Tensor, family: str | None = None) -> tuple[Tensor, Tensor]:
        """mu: (B, D) and logvar: (B, D) from h: (B, H), without input checks.

        `family` names the owner in a `NonFiniteError` (a flow using this as its base).
        """
        mu, logvar = self.mean(h), self.logvar(h)
        family = family or self.family_name()
        check_finite(mu, family, None, "mu")
        check_finite(logvar, family, None, "logvar")
        return mu, logvar

    def rsample_and_log_prob(
        self, h: Tensor, num_samples: int = 1, *, path_gradient: bool = False
    ) -> tuple[Tensor, Tensor]:
        self.check_num_samples(num_samples)
        self.check_features(h)
        mu, logvar = self.params(h)
        return reparameterize(mu, logvar, num_samples, path_gradient=path_gradient)

    def rsample_log_prob_and_kl(self, h: Tensor, num_samples: int = 1) -> tuple[Tensor, Tensor, Tensor | None]:
        """Samples, log q and the KL from one evaluation of mu and logvar (and one check of h): the
        separate calls would run the two parameter layers, forward and backward, twice. A subclass
        that overrides either method gets the two calls (its own methods)."""
        cls = type(self)
        if cls.rsample_and_log_prob is not DiagonalGaussian.rsample_and_log_prob or (
            cls.kl_to_prior is not DiagonalGaussian.kl_to_prior
        ):
            return super().rsample_log_prob_and_kl(h, num_samples)
        self.check_num_samples(num_samples)
        self.check_features(h)
        mu, logvar = self.params(h)
        z, log_q = reparameterize(mu, logvar, num_samples)
        return z, log_q, gaussian_kl(mu, logvar)

    def path_gradient_through_z(self, like: Tensor) -> bool:
        return not runs_fused(like)

    def sample_from_noise(self, eps: Tensor, h: Tensor) -> tuple[Tensor, Tensor]:
        self.check_features(h)
        self.check_latent("eps", eps, h)
        mu, logvar = self.params(h)
        return reparameterize_reference(mu, logvar, eps)

    def log_prob(self, z: Tensor, h: Tensor) -> Tensor:
        self.check_features(h)
        self.check_latent("z", z, h)
        mu, logvar = self.params(h)
        return self.log_prob_given(z, mu, logvar)

    @staticmethod
    def log_prob_given(z: Tensor, mu: Tensor, logvar: Tensor) -> Tensor:
        """log N(z; mu, diag exp(logvar)) summed over D. z: (K, B, D), mu, logvar: (B, D)."""
        return (-0.5 * (z - mu).square() * (-logvar).exp() - 0.5 * logvar - _HALF_LOG_2PI).sum(-1)

    def kl_to_prior(self, h: Tensor) -> Tensor:
        self.check_features(h)
        return gaussian_kl(*self.params(h))

    def to_distribution(self, h: Tensor) -> Independent:
        self.check_features(h)
        mu, logvar = self.params(h)
        return Independent(Normal(mu, (0.5 * logvar).exp()), 1)
