"""Assertions shared by the posterior tests."""

from __future__ import annotations

import copy

import torch

from vaebench.posteriors import Posterior, standard_normal_log_prob


def perturbed(posterior: Posterior, scale: float = 0.3) -> Posterior:
    """A copy with N(0, scale^2) noise added to every parameter. Families start at their base
    (a flow at the identity, log|det| = 0), where a log-determinant check would be vacuous:
    the math is checked away from the init."""
    posterior = copy.deepcopy(posterior)
    with torch.no_grad():
        for p in posterior.parameters():
            p.add_(scale * torch.randn_like(p))
    return posterior


def assert_log_q_matches_autograd(posterior: Posterior, k: int = 2, b: int = 3) -> None:
    """log q(z) = log N(eps; 0, I) - log|det dz/deps| for z = sample_from_noise(eps, h), with
    autograd's Jacobian as the truth; samples must not depend on each other's noise. Checked
    on a perturbed copy of `posterior` (see `perturbed`)."""
    posterior = perturbed(posterior)
    d = posterior.latent_dim
    h = torch.randn(b, posterior.feature_dim)
    eps = torch.randn(k, b, d)
    _, log_q = posterior.sample_from_noise(eps, h)

    def sample(flat_eps):
        return posterior.sample_from_noise(flat_eps.view(k, b, d), h)[0].reshape(-1)

    jac = torch.autograd.functional.jacobian(sample, eps.reshape(-1)).view(k, b, d, k, b, d)
    for i in range(k):
        for j in range(b):
            block = jac[i, j, :, i, j, :]
            expected = standard_normal_log_prob(eps[i, j]) - torch.linalg.slogdet(block).logabsdet
            torch.testing.assert_close(log_q[i, j], expected, rtol=1e-9, atol=1e-9)
    independent = torch.eye(k * b, dtype=torch.bool).view(k, b, 1, k, b, 1).expand_as(jac)
    assert jac[~independent].abs().max() == 0
