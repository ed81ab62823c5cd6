"""Small models with known answers that honour the VAE contract, for the evaluation tests.

LinearGaussianVAE: probabilistic PCA with exact log p(x) (REFERENCES.md "Ground truth"):
z ~ N(0, I_d), x | z ~ N(W z + b, s^2 I_D), its closed forms from `vaebench.linear_gaussian`
(the one implementation). The encoder is a linear Gaussian q(z | x) = N(A (x - b) + c,
diag(exp(logvar))).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from vaebench import linear_gaussian as closed_form

LOG_2PI = math.log(2 * math.pi)


@dataclass
class LogWeights:
    log_w: Tensor
    log_px_z: Tensor
    log_pz: Tensor
    log_q: Tensor
    z: Tensor


def _normal_logpdf(x: Tensor, mean: Tensor, logvar: Tensor) -> Tensor:
    return (-0.5 * (LOG_2PI + logvar + (x - mean).square() * torch.exp(-logvar))).sum(-1)


class LinearGaussianVAE(nn.Module):
    def __init__(self, data_dim: int = 6, latent_dim: int = 3, seed: int = 0, analytic_kl: bool = True) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.latent_dim, self.event_shape, self.analytic_kl = latent_dim, (data_dim,), analytic_kl
        self.W = nn.Parameter(torch.randn(data_dim, latent_dim, generator=g, dtype=torch.float64))
        self.b = nn.Parameter(torch.randn(data_dim, generator=g, dtype=torch.float64))
        self.log_s = nn.Parameter(torch.tensor(math.log(0.7), dtype=torch.float64))
        self.A = nn.Parameter(torch.zeros(latent_dim, data_dim, dtype=torch.float64))
        self.c = nn.Parameter(torch.zeros(latent_dim, dtype=torch.float64))
        self.logvar = nn.Parameter(torch.zeros(latent_dim, dtype=torch.float64))

    # --- closed forms ---------------------------------------------------------------
    def exact_log_px(self, x: Tensor) -> Tensor:
        return closed_form.log_marginal(x, self.W, self.b, torch.exp(self.log_s))

    def exact_posterior(self) -> tuple[Tensor, Tensor]:
        """The matrix A with E[z|x] = A (x - b), and the posterior covariance."""
        return closed_form.posterior_map(self.W, torch.exp(self.log_s))

    def kl_to_true_posterior(self, x: Tensor) -> Tensor:
        mu, var = self._q(x)
        return closed_form.kl_to_posterior(x, self.W, self.b, torch.exp(self.log_s), mu, torch.diag_embed(var))

    @torch.no_grad()
    def set_posterior(self, exact: bool = True, var_scale: float = 1.0) -> None:
        """q's mean map := the exact one; its diagonal variance := var_scale x the exact diagonal."""
        a, cov = self.exact_posterior()
        self.A.copy_(a)
        self.c.zero_()
        self.logvar.copy_(torch.log(var_scale * torch.diagonal(cov)))
        if exact and self.latent_dim > 1 and not torch.allclose(cov, torch.diag(torch.diagonal(cov))):
            raise ValueError("the exact posterior is not diagonal: use an orthogonal W")

    # --- the contract ---------------------------------------------------------------
    def _q(self, x: Tensor) -> tuple[Tensor, Tensor]:
        return (x - self.b) @ self.A.T + self.c, torch.exp(self.logvar)

    def log_weights(self, x: Tensor, num_samples: int, *, stop_q_params: bool = False) -> LogWeights:
        mu, var = self._q(x)
        std = var.sqrt()
        eps = torch.randn((num_samples, *mu.shape), dtype=mu.dtype, device=mu.device)
        z = mu + std * eps
        log_q = (-0.5 * (LOG_2PI + eps.square()) - torch.log(std)).sum(-1)
        log_pz = _normal_logpdf(z, z.new_zeros(()), z.new_zeros(()))
        log_px_z = _normal_logpdf(x, z @ self.W.T + self.b, 2 * self.log_s)
        return LogWeights(log_px_z + log_pz - log_q, log_px_z, log_pz, log_q, z)

    def kl(self, x: Tensor) -> Tensor | None:
        if not self.analytic_kl:
            return None
        mu, var = self._q(x)
        return 0.5 * (var + mu.square() - 1 - torch.log(var)).sum(-1)

    def posterior_mean(self, x: Tensor, num_samples: int = 1) -> Tensor:
        return self._q(x)[0]

    def encoder_parameters(self) -> list[nn.Parameter]:
        return [self.A, self.c, self.logvar]

    def decoder_parameters(self) -> list[nn.Parameter]:
        return [self.W, self.b, self.log_s]

    def sample_data(self, n: int, seed: int = 1) -> Tensor:
        g = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            z = torch.randn(n, self.latent_dim, generator=g, dtype=self.W.dtype).to(self.W.device)
            noise = torch.randn(n, self.event_shape[0], generator=g, dtype=self.W.dtype).to(self.W.device)
            return z @ self.W.T + self.b + torch.exp(self.log_s) * noise


