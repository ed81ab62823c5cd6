"""`elbo` (analytic KL) on the linear-Gaussian ground truth."""

from __future__ import annotations

import math

import pytest
import torch

from vaebench.estimators import ELBO, build_estimator

from .ground_truth import (
    REPETITIONS,
    Z_MAX,
    estimator_grads,
    flat_grad,
    make_data,
    make_model,
    no_log_prob_model,
    z_scores,
)


def test_kl_is_the_closed_form():
    model = make_model(exact=False)
    x = make_data(model, repeat=1)
    q = model.posterior
    m, L = q.analytic_mean(x), q.scale_tril()
    S = L @ L.T
    expected = 0.5 * (torch.trace(S) + m.square().sum(-1) - m.shape[-1] - torch.logdet(S))
    torch.testing.assert_close(model.kl(x), expected)


def test_bound_is_unbiased_and_equals_log_px_at_the_exact_posterior():
    model = make_model(exact=True)
    x = make_data(model, num_distinct=1, repeat=20000)
    torch.manual_seed(0)
    bound = ELBO(1)(model, x).bound
    se = bound.std() / math.sqrt(bound.numel())
    assert abs(bound.mean() - model.log_marginal(x[:1]).detach()) < 4 * se
    torch.testing.assert_close(model.analytic_elbo(x[:1]), model.log_marginal(x[:1]), rtol=0, atol=1e-10)


@pytest.mark.parametrize("num_samples", [1, 3])
def test_gradient_is_unbiased(num_samples):
    model = make_model(exact=False)
    x = make_data(model, repeat=16)
    target = flat_grad(model, -model.analytic_elbo(x).mean())
    grads = estimator_grads(model, ELBO(num_samples), x, REPETITIONS)
    assert z_scores(grads, target).max() < Z_MAX


def test_the_gradient_check_detects_a_wrong_target():
    # The harness can fail: the IWAE-8 gradient is not the ELBO's.
    model = make_model(exact=False)
    x = make_data(model, repeat=16)
    target = flat_grad(model, -model.analytic_elbo(x).mean())
    grads = estimator_grads(model, build_estimator("iwae", num_samples=8), x, REPETITIONS)
    assert z_scores(grads, target).max() > 10 * Z_MAX


def test_kl_weight_scales_only_the_kl_gradient():
    model = make_model(exact=False)
    x = make_data(model, repeat=2)
    torch.manual_seed(3)
    half = ELBO(2, kl_weight=0.5)(model, x)
    torch.manual_seed(3)
    full = ELBO(2)(model, x)
    torch.testing.assert_close(half.bound, full.bound)  # the bound reports beta = 1
    g_half = flat_grad(model, half.surrogate)
    g_full = flat_grad(model, full.surrogate)
    g_kl = flat_grad(model, model.kl(x).mean())
    torch.testing.assert_close(g_half, g_full - 0.5 * g_kl)


def test_no_analytic_kl_names_the_alternative():
    with pytest.raises(ValueError, match="use 'elbo_mc'"):
        ELBO()(no_log_prob_model(), torch.bernoulli(torch.full((2, 12), 0.5)))


def test_surrogate_value_is_minus_mean_bound():
    model = make_model(exact=False)
    x = make_data(model, repeat=2)
    est = ELBO(2)(model, x)
    torch.testing.assert_close(est.surrogate, -est.bound.mean())
    assert set(est.components) >= {"log_px_z", "log_pz", "log_q", "kl"}
