"""vaebench.linear_gaussian, the one home of the linear-Gaussian closed forms, against torch.distributions."""

import torch
from torch.distributions import MultivariateNormal, kl_divergence

from vaebench import linear_gaussian as closed_form

F64 = torch.float64


def _params(D=6, d=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(D, d, generator=g, dtype=F64), torch.randn(D, generator=g, dtype=F64), 0.7


def test_log_marginal_matches_multivariate_normal_for_any_batch_shape():
    W, b, s = _params()
    x = torch.randn(2, 5, 6, dtype=F64)
    expected = MultivariateNormal(b, W @ W.T + s**2 * torch.eye(6, dtype=F64)).log_prob(x)
    got = closed_form.log_marginal(x, W, b, s)
    assert got.shape == (2, 5)
    torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-12)


def test_posterior_is_bayes_rule():
    # log p(x) = log p(x, z) - log p(z | x) for any z.
    W, b, s = _params()
    x, z = torch.randn(4, 6, dtype=F64), torch.randn(4, 3, dtype=F64)
    mean, cov = closed_form.posterior(x, W, b, s)
    log_joint = MultivariateNormal(torch.zeros(3, dtype=F64), torch.eye(3, dtype=F64)).log_prob(z) + MultivariateNormal(
        z @ W.T + b, s**2 * torch.eye(6, dtype=F64)
    ).log_prob(x)
    rhs = log_joint - MultivariateNormal(mean, cov).log_prob(z)
    torch.testing.assert_close(rhs, closed_form.log_marginal(x, W, b, s), rtol=1e-10, atol=1e-10)
    A, cov_map = closed_form.posterior_map(W, s)
    torch.testing.assert_close((x - b) @ A.T, mean)
    torch.testing.assert_close(cov_map, cov)


def test_kl_to_posterior_matches_torch_for_full_and_diagonal_q():
    W, b, s = _params()
    x = torch.randn(5, 6, dtype=F64)
    mean, cov = closed_form.posterior(x, W, b, s)
    p = MultivariateNormal(mean, cov)
    q_mean = mean + 0.3 * torch.randn(5, 3, dtype=F64)
    L = torch.tril(0.2 * torch.randn(3, 3, dtype=F64), -1) + torch.diag(torch.rand(3, dtype=F64) + 0.5)
    full = closed_form.kl_to_posterior(x, W, b, s, q_mean, L @ L.T)
    torch.testing.assert_close(full, kl_divergence(MultivariateNormal(q_mean, scale_tril=L), p))
    var = torch.rand(5, 3, dtype=F64) + 0.1
    diagonal = closed_form.kl_to_posterior(x, W, b, s, q_mean, torch.diag_embed(var))
    torch.testing.assert_close(diagonal, kl_divergence(MultivariateNormal(q_mean, torch.diag_embed(var)), p))
    zero = closed_form.kl_to_posterior(x, W, b, s, mean, cov)
    torch.testing.assert_close(zero, torch.zeros(5, dtype=F64), rtol=0, atol=1e-10)


def test_gradients_reach_the_parameters():
    W, b, _ = _params()
    W.requires_grad_(True)
    log_s = torch.tensor(-0.3, dtype=F64, requires_grad=True)
    closed_form.log_marginal(torch.randn(3, 6, dtype=F64), W, b, torch.exp(log_s)).sum().backward()
    assert W.grad is not None and log_s.grad is not None and torch.isfinite(W.grad).all()