def orthogonal_linear_gaussian(data_dim: int = 6, latent_dim: int = 3, seed: int = 0, **kw) -> LinearGaussianVAE:
    """A model whose W has orthogonal columns, so the exact posterior covariance is diagonal."""
    model = LinearGaussianVAE(data_dim, latent_dim, seed, **kw)
    with torch.no_grad():
        q, _ = torch.linalg.qr(model.W)
        model.W.copy_(q * torch.linspace(0.5, 2.0, latent_dim, dtype=q.dtype))
    return model


class RainforthToy(nn.Module):
    """Rainforth et al. 2018 toy: z ~ N(mu, I), x | z ~ N(z, I), q(z | x) = N(A x + b, 2/3 I), D = 20.

    theta = mu (decoder), phi = (A, b) (encoder); log p(x) = -(D/2) log(4 pi) - |x - mu|^2 / 4.
    """

    def __init__(self, dim: int = 20, seed: int = 0, perturb: float = 0.01) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.latent_dim, self.event_shape = dim, (dim,)
        self.mu_true = torch.randn(dim, generator=g, dtype=torch.float64)
        # the optimum is A = I/2, b = mu/2; the paper evaluates at a point perturbed from it
        self.mu = nn.Parameter(self.mu_true + perturb * torch.randn(dim, generator=g, dtype=torch.float64))
        self.A = nn.Parameter(
            0.5 * torch.eye(dim, dtype=torch.float64)
            + perturb * torch.randn(dim, dim, generator=g, dtype=torch.float64)
        )
        self.b = nn.Parameter(self.mu_true / 2 + perturb * torch.randn(dim, generator=g, dtype=torch.float64))

    def log_weights(self, x: Tensor, num_samples: int, *, stop_q_params: bool = False) -> LogWeights:
        mean = x @ self.A.T + self.b
        logvar = torch.full_like(mean, math.log(2 / 3))
        eps = torch.randn((num_samples, *mean.shape), dtype=mean.dtype)
        z = mean + math.sqrt(2 / 3) * eps
        log_q = _normal_logpdf(z, mean, logvar)
        log_pz = _normal_logpdf(z, self.mu, z.new_zeros(()))
        log_px_z = _normal_logpdf(x, z, z.new_zeros(()))
        return LogWeights(log_px_z + log_pz - log_q, log_px_z, log_pz, log_q, z)

    def sample_data(self, n: int, seed: int = 1) -> Tensor:
        g = torch.Generator().manual_seed(seed)
        z = self.mu_true + torch.randn(n, self.latent_dim, generator=g, dtype=torch.float64)
        return z + torch.randn(n, self.latent_dim, generator=g, dtype=torch.float64)

    def encoder_parameters(self) -> list[nn.Parameter]:
        return [self.A, self.b]

    def decoder_parameters(self) -> list[nn.Parameter]:
        return [self.mu]


class IWAESurrogate:
    """A minimal IWAE-K estimator (the estimators package may not be there): -mean_B log_mean_exp."""

    name = "iwae"

    def __init__(self, num_samples: int) -> None:
        self.num_samples = num_samples

    def __call__(self, model: nn.Module, x: Tensor):
        log_w = model.log_weights(x, self.num_samples).log_w
        bound = torch.logsumexp(log_w, 0) - math.log(self.num_samples)

        @dataclass
        class Est:
            bound: Tensor
            surrogate: Tensor
            log_w: Tensor

        return Est(bound, -bound.mean(), log_w)
