"""Shared helpers for the estimator tests: the linear-Gaussian model (exact log p(x), exact
posterior, exact ELBO and its gradient) and a Monte Carlo gradient harness.

Statistical checks use z-scores against standard errors from independent repetitions; the
thresholds are stated where they are used, with the number of coordinates they cover.
"""

from __future__ import annotations

import torch
from torch import Tensor

import vaebench.posteriors as vaebench_posteriors
from vaebench.estimators import Estimator
from vaebench.models import VAE, LinearGaussianVAE

DTYPE = torch.float64


def make_model(D: int = 4, d: int = 2, *, seed: int = 0, exact: bool = True, perturb: float = 0.3) -> LinearGaussianVAE:
    """A random linear-Gaussian model; q exact or perturbed away from the exact posterior."""
    g = torch.Generator().manual_seed(seed)
    W = torch.randn(D, d, generator=g, dtype=DTYPE)
    b = torch.randn(D, generator=g, dtype=DTYPE)
    model = LinearGaussianVAE.from_params(W, b, 0.8)
    if not exact:
        q = model.posterior
        with torch.no_grad():
            q.linear.weight.add_(perturb * torch.randn(q.linear.weight.shape, generator=g, dtype=DTYPE))
            q.linear.bias.add_(perturb * torch.randn(q.linear.bias.shape, generator=g, dtype=DTYPE))
            q.log_scale_diag.add_(perturb)
            q.scale_offdiag.add_(perturb * torch.tril(torch.randn(d, d, generator=g, dtype=DTYPE), -1))
    return model


