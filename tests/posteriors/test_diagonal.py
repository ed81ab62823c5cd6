"""Diagonal Gaussian: torch.distributions.Normal as the reference, and the fused-op path."""

from __future__ import annotations

import torch
from torch.distributions import Independent, Normal, kl_divergence

from vaebench.ops import reparameterize_reference
from vaebench.posteriors import DiagonalGaussian


def test_equals_torch_normal_including_extreme_variances():
    q = DiagonalGaussian(feature_dim=5, latent_dim=3)
    with torch.no_grad():
        q.logvar.bias.copy_(torch.tensor([-30.0, 0.0, 30.0]))
    h = torch.randn(7, 5)
    mu, logvar = q.params(h)
    normal = Independent(Normal(mu, (0.5 * logvar).exp()), 1)
    z, log_q = q.rsample_and_log_prob(h, 3)
    torch.testing.assert_close(log_q, normal.log_prob(z))
    torch.testing.assert_close(q.log_prob(z, h), normal.log_prob(z))
    prior = Independent(Normal(torch.zeros(7, 3), torch.ones(7, 3)), 1)
    torch.testing.assert_close(q.kl_to_prior(h), kl_divergence(normal, prior))


def test_sample_from_noise_is_the_reference_reparameterization():
    q = DiagonalGaussian(feature_dim=5, latent_dim=3)
    h, eps = torch.randn(4, 5), torch.randn(2, 4, 3)
    mu, logvar = q.params(h)
    expected = reparameterize_reference(mu, logvar, eps)
    for got, want in zip(q.sample_from_noise(eps, h), expected, strict=True):
        torch.testing.assert_close(got, want)


def test_path_gradient_drops_the_score_term():
    """At fixed eps, d log q / d logvar is -1/2 per dim (the score) for the ordinary gradient
    and -eps^2 / 2 for the path gradient (through z = mu + sigma eps only: (-eps / sigma) *
    (sigma eps / 2)); their difference has expectation 0. eps is read back from z, so the test
    holds whichever noise the fused op draws."""
    q = DiagonalGaussian(feature_dim=2, latent_dim=3)
    h = torch.randn(1, 2)
    z, log_q_path = q.rsample_and_log_prob(h, 1, path_gradient=True)
    (g_path,) = torch.autograd.grad(log_q_path.sum(), q.logvar.bias, retain_graph=True)
    mu, logvar = q.params(h)
    eps = ((z - mu) * (-0.5 * logvar).exp()).detach().view(3)
    torch.testing.assert_close(g_path, -0.5 * eps.square())
    _, log_q_full = q.rsample_and_log_prob(h, 1)
    (g_full,) = torch.autograd.grad(log_q_full.sum(), q.logvar.bias)
    torch.testing.assert_close(g_full, torch.full((3,), -0.5))
