"""The Posterior base class: a minimal subclass still works, and the shared helpers."""

from __future__ import annotations

import pytest
import torch

from vaebench.posteriors import POSTERIORS, DiagonalGaussian, Posterior, standard_normal_log_prob


class _Toy(Posterior):
    """Implements only the required method, like a test double in another package."""

    def rsample_and_log_prob(self, h, num_samples=1, *, path_gradient=False):
        z = torch.zeros(num_samples, h.shape[0], self.latent_dim)
        return z, torch.zeros(num_samples, h.shape[0])


def test_a_subclass_needs_only_rsample_and_log_prob():
    toy = _Toy(feature_dim=2, latent_dim=3)
    h = torch.randn(4, 2)
    assert toy.kl_to_prior(h) is None and toy.to_distribution(h) is None
    assert toy.family_name() == "_Toy"
    # No log_prob and no analytic KL: the advice is what the family supports, never 'elbo' (which
    # needs the analytic KL) nor 'stl'/'dreg' (which need log_prob).
    with pytest.raises(NotImplementedError, match=r"supports \('elbo_mc', 'iwae', 'renyi'\)"):
        toy.log_prob(torch.zeros(1, 4, 3), h)
    with pytest.raises(NotImplementedError, match="sample_from_noise"):
        toy.sample_from_noise(torch.zeros(1, 4, 3), h)
    with pytest.raises(ValueError, match=r"supports \('elbo_mc', 'iwae', 'renyi'\).*diagonal"):
        toy.log_prob_stopped(torch.zeros(1, 4, 3), h)


@pytest.mark.parametrize("bad", [0, -2, 1.5, True])
def test_constructor_dims_are_validated(bad):
    with pytest.raises(ValueError, match="feature_dim must be an int >= 1"):
        _Toy(feature_dim=bad, latent_dim=3)


def test_log_prob_stopped_leaves_the_module_untouched():
    q = DiagonalGaussian(feature_dim=2, latent_dim=3)
    before = {k: v.clone() for k, v in q.state_dict().items()}
    z = torch.randn(2, 4, 3, requires_grad=True)
    q.log_prob_stopped(z, torch.randn(4, 2)).sum().backward()
    assert all(p.grad is None for p in q.parameters()) and z.grad is not None
    for k, v in q.state_dict().items():
        assert torch.equal(v, before[k])
        assert isinstance(dict(q.named_parameters())[k], torch.nn.Parameter)


def test_every_family_builds_from_the_registry_with_keywords_only():
    for name in POSTERIORS.names():
        posterior = POSTERIORS.get(name)(feature_dim=3, latent_dim=2)
        assert posterior.family_name() == name


class _ShiftOnly(Posterior):
    """Implements only sample_from_noise: z = eps + 1, log q = log N(eps; 0, I)."""

    def sample_from_noise(self, eps, h):
        return eps + 1.0, standard_normal_log_prob(eps)


def test_rsample_and_log_prob_is_derived_from_sample_from_noise():
    q = _ShiftOnly(feature_dim=2, latent_dim=3)
    h = torch.randn(4, 2)
    torch.manual_seed(5)
    z, log_q = q.rsample_and_log_prob(h, 6)
    torch.manual_seed(5)
    eps = torch.randn(6, 4, 3)
    torch.testing.assert_close(z, eps + 1.0)
    torch.testing.assert_close(log_q, standard_normal_log_prob(eps))
    with pytest.raises(ValueError, match="path_gradient=True"):
        q.rsample_and_log_prob(h, 2, path_gradient=True)  # no log_prob: the one guard says so


def test_a_family_must_implement_one_of_the_two_spellings():
    class Neither(Posterior):
        pass

    with pytest.raises(TypeError, match="Neither must implement sample_from_noise.*or rsample_and_log_prob"):
        Neither(feature_dim=2, latent_dim=3)
