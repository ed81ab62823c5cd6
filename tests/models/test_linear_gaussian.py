"""The linear-Gaussian ground truth against independent computations."""

from __future__ import annotations

import math

import pytest
import torch
from torch.distributions import MultivariateNormal

from vaebench.models import (
    AffineGaussianPosterior,
    LinearGaussianVAE,
    build_model,
    linear_gaussian_log_marginal,
)

D = torch.float64


def _params(Dx=5, d=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(Dx, d, generator=g, dtype=D), torch.randn(Dx, generator=g, dtype=D), 0.6


def test_log_marginal_matches_multivariate_normal():
    W, b, s = _params()
    x = torch.randn(7, 5, dtype=D)
    expected = MultivariateNormal(b, W @ W.T + s**2 * torch.eye(5, dtype=D)).log_prob(x)
    torch.testing.assert_close(linear_gaussian_log_marginal(x, W, b, s), expected)


def test_exact_posterior_is_bayes_rule():
    # log p(z | x) = log p(x | z) + log p(z) - log p(x) at arbitrary z.
    W, b, s = _params()
    model = LinearGaussianVAE.from_params(W, b, s)
    x = torch.randn(3, 5, dtype=D)
    z = torch.randn(4, 3, 3, dtype=D)
    mean, cov = model.exact_posterior(x)
    log_post = MultivariateNormal(mean, cov).log_prob(z)
    log_joint = model.likelihood.log_prob(x, model.decode(z)) + model.prior.log_prob(z)
    torch.testing.assert_close(log_post, log_joint - model.log_marginal(x))
    # ... and the posterior family set to it reproduces it.
    torch.testing.assert_close(model.posterior.log_prob(z, x), log_post)


def test_analytic_elbo_gap_is_the_posterior_kl_and_matches_monte_carlo():
    W, b, s = _params()
    model = LinearGaussianVAE.from_params(W, b, s)
    with torch.no_grad():
        model.posterior.linear.bias.add_(0.4)
        model.posterior.log_scale_diag.sub_(0.3)
        model.posterior.scale_offdiag.add_(0.2)
    x = torch.randn(2, 5, dtype=D)
    gap = model.log_marginal(x) - model.analytic_elbo(x)
    torch.testing.assert_close(gap, model.posterior_kl(x))
    assert (gap > 0).all()
    torch.manual_seed(0)
    lw = model.log_weights(x, 50000).log_w
    se = lw.std(0) / math.sqrt(50000)
    assert ((lw.mean(0) - model.analytic_elbo(x)).abs() < 4 * se).all()


def test_affine_posterior_kl_and_stopped_path():
    q = AffineGaussianPosterior(4, 2).double()
    with torch.no_grad():
        q.scale_offdiag.normal_()
        q.log_scale_diag.normal_()
        q.linear.weight.normal_()
    h = torch.randn(3, 4, dtype=D)
    dist = MultivariateNormal(q.analytic_mean(h), scale_tril=q.scale_tril())
    prior = MultivariateNormal(torch.zeros(2, dtype=D), torch.eye(2, dtype=D))
    torch.testing.assert_close(q.kl_to_prior(h), torch.distributions.kl_divergence(dist, prior))
    torch.manual_seed(1)
    z, log_q = q.rsample_and_log_prob(h, 5)
    torch.testing.assert_close(log_q, dist.log_prob(z))
    torch.manual_seed(1)
    _, log_q2 = q.rsample_and_log_prob(h, 5, path_gradient=True)
    torch.testing.assert_close(log_q2, log_q)


def test_built_by_name_and_errors():
    model = build_model({"name": "linear_gaussian", "latent_dim": 2}, event_shape=(6,), likelihood="gaussian")
    assert isinstance(model, LinearGaussianVAE) and model.latent_dim == 2
    other = build_model({"name": "linear_gaussian", "exact_family": False}, event_shape=(6,), likelihood="gaussian")
    with pytest.raises(TypeError, match="closed-form only for the AffineGaussianPosterior"):
        other.analytic_elbo(torch.zeros(1, 6))
    with pytest.raises(ValueError, match="needs likelihood='gaussian'"):
        build_model("linear_gaussian", event_shape=(6,), likelihood="bernoulli")
    with pytest.raises(ValueError, match=r"W must be \(D, d\)"):
        LinearGaussianVAE.from_params(torch.zeros(3), torch.zeros(3), 1.0)
