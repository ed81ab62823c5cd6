import math

import pytest
import torch
from torch.distributions import MultivariateNormal, kl_divergence

from vaebench.datasets import ExactLogLikelihood, LinearGaussian, load


@pytest.fixture
def model():
    return LinearGaussian.random(obs_dim=7, latent_dim=3, noise_std=0.7, seed=1)


def test_log_px_equals_log_joint_minus_log_posterior_for_any_z(model):
    # Bayes: log p(x) = log p(x, z) - log p(z | x) for every z; checks all three closed forms.
    x, _ = model.sample(5, torch.Generator().manual_seed(0))
    z = torch.randn(4, 5, 3, dtype=torch.float64)
    post = model.exact_posterior(x)
    rhs = model.log_joint(x, z) - post.log_prob(z)
    torch.testing.assert_close(rhs, model.exact_log_px(x).expand(4, 5), rtol=1e-10, atol=1e-10)


def test_log_px_against_numerical_integration_in_one_dimension():
    model = LinearGaussian(
        torch.tensor([[1.5], [-0.5]], dtype=torch.float64),
        torch.tensor([0.2, 0.1], dtype=torch.float64),
        0.8,
    )
    x = torch.tensor([[0.7, -0.4]], dtype=torch.float64)
    z = torch.linspace(-12, 12, 200_001, dtype=torch.float64).reshape(-1, 1, 1)
    dz = (z[1] - z[0]).item()
    numeric = torch.logsumexp(model.log_joint(x, z), 0) + math.log(dz)
    torch.testing.assert_close(numeric, model.exact_log_px(x), rtol=0, atol=1e-8)


def test_sample_statistics_match_the_marginal(model):
    x, z = model.sample(200_000, torch.Generator().manual_seed(2))
    assert x.shape == (200_000, 7) and z.shape == (200_000, 3)
    C = model.marginal().covariance_matrix
    torch.testing.assert_close(x.mean(0), model.b, atol=0.03, rtol=0)
    torch.testing.assert_close(torch.cov(x.T), C, atol=0.06 * C.abs().max().item(), rtol=0)


def test_kl_to_posterior_is_closed_form_and_zero_at_the_posterior(model):
    x, _ = model.sample(6, torch.Generator().manual_seed(3))
    mean, cov = model.posterior_params(x)
    q_mean = mean + 0.3 * torch.randn_like(mean)
    q_var = torch.rand(6, 3, dtype=torch.float64) + 0.1
    expected = kl_divergence(MultivariateNormal(q_mean, torch.diag_embed(q_var)), model.exact_posterior(x))
    torch.testing.assert_close(model.kl_to_posterior(x, q_mean, q_var), expected)
    # ELBO = log p(x) - KL: with q equal to the posterior's diagonal, KL > 0 unless cov is diagonal.
    assert (model.kl_to_posterior(x, mean, torch.diagonal(cov).expand(6, 3)) >= 0).all()


def test_posterior_covariance_formula(model):
    M = model.W.T @ model.W + model.s**2 * torch.eye(3, dtype=torch.float64)
    _, cov = model.posterior_params(torch.zeros(1, 7, dtype=torch.float64))
    torch.testing.assert_close(cov, model.s**2 * torch.linalg.inv(M))


@pytest.mark.parametrize(
    "bad, match",
    [
        (dict(W=torch.zeros(3), b=torch.zeros(3), s=1.0), r"W must be \(D, d\)"),
        (dict(W=torch.zeros(3, 2), b=torch.zeros(4), s=1.0), r"b must be \(D,\)"),
        (dict(W=torch.zeros(3, 2), b=torch.zeros(3), s=0.0), "s .* > 0"),
    ],
)
def test_invalid_parameters(bad, match):
    with pytest.raises(ValueError, match=match):
        LinearGaussian(**bad)


def test_wrong_x_width_names_the_argument(model):
    with pytest.raises(ValueError, match=r"x must be \(\.\.\., 7\)"):
        model.exact_log_px(torch.zeros(2, 6))
    with pytest.raises(ValueError, match="q_var must be > 0"):
        model.kl_to_posterior(torch.zeros(1, 7), torch.zeros(1, 3), torch.zeros(1, 3))


def test_registered_dataset_exposes_ground_truth():
    s = load("linear_gaussian", sizes=(50, 10, 10), obs_dim=6, latent_dim=2, dtype=torch.float64)
    assert s.sizes() == {"train": 50, "valid": 10, "test": 10}
    assert s.event_shape == (6,) and s.likelihood == "gaussian"
    assert isinstance(s.ground_truth, ExactLogLikelihood)
    assert s.ground_truth.exact_log_px(s.tensor("test")).shape == (10,)
    again = load("linear_gaussian", sizes=(50, 10, 10), obs_dim=6, latent_dim=2, dtype=torch.float64)
    assert torch.equal(s.tensor("train"), again.tensor("train"))
    other = load("linear_gaussian", sizes=(50, 10, 10), obs_dim=6, latent_dim=2, seed=1, dtype=torch.float64)
    assert not torch.equal(s.tensor("train"), other.tensor("train"))
    assert torch.equal(s.ground_truth.W, other.ground_truth.W)  # the model depends on model_seed only


@pytest.mark.parametrize("sizes", [(10, 5), (10, 0, 5), (10, 5.5, 5)])
def test_registered_dataset_rejects_bad_sizes(sizes):
    with pytest.raises(ValueError, match="sizes must be three ints >= 1"):
        load("linear_gaussian", sizes=sizes)
