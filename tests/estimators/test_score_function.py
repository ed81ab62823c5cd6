"""`score_function` (REINFORCE with a leave-one-out baseline) on the linear-Gaussian model."""

from __future__ import annotations

import pytest
import torch

from vaebench.estimators import ELBOMC, ScoreFunction

from .ground_truth import (
    REPETITIONS,
    Z_MAX,
    encoder_mask,
    estimator_grads,
    flat_grad,
    make_data,
    make_model,
    no_log_prob_model,
    z_scores,
)


@pytest.mark.parametrize("baseline", ["leave_one_out", "none"])
def test_gradient_is_unbiased_for_the_elbo(baseline):
    model = make_model(exact=False)
    x = make_data(model, repeat=16)
    target = flat_grad(model, -model.analytic_elbo(x).mean())
    grads = estimator_grads(model, ScoreFunction(4, baseline=baseline), x, REPETITIONS)
    assert z_scores(grads, target).max() < Z_MAX


def test_baseline_reduces_variance_and_reparameterization_more():
    model = make_model(exact=False)
    x = make_data(model, repeat=16)
    enc = encoder_mask(model)
    loo = estimator_grads(model, ScoreFunction(4), x, REPETITIONS)[:, enc].var(0).sum()
    raw = estimator_grads(model, ScoreFunction(4, baseline="none"), x, REPETITIONS)[:, enc].var(0).sum()
    rep = estimator_grads(model, ELBOMC(4), x, REPETITIONS)[:, enc].var(0).sum()
    assert rep < loo < raw, (rep, loo, raw)


def test_bound_equals_the_k_sample_elbo():
    model = make_model(exact=True)
    x = make_data(model, repeat=1)
    torch.testing.assert_close(ScoreFunction(3)(model, x).bound, model.log_marginal(x).detach(), rtol=0, atol=1e-10)


def test_invalid_configurations_name_the_fix():
    assert ScoreFunction(4).baseline == "leave_one_out" and ScoreFunction(1).baseline == "none"
    with pytest.raises(ValueError, match="num_samples >= 2 or baseline='none'"):
        ScoreFunction(1, baseline="leave_one_out")
    with pytest.raises(ValueError, match="baseline must be"):
        ScoreFunction(2, baseline="running")
    with pytest.raises(ValueError, match="estimator 'score_function' needs log q"):
        ScoreFunction(2)(no_log_prob_model(), torch.bernoulli(torch.full((2, 12), 0.5)))
