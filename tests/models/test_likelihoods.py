"""Likelihoods against torch.distributions and their normalization."""

from __future__ import annotations

import math

import pytest
import torch
from torch.distributions import Bernoulli, Normal

from vaebench.models import LIKELIHOODS
from vaebench.models.likelihoods import (
    BernoulliLikelihood,
    Categorical256Likelihood,
    DiscretizedLogisticLikelihood,
    GaussianLikelihood,
)

D = torch.float64


def test_registry_names():
    assert LIKELIHOODS.names() == ["bernoulli", "categorical256", "discretized_logistic", "gaussian"]


def test_bernoulli_matches_torch_and_extreme_logits_stay_finite():
    g = torch.Generator().manual_seed(0)
    x = torch.bernoulli(torch.full((3, 7), 0.4, dtype=D), generator=g)
    logits = 5 * torch.randn(2, 3, 1, 7, generator=g, dtype=D)
    expected = Bernoulli(logits=logits[:, :, 0]).log_prob(x).sum(-1)
    torch.testing.assert_close(BernoulliLikelihood().log_prob(x, logits), expected)
    huge = torch.full((1, 3, 1, 7), 800.0, dtype=D)
    assert torch.isfinite(BernoulliLikelihood().log_prob(x, huge)).all()


@pytest.mark.parametrize("std", ["decoder", "learned", 0.3])
def test_gaussian_matches_torch(std):
    g = torch.Generator().manual_seed(1)
    lik = GaussianLikelihood(std, init_std=0.7).double()
    x = torch.randn(4, 2, 3, generator=g, dtype=D)
    params = torch.randn(5, 4, lik.num_params, 2, 3, generator=g, dtype=D)
    if std == "decoder":
        scale = params[:, :, 1].exp()
    else:
        scale = torch.full_like(params[:, :, 0], 0.7 if std == "learned" else 0.3)
    expected = Normal(params[:, :, 0], scale).log_prob(x).flatten(2).sum(-1)
    torch.testing.assert_close(lik.log_prob(x, params), expected)
    assert isinstance(lik.log_std, torch.nn.Parameter) == (std == "learned")
    assert lik.discrete is False


def _all_levels(event=(2,)):
    """x: (256, *event) every 8-bit level in every dimension."""
    return (torch.arange(256, dtype=D) / 255).view(256, *([1] * len(event))).expand(256, *event)


@pytest.mark.parametrize("log_scale", [-6.0, -3.0, 0.0, 2.0])
def test_discretized_logistic_sums_to_one_over_256_levels(log_scale):
    lik = DiscretizedLogisticLikelihood()
    x = _all_levels((1,))
    params = torch.empty(1, 256, 2, 1, dtype=D)
    params[:, :, 0] = 0.13  # the mean, in [-1, 1]
    params[:, :, 1] = log_scale
    total = torch.logsumexp(lik.log_prob(x, params)[0], 0)
    # With tiny scales the bin mass underflows for far-away bins; those contribute nothing.
    assert abs(total.item()) < 1e-6


def test_categorical_sums_to_one_and_the_mean_is_the_expectation():
    g = torch.Generator().manual_seed(2)
    lik = Categorical256Likelihood()
    logits = torch.randn(1, 1, 256, 1, generator=g, dtype=D).expand(1, 256, 256, 1)
    total = torch.logsumexp(lik.log_prob(_all_levels((1,)), logits)[0], 0)
    assert abs(total.item()) < 1e-10
    p = torch.softmax(logits[0, 0, :, 0], 0)
    expected = (p * torch.arange(256, dtype=D) / 255).sum()
    torch.testing.assert_close(lik.mean(logits[:, :1])[0, 0, 0], expected)


def test_bits_per_dim_and_output_bias():
    lik = BernoulliLikelihood()
    nll = torch.tensor([784 * math.log(2.0)])
    torch.testing.assert_close(lik.bits_per_dim(nll, (1, 28, 28)), torch.tensor([1.0]))
    bias = lik.output_bias(torch.tensor([0.0, 0.5, 1.0], dtype=D))
    torch.testing.assert_close(bias, torch.tensor([math.log(0.001 / 0.999), 0.0, math.log(0.999 / 0.001)], dtype=D))


def test_wrong_param_shape_is_named():
    with pytest.raises(ValueError, match=r"params must be \(K, 3, 2, 5\)"):
        DiscretizedLogisticLikelihood().log_prob(torch.zeros(3, 5), torch.zeros(1, 3, 1, 5))
    with pytest.raises(ValueError, match="std must be"):
        GaussianLikelihood("fixed")
    with pytest.raises(ValueError, match="fixed std must be a float > 0"):
        GaussianLikelihood(-1.0)
