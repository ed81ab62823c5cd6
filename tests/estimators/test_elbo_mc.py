"""`elbo_mc` (Monte Carlo KL) on the linear-Gaussian ground truth."""

from __future__ import annotations

import pytest
import torch

from vaebench.estimators import ELBOMC, IWAE

from .ground_truth import (
    REPETITIONS,
    Z_MAX,
    estimator_grads,
    flat_grad,
    make_data,
    make_model,
    z_scores,
)


def test_exact_posterior_gives_log_px_for_every_draw():
    model = make_model(exact=True)
    x = make_data(model, repeat=1)
    torch.testing.assert_close(ELBOMC(5)(model, x).bound, model.log_marginal(x).detach(), rtol=0, atol=1e-10)


@pytest.mark.parametrize("num_samples", [1, 4])
def test_gradient_is_unbiased(num_samples):
    model = make_model(exact=False)
    x = make_data(model, repeat=16)
    target = flat_grad(model, -model.analytic_elbo(x).mean())
    grads = estimator_grads(model, ELBOMC(num_samples), x, REPETITIONS)
    assert z_scores(grads, target).max() < Z_MAX


def test_k1_is_iwae_k1():
    model = make_model(exact=False)
    x = make_data(model, repeat=2)
    torch.manual_seed(5)
    a = ELBOMC(1)(model, x)
    ga = flat_grad(model, a.surrogate)
    torch.manual_seed(5)
    b = IWAE(1)(model, x)
    torch.testing.assert_close(a.bound, b.bound)
    torch.testing.assert_close(ga, flat_grad(model, b.surrogate))


def test_kl_weight_one_matches_default_and_zero_drops_the_kl():
    model = make_model(exact=False)
    x = make_data(model, repeat=2)
    torch.manual_seed(6)
    est = ELBOMC(3, kl_weight=0.0)(model, x)
    torch.manual_seed(6)
    lw = model.log_weights(x, 3)
    torch.testing.assert_close(flat_grad(model, est.surrogate), flat_grad(model, -lw.log_px_z.mean()))
