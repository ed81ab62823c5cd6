"""`stl` (sticking the landing) on the linear-Gaussian ground truth."""

from __future__ import annotations

import pytest
import torch

from vaebench.estimators import ELBOMC, IWAE, STL
from vaebench.models import build_model

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


def test_zero_encoder_variance_at_the_exact_posterior():
    # log p(x, z) - log q_stop(z) = log p(x) + (log p(z | x) - log q_stop(z)) has zero path
    # derivative when q = p(z | x): every draw of the encoder gradient is exactly 0.
    model = make_model(exact=True)
    x = make_data(model, repeat=4)
    enc = encoder_mask(model)
    grads = estimator_grads(model, STL(3), x, 10)
    assert grads[:, enc].abs().max() < 1e-12
    # ... while the ordinary reparameterized gradient is noisy there.
    base = estimator_grads(model, ELBOMC(3), x, 10)
    assert base[:, enc].std(0).max() > 1e-2


@pytest.mark.parametrize("num_samples", [1, 4])
def test_gradient_is_unbiased_for_the_elbo(num_samples):
    model = make_model(exact=False)
    x = make_data(model, repeat=16)
    target = flat_grad(model, -model.analytic_elbo(x).mean())
    grads = estimator_grads(model, STL(num_samples), x, REPETITIONS)
    assert z_scores(grads, target).max() < Z_MAX


def test_lower_variance_than_reparameterization_near_the_posterior():
    # Near q = p(z | x) STL's variance is O(eps^2) in the distance eps to the posterior
    # while the score term keeps the ordinary estimator's variance O(1); with eps = 0.05 the
    # ratio is expected around 1e-2, so 0.1 leaves a margin for Monte Carlo error.
    model = make_model(exact=False, perturb=0.05)
    x = make_data(model, repeat=16)
    enc = encoder_mask(model)
    stl = estimator_grads(model, STL(1), x, REPETITIONS)[:, enc].var(0).sum()
    base = estimator_grads(model, ELBOMC(1), x, REPETITIONS)[:, enc].var(0).sum()
    assert stl < 0.1 * base, (stl, base)


def test_importance_weighted_reports_iwae():
    model = make_model(exact=False)
    x = make_data(model, repeat=2)
    torch.manual_seed(7)
    a = STL(4, importance_weighted=True)(model, x)
    torch.manual_seed(7)
    b = IWAE(4)(model, x)
    torch.testing.assert_close(a.bound, b.bound)


def test_family_without_log_prob_names_the_alternative():
    model = no_log_prob_model()
    with pytest.raises(ValueError, match="estimator 'stl' needs log q.*supports \\(.*'iwae'"):
        STL(2)(model, torch.bernoulli(torch.full((2, 12), 0.5)))


def test_two_layer_gradient_is_unbiased_for_the_elbo():
    # No closed form: STL and the reparameterized ELBO gradient must agree in the mean.
    torch.manual_seed(0)
    model = build_model("mlp_burda_2layer", event_shape=(6,), latent_dims=(3, 2), hidden=(5,), hidden2=(4,)).double()
    x = torch.bernoulli(torch.full((2, 6), 0.4, dtype=torch.float64), generator=torch.Generator().manual_seed(3))
    x = x.repeat(16, 1)
    s = estimator_grads(model, STL(2), x, REPETITIONS, seed=42)
    e = estimator_grads(model, ELBOMC(2), x, REPETITIONS, seed=43)
    se = (s.var(0) / s.shape[0] + e.var(0) / e.shape[0]).sqrt()
    z = ((s.mean(0) - e.mean(0)).abs() / se.clamp(min=1e-12))[se > 1e-9]
    assert z.max() < Z_MAX
