"""`renyi` (the variational Renyi bound)."""

from __future__ import annotations

import itertools

import pytest
import torch

from vaebench.estimators import ELBOMC, IWAE, Renyi

from .ground_truth import (
    REPETITIONS,
    Z_MAX,
    estimator_grads,
    flat_grad,
    make_data,
    make_model,
    z_scores,
)


def _same_draws(estimator, model, x, seed=11):
    torch.manual_seed(seed)
    est = estimator(model, x)
    return est, flat_grad(model, est.surrogate)


def test_alpha_zero_is_iwae_and_alpha_one_is_the_elbo():
    model = make_model(exact=False)
    x = make_data(model, repeat=2)
    for alpha, other in ((0.0, IWAE(5)), (1.0, ELBOMC(5))):
        a, ga = _same_draws(Renyi(5, alpha=alpha), model, x)
        b, gb = _same_draws(other, model, x)
        torch.testing.assert_close(a.bound, b.bound)
        torch.testing.assert_close(ga, gb)


def test_alpha_near_one_approaches_the_elbo():
    # (1/t) log mean_k exp(t l_k) = mean(l) + (t / 2) var(l) + O(t^2), t = 1 - alpha.
    model = make_model(exact=False)
    x = make_data(model, repeat=2)
    t = 1e-6
    a, _ = _same_draws(Renyi(5, alpha=1.0 - t), model, x)
    b, _ = _same_draws(ELBOMC(5), model, x)
    expected = t / 2 * b.log_w.var(0, unbiased=False)
    torch.testing.assert_close(a.bound - b.bound, expected, rtol=1e-2, atol=1e-9)


def test_bound_is_non_increasing_in_alpha_on_the_same_draws():
    # A power mean of the weights with exponent 1 - alpha: monotone in alpha, draw by draw.
    model = make_model(exact=False)
    x = make_data(model, repeat=4)
    bounds = [_same_draws(Renyi(8, alpha=a), model, x)[0].bound for a in (0.0, 0.3, 0.7, 1.0, 2.0)]
    for hi, lo in itertools.pairwise(bounds):
        assert (lo <= hi + 1e-12).all()
    assert (bounds[0] > bounds[-1]).all()


def test_exact_posterior_gives_log_px_for_every_alpha():
    model = make_model(exact=True)
    x = make_data(model, repeat=1)
    for alpha in (0.0, 0.5, 2.0):
        torch.testing.assert_close(
            Renyi(4, alpha=alpha)(model, x).bound, model.log_marginal(x).detach(), rtol=0, atol=1e-10
        )


@pytest.mark.parametrize("alpha", [-0.5, float("nan"), float("inf")])
def test_alpha_out_of_range_names_the_fix(alpha):
    with pytest.raises(ValueError, match="alpha"):
        Renyi(2, alpha=alpha)


def test_gradient_at_the_exact_posterior_is_unbiased_for_grad_log_px():
    # L_alpha(theta) <= log p_theta(x) with equality at the exact posterior (held fixed), so
    # the gradient's expectation is grad_theta log p(x) (and 0 for phi).
    model = make_model(exact=True)
    x = make_data(model, repeat=16)
    target = flat_grad(model, -model.log_marginal(x).mean())
    grads = estimator_grads(model, Renyi(4, alpha=0.5), x, REPETITIONS)
    assert z_scores(grads, target).max() < Z_MAX
