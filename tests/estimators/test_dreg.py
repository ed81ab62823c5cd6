"""`dreg` (doubly reparameterized IWAE gradients) against IWAE on the linear-Gaussian model."""

from __future__ import annotations

import pytest
import torch

from vaebench.estimators import IWAE, STL, DReG
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
    per_row_snr,
    rainforth_toy,
    snr,
)


def _split(model):
    enc = encoder_mask(model)
    return enc, ~enc


def test_bound_and_decoder_gradient_equal_iwae_on_the_same_draws():
    model = make_model(exact=False)
    x = make_data(model, repeat=2)
    _, dec = _split(model)
    torch.manual_seed(8)
    a = DReG(6)(model, x)
    ga = flat_grad(model, a.surrogate)
    torch.manual_seed(8)
    b = IWAE(6)(model, x)
    gb = flat_grad(model, b.surrogate)
    torch.testing.assert_close(a.bound, b.bound.detach())
    torch.testing.assert_close(ga[dec], gb[dec])
    torch.testing.assert_close(a.surrogate, -a.bound.mean())


def test_encoder_gradient_is_unbiased_for_the_iwae_gradient():
    # No closed form for grad IWAE_K: compare the means of two independent samples of
    # DReG and IWAE encoder gradients (z-score of the difference over both SEs).
    model = make_model(exact=False)
    x = make_data(model, repeat=16)
    enc, _ = _split(model)
    d = estimator_grads(model, DReG(8), x, REPETITIONS, seed=20)[:, enc]
    i = estimator_grads(model, IWAE(8), x, REPETITIONS, seed=21)[:, enc]
    se = (d.var(0) / d.shape[0] + i.var(0) / i.shape[0]).sqrt()
    z = ((d.mean(0) - i.mean(0)).abs() / se.clamp(min=1e-12))[se > 1e-9]
    assert z.max() < Z_MAX
    # and DReG is the lower-variance of the two (Tucker et al. 2018).
    assert d.var(0).sum() < i.var(0).sum()


def test_zero_encoder_variance_at_the_exact_posterior():
    model = make_model(exact=True)
    x = make_data(model, repeat=4)
    enc, _ = _split(model)
    assert estimator_grads(model, DReG(5), x, 10)[:, enc].abs().max() < 1e-12
    assert estimator_grads(model, IWAE(5), x, 10)[:, enc].std(0).max() > 1e-2


def test_single_pass_hook_equals_the_two_pass_form():
    model = make_model(exact=False)
    x = make_data(model, repeat=2)
    torch.manual_seed(9)
    ga = flat_grad(model, DReG(5, single_pass=True)(model, x).surrogate)
    torch.manual_seed(9)
    gb = flat_grad(model, DReG(5, single_pass=False)(model, x).surrogate)
    torch.testing.assert_close(ga, gb)


def test_encoder_snr_does_not_fall_with_k():
    # Tucker et al.: unlike IWAE's, the DReG encoder SNR does not decay with K.
    model, x, A = rainforth_toy()
    (s1, se1), _ = snr(per_row_snr(model, A, x, DReG(1), 2000, seed=30)[0]), None
    (s16, se16), _ = snr(per_row_snr(model, A, x, DReG(16), 2000, seed=31)[0]), None
    assert s16 > s1 - 3 * (se1**2 + se16**2) ** 0.5, (s1, s16)


def test_two_layer_model_matches_iwae_decoder_gradient():
    torch.manual_seed(0)
    model = build_model("mlp_burda_2layer", event_shape=(12,), latent_dims=(4, 3), hidden=(8,), hidden2=(6,)).double()
    x = torch.bernoulli(torch.full((3, 12), 0.4, dtype=torch.float64))
    _, dec = _split(model)
    torch.manual_seed(10)
    ga = flat_grad(model, DReG(4)(model, x).surrogate)
    torch.manual_seed(10)
    gb = flat_grad(model, IWAE(4)(model, x).surrogate)
    torch.testing.assert_close(ga[dec], gb[dec])
    assert torch.isfinite(ga).all() and ga[_split(model)[0]].abs().sum() > 0


def test_family_without_log_prob_names_the_alternative():
    with pytest.raises(ValueError, match="estimator 'dreg' needs log q.*supports \\(.*'iwae'"):
        DReG(2)(no_log_prob_model(), torch.bernoulli(torch.full((2, 12), 0.5)))


def test_two_layer_encoder_gradient_is_unbiased_for_the_iwae_gradient():
    # The joint path derivative through q(z1 | x) q(z2 | z1), phi stopped in both layers,
    # must have IWAE's mean: z-scores of the difference of two independent samples.
    torch.manual_seed(0)
    model = build_model("mlp_burda_2layer", event_shape=(6,), latent_dims=(3, 2), hidden=(5,), hidden2=(4,)).double()
    # torch's default init of every layer (random biases) rather than the protocol's: a point
    # where q is far enough from p(z | x) for the power check below to see STL's bias.
    for layer in model.modules():
        if isinstance(layer, torch.nn.Linear):
            layer.reset_parameters()
    x = torch.bernoulli(torch.full((2, 6), 0.4, dtype=torch.float64), generator=torch.Generator().manual_seed(3))
    x = x.repeat(16, 1)
    enc, _ = _split(model)
    d = estimator_grads(model, DReG(4), x, REPETITIONS, seed=40)[:, enc]
    i = estimator_grads(model, IWAE(4), x, REPETITIONS, seed=41)[:, enc]
    se = (d.var(0) / d.shape[0] + i.var(0) / i.shape[0]).sqrt()
    z = ((d.mean(0) - i.mean(0)).abs() / se.clamp(min=1e-12))[se > 1e-9]
    assert z.max() < Z_MAX
    # The comparison has the power to see a bias: importance-weighted STL (w instead of
    # w^2, biased for IWAE) stands out.
    b = estimator_grads(model, STL(4, importance_weighted=True), x, REPETITIONS, seed=44)[:, enc]
    se = (b.var(0) / b.shape[0] + i.var(0) / i.shape[0]).sqrt()
    assert ((b.mean(0) - i.mean(0)).abs() / se.clamp(min=1e-12))[se > 1e-9].max() > 2 * Z_MAX


@pytest.mark.parametrize("posterior", ["diagonal", "full_covariance"])
def test_single_pass_equals_two_pass_on_the_packaged_families(posterior):
    # The hook path through each family's own path_gradient sampling (the fused
    # reparameterize op for the diagonal Gaussian) gives the two-pass gradient.
    torch.manual_seed(0)
    model = build_model("mlp_burda", posterior=posterior, event_shape=(12,), latent_dim=3, hidden=(8,)).double()
    x = torch.bernoulli(torch.full((4, 12), 0.4, dtype=torch.float64), generator=torch.Generator().manual_seed(2))
    torch.manual_seed(12)
    ga = flat_grad(model, DReG(5)(model, x).surrogate)
    torch.manual_seed(12)
    gb = flat_grad(model, DReG(5, single_pass=False)(model, x).surrogate)
    torch.testing.assert_close(ga, gb)
    assert ga[encoder_mask(model)].abs().sum() > 0
