"""The linear-Gaussian (probabilistic PCA) VAE: exact log p(x), exact posterior and exact ELBO.

    z ~ N(0, I_d),  x | z ~ N(W z + b, s^2 I_D)
    p(x) = N(x; b, C),  C = W W^T + s^2 I_D
    p(z | x) = N(M^-1 W^T (x - b), s^2 M^-1),  M = W^T W + s^2 I_d

With the affine full-covariance posterior q(z | x) = N(A x + c, L L^T) the family contains the
exact posterior, so every bound and gradient has a closed form to test estimators against:

    ELBO = -D/2 log(2 pi s^2) - (|x - W m - b|^2 + tr(W S W^T)) / (2 s^2)
           - d/2 log(2 pi) - (|m|^2 + tr S) / 2 + d/2 (1 + log 2 pi) + log det L,
    m = A x + c, S = L L^T, and log p(x) - ELBO = KL(q || p(z | x)).

References:
    Probabilistic Principal Component Analysis, Tipping, Bishop, 1999 (JRSS B; no arXiv id).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from .. import linear_gaussian as closed_form
from ..posteriors.base import Posterior
from .likelihoods import GaussianLikelihood
from .vae import VAE

__all__ = [
    "AffineGaussianPosterior",
    "LinearGaussianVAE",
    "linear_gaussian_log_marginal",
    "linear_gaussian_posterior",
]

_LOG_2PI = math.log(2.0 * math.pi)

# The closed forms live in vaebench.linear_gaussian; these names stay for callers of vaebench.models.
linear_gaussian_log_marginal = closed_form.log_marginal
linear_gaussian_posterior = closed_form.posterior


class AffineGaussianPosterior(Posterior):
    """q(z | h) = N(z; A h + c, L L^T), L lower triangular with a positive diagonal, shared by
    all examples; the family that contains the linear-Gaussian model's exact posterior.

        z = A h + c + L eps,  log q(z) = -|eps|^2 / 2 - sum_i log L_ii - D/2 log(2 pi)
        KL(q || N(0, I)) = (tr(L L^T) + |m|^2 - D) / 2 - sum_i log L_ii

    Shapes: h: (B, H) -> z: (K, B, D), log_q: (K, B).
    """

    has_log_prob = True

    def __init__(self, feature_dim: int, latent_dim: int) -> None:
        super().__init__(feature_dim, latent_dim)
        self.linear = nn.Linear(feature_dim, latent_dim)
        self.log_scale_diag = nn.Parameter(torch.zeros(latent_dim))
        self.scale_offdiag = nn.Parameter(torch.zeros(latent_dim, latent_dim))

    def scale_tril(self) -> Tensor:
        """L: (D, D)."""
        return torch.tril(self.scale_offdiag, -1) + torch.diag(torch.exp(self.log_scale_diag))

    def analytic_mean(self, h: Tensor) -> Tensor:
        return self.linear(h)

    def rsample_and_log_prob(
        self, h: Tensor, num_samples: int = 1, *, path_gradient: bool = False
    ) -> tuple[Tensor, Tensor]:
        mean = self.linear(h)
        eps = torch.randn((num_samples, *mean.shape), dtype=mean.dtype, device=mean.device)
        z = mean + eps @ self.scale_tril().T
        if path_gradient:
            return z, self.log_prob_stopped(z, h)
        return z, self._log_prob_of_eps(eps)

    def _log_prob_of_eps(self, eps: Tensor) -> Tensor:
        return -0.5 * eps.square().sum(-1) - self.log_scale_diag.sum() - 0.5 * self.latent_dim * _LOG_2PI

    def log_prob(self, z: Tensor, h: Tensor) -> Tensor:
        diff = z - self.linear(h)  # (K, B, D)
        eps = torch.linalg.solve_triangular(self.scale_tril(), diff.unsqueeze(-1), upper=False).squeeze(-1)
        return self._log_prob_of_eps(eps)

    def kl_to_prior(self, h: Tensor) -> Tensor:
        mean = self.linear(h)
        L = self.scale_tril()
        return 0.5 * (L.square().sum() + mean.square().sum(-1) - self.latent_dim) - self.log_scale_diag.sum()

    @torch.no_grad()
    def set_(self, A: Tensor, c: Tensor, cov: Tensor) -> None:
        """Set q(z | h) = N(A h + c, cov). Shapes: A: (D, H), c: (D,), cov: (D, D) positive definite."""
        L = torch.linalg.cholesky(cov)
        self.linear.weight.copy_(A)
        self.linear.bias.copy_(c)
        self.log_scale_diag.copy_(torch.log(torch.diagonal(L)))
        self.scale_offdiag.copy_(torch.tril(L, -1))


class LinearGaussianVAE(VAE):
    """The probabilistic-PCA VAE with an affine Gaussian posterior: everything in closed form.

    The encoder is the identity (h = x), the decoder the linear map z -> W z + b, the
    likelihood a Gaussian with one learned s (or fixed with `learn_std=False`).

    Args:
        data_dim: D.
        latent_dim: d.
        init_std: the initial s.
        learn_std: learn s (a parameter of the likelihood) or keep it fixed.
        posterior: another family on h = x instead of the affine one (then only `log_marginal`
            and `exact_posterior` are closed-form).
        likelihood: a GaussianLikelihood with one s, instead of the one init_std/learn_std make.
    """

    # What __init__ passes to VAE, declared so that W, b and s read as tensors.
    decoder: nn.Linear
    likelihood: GaussianLikelihood

    def __init__(
        self,
        data_dim: int,
        latent_dim: int,
        init_std: float = 1.0,
        learn_std: bool = True,
        *,
        posterior: Posterior | None = None,
        likelihood: GaussianLikelihood | None = None,
    ) -> None:
        if likelihood is None:
            likelihood = GaussianLikelihood("learned" if learn_std else float(init_std), init_std=init_std)
        if likelihood.num_params != 1:
            raise ValueError("LinearGaussianVAE needs a Gaussian likelihood with one s (std 'learned' or a float)")
        super().__init__(
            encoder=nn.Identity(),
            posterior=posterior if posterior is not None else AffineGaussianPosterior(data_dim, latent_dim),
            decoder=nn.Linear(latent_dim, data_dim),
            likelihood=likelihood,
            event_shape=(data_dim,),
        )

    def _affine(self, method: str) -> AffineGaussianPosterior:
        if not isinstance(self.posterior, AffineGaussianPosterior):
            raise TypeError(
                f"LinearGaussianVAE.{method} is closed-form only for the AffineGaussianPosterior, "
                f"this model uses {type(self.posterior).__name__}; log_marginal works for any family"
            )
        return self.posterior

    @classmethod
    def from_params(
        cls, W: Tensor, b: Tensor, s: float, *, learn_std: bool = True, exact_posterior: bool = True
    ) -> LinearGaussianVAE:
        """A model with the given W: (D, d), b: (D,), s (in W's dtype); with its posterior
        set to the exact one when `exact_posterior`."""
        if W.dim() != 2 or b.shape != (W.shape[0],) or not s > 0:
            raise ValueError(
                f"from_params: W must be (D, d), b (D,) and s > 0, got {tuple(W.shape)}, {tuple(b.shape)}, {s}"
            )
        model = cls(W.shape[0], W.shape[1], init_std=float(s), learn_std=learn_std).to(W.dtype)
        with torch.no_grad():
            model.decoder.weight.copy_(W)
            model.decoder.bias.copy_(b)
        if exact_posterior:
            model.set_exact_posterior()
        return model

    @property
    def W(self) -> Tensor:
        return self.decoder.weight

    @property
    def b(self) -> Tensor:
        return self.decoder.bias

    @property
    def s(self) -> Tensor:
        return torch.exp(self.likelihood.log_std)

    def log_marginal(self, x: Tensor) -> Tensor:
        """The exact log p(x): (B,), differentiable in W, b, s."""
        self.check_input(x)
        return closed_form.log_marginal(x, self.W, self.b, self.s)

    def exact_posterior(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """p(z | x) = N(mean: (B, d), cov: (d, d))."""
        self.check_input(x)
        return closed_form.posterior(x, self.W, self.b, self.s)

    @torch.no_grad()
    def set_exact_posterior(self, mean_shift: float = 0.0) -> None:
        """Set q(z | x) to p(z | x): A = M^-1 W^T, c = -A b, cov = s^2 M^-1; with `mean_shift`
        = delta, q's mean moves by delta posterior standard deviations (c += delta L u, L L^T =
        cov, u = (1, ..., 1) / sqrt(d)), so the importance weights' relative variance
        Var_q[p/q] / (E_q p/q)^2 = exp(delta^2) - 1 (the ground truth for weight diagnostics)."""
        A, cov = closed_form.posterior_map(self.W, self.s)
        c = -A @ self.b
        if mean_shift:
            u = torch.ones(cov.shape[0], dtype=cov.dtype, device=cov.device) / cov.shape[0] ** 0.5
            c = c + mean_shift * (torch.linalg.cholesky(cov) @ u)
        self._affine("set_exact_posterior").set_(A, c, cov)

    def analytic_elbo(self, x: Tensor) -> Tensor:
        """The exact ELBO E_q[log p(x, z) - log q(z | x)]: (B,), differentiable in every parameter
        (the ground truth for ELBO gradient estimators)."""
        self.check_input(x)
        q = self._affine("analytic_elbo")
        D, d = self.W.shape
        m = q.analytic_mean(x)  # (B, d)
        L = q.scale_tril()
        s2 = self.s**2
        resid = x - m @ self.W.T - self.b
        WL = self.W @ L
        expected_log_lik = -0.5 * D * (_LOG_2PI + torch.log(s2)) - (resid.square().sum(-1) + WL.square().sum()) / (
            2 * s2
        )
        expected_log_prior = -0.5 * d * _LOG_2PI - 0.5 * (m.square().sum(-1) + L.square().sum())
        entropy = 0.5 * d * (1.0 + _LOG_2PI) + q.log_scale_diag.sum()
        return expected_log_lik + expected_log_prior + entropy

    def posterior_kl(self, x: Tensor) -> Tensor:
        """KL(q(z | x) || p(z | x)) = log p(x) - ELBO in closed form: (B,)."""
        self.check_input(x)
        q = self._affine("posterior_kl")
        L = q.scale_tril()
        return closed_form.kl_to_posterior(x, self.W, self.b, self.s, q.analytic_mean(x), L @ L.T)
