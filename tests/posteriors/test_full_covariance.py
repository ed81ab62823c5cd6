"""Full-covariance Gaussian: torch.distributions.MultivariateNormal as the reference."""

from __future__ import annotations

import pytest
import torch
from torch.distributions import MultivariateNormal, kl_divergence

from vaebench.posteriors import DiagonalGaussian, FullCovarianceGaussian


@pytest.mark.parametrize("latent_dim", [1, 2, 5])
def test_equals_torch_multivariate_normal(latent_dim):
    q = FullCovarianceGaussian(feature_dim=4, latent_dim=latent_dim)
    h = torch.randn(3, 4)
    mu, log_diag, scale_tril = q.params(h)
    assert torch.equal(scale_tril, scale_tril.tril())
    torch.testing.assert_close(scale_tril.diagonal(dim1=-2, dim2=-1), log_diag.exp())
    mvn = MultivariateNormal(mu, scale_tril=scale_tril)
    z, log_q = q.rsample_and_log_prob(h, 5)
    torch.testing.assert_close(log_q, mvn.log_prob(z))
    torch.testing.assert_close(q.log_prob(z, h), mvn.log_prob(z))
    prior = MultivariateNormal(torch.zeros(latent_dim), torch.eye(latent_dim))
    torch.testing.assert_close(q.kl_to_prior(h), kl_divergence(mvn, prior))


def test_sample_covariance_is_l_l_transpose():
    q = FullCovarianceGaussian(feature_dim=4, latent_dim=3)
    h = torch.randn(1, 4)
    _, _, scale_tril = q.params(h)
    with torch.no_grad():
        z, _ = q.rsample_and_log_prob(h, 20000)
    cov = torch.cov(z[:, 0].T)
    expected = scale_tril[0] @ scale_tril[0].T
    torch.testing.assert_close(cov, expected, rtol=0, atol=0.05 * expected.abs().max().item())


def test_zero_off_diagonal_is_the_diagonal_family():
    full = FullCovarianceGaussian(feature_dim=4, latent_dim=3)
    diag = DiagonalGaussian(feature_dim=4, latent_dim=3)
    with torch.no_grad():
        full.off_diag.weight.zero_()
        full.off_diag.bias.zero_()
        diag.mean.load_state_dict(full.mean.state_dict())
        diag.logvar.weight.copy_(2 * full.log_diag.weight)  # logvar = 2 s
        diag.logvar.bias.copy_(2 * full.log_diag.bias)
    h, z = torch.randn(2, 4), torch.randn(3, 2, 3)
    torch.testing.assert_close(full.log_prob(z, h), diag.log_prob(z, h))
    torch.testing.assert_close(full.kl_to_prior(h), diag.kl_to_prior(h))