def make_data(model: LinearGaussianVAE, num_distinct: int = 4, repeat: int = 64, *, seed: int = 1) -> Tensor:
    """x: (num_distinct * repeat, D) drawn from the model, each distinct row repeated."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        z = torch.randn(num_distinct, model.latent_dim, generator=g, dtype=DTYPE)
        x = z @ model.W.T + model.b + model.s * torch.randn(num_distinct, model.W.shape[0], generator=g, dtype=DTYPE)
    return x.repeat(repeat, 1)


def flat_grad(model: torch.nn.Module, loss: Tensor) -> Tensor:
    """d loss / d theta for every parameter, flattened: (P,)."""
    params = list(model.parameters())
    grads = torch.autograd.grad(loss, params, allow_unused=True)
    return torch.cat([(torch.zeros_like(p) if g is None else g).flatten() for p, g in zip(params, grads, strict=True)])


def estimator_grads(
    model: torch.nn.Module, estimator: Estimator, x: Tensor, repetitions: int, *, seed: int = 2
) -> Tensor:
    """`repetitions` independent gradient estimates of -mean(bound): (R, P)."""
    torch.manual_seed(seed)
    return torch.stack([flat_grad(model, estimator(model, x).surrogate) for _ in range(repetitions)])


def z_scores(samples: Tensor, target: Tensor, *, atol: float = 1e-9) -> Tensor:
    """(mean(samples) - target) / standard error, per coordinate: (P,).

    Coordinates the estimator reproduces exactly (standard error ~ 0: e.g. the unused upper
    triangle of the scale matrix) count as 0 when they match within atol and inf otherwise.
    """
    mean = samples.mean(0)
    se = samples.std(0) / samples.shape[0] ** 0.5
    diff = mean - target
    exact = se < atol
    z = diff / torch.where(exact, torch.ones_like(se), se)
    return torch.where(exact, torch.where(diff.abs() < atol, 0.0, float("inf")), z).abs()


# Bonferroni-style threshold for "unbiased within Monte Carlo error": with about 30
# coordinates and 30 repetitions, P(max_j |t_29| > 5) is below 1e-3 for an unbiased
# estimator, while test_elbo shows that a real bias gives z-scores in the hundreds.
Z_MAX = 5.0
REPETITIONS = 30


class RowShift(torch.nn.Module):
    """Wraps a module and adds a per-row shift delta: (R, F) to its output, so that
    d(sum of row bounds) / d delta is the per-row gradient w.r.t. that output (one backward
    gives R independent gradient draws). Inputs may be (R, .) or (K * R, .), K-major."""

    def __init__(self, inner: torch.nn.Module, delta: Tensor) -> None:
        super().__init__()
        self.inner = inner
        self.delta = delta

    def forward(self, h: Tensor) -> Tensor:
        out = self.inner(h)
        rows = self.delta.shape[0]
        return (out.view(-1, rows, out.shape[-1]) + self.delta).view(out.shape)


def rainforth_toy(D: int = 20, *, seed: int = 0, perturb: float = 0.01) -> tuple[LinearGaussianVAE, Tensor, Tensor]:
    """Rainforth et al.'s toy: z ~ N(mu, I), x | z ~ N(z, I), D = 20, written as the
    linear-Gaussian model with W = I, b = mu, s = 1 on z' = z - mu; the encoder
    q(z' | x) = N(A x + c, 2/3 I) with A, c perturbed from the optimum (I/2, -mu/2) by
    N(0, perturb^2). Returns the model, one x ~ p(x) = N(mu, 2 I) and A."""
    g = torch.Generator().manual_seed(seed)
    mu = torch.randn(D, generator=g, dtype=DTYPE)
    x = mu + 2**0.5 * torch.randn(D, generator=g, dtype=DTYPE)
    model = LinearGaussianVAE.from_params(torch.eye(D, dtype=DTYPE), mu, 1.0, learn_std=False)
    A = 0.5 * torch.eye(D, dtype=DTYPE) + perturb * torch.randn(D, D, generator=g, dtype=DTYPE)
    c = -0.5 * mu + perturb * torch.randn(D, generator=g, dtype=DTYPE)
    model.posterior.set_(A, c, (2.0 / 3.0) * torch.eye(D, dtype=DTYPE))
    return model, x, A


def per_row_snr(
    model: LinearGaussianVAE, A: Tensor, x: Tensor, estimator: Estimator, rows: int, *, seed: int
) -> tuple[Tensor, Tensor]:
    """R independent draws of the gradient w.r.t. the encoder's mean offset c and the
    decoder's bias b, each (R, D), for one example x: (D,)."""
    torch.manual_seed(seed)
    D = x.shape[0]
    delta_q = torch.zeros(rows, model.latent_dim, dtype=DTYPE, requires_grad=True)
    delta_p = torch.zeros(rows, D, dtype=DTYPE, requires_grad=True)
    encoder, decoder = model.encoder, model.decoder
    # The shift sits on h = x (the encoder is the identity), so d/d delta_q = A^T d/d mean.
    model.encoder, model.decoder = RowShift(encoder, delta_q), RowShift(decoder, delta_p)
    try:
        estimate = estimator(model, x.expand(rows, D).clone())
        g_h, g_b = torch.autograd.grad(estimate.surrogate * rows, [delta_q, delta_p])
    finally:
        model.encoder, model.decoder = encoder, decoder
    g_c = torch.linalg.solve(A.T, g_h.T).T
    return g_c, g_b


def snr(draws: Tensor) -> tuple[float, float]:
    """The SNR |E g| / std g averaged over coordinates, from draws: (R, P), and its standard
    error: per coordinate about sqrt((1 + SNR^2 / 2) / R) (the delta method for a Gaussian g),
    divided by sqrt(P) for the average of P independent coordinates.

    |E g| is estimated as sqrt(max(mean^2 - var / R, 0)): mean^2 overestimates (E g)^2 by
    var / R, which would otherwise put a floor of about 0.8 / sqrt(R) under small SNRs."""
    rows, coords = draws.shape
    mean_sq = (draws.mean(0).square() - draws.var(0) / rows).clamp(min=0)
    per_coordinate = mean_sq.sqrt() / draws.std(0)
    se = torch.sqrt((1 + per_coordinate.square() / 2) / rows).mean() / coords**0.5
    return per_coordinate.mean().item(), se.item()


class NoLogProbGaussian(vaebench_posteriors.DiagonalGaussian):
    """A diagonal Gaussian that declares no tractable log_prob, like most flows."""

    has_log_prob = False

    def log_prob(self, z: Tensor, h: Tensor) -> Tensor:
        return vaebench_posteriors.Posterior.log_prob(self, z, h)

    def kl_to_prior(self, h: Tensor) -> None:
        return None


def no_log_prob_model() -> VAE:
    """A small Bernoulli VAE whose family has no log_prob, and a batch for it."""
    from vaebench.models import BernoulliLikelihood, MLPDecoder, MLPEncoder

    encoder = MLPEncoder((12,), (8,))
    return VAE(encoder, NoLogProbGaussian(8, 3), MLPDecoder(3, (12,), 1, (8,)), BernoulliLikelihood(), (12,))


def encoder_mask(model: VAE) -> Tensor:
    """A boolean mask over `flat_grad`'s coordinates: True for phi (encoder + posterior)."""
    phi = {id(p) for p in model.encoder_parameters()}
    return torch.cat([torch.full((p.numel(),), id(p) in phi) for p in model.parameters()])
