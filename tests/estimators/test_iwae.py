"""IWAE on the linear-Gaussian ground truth: exactness at the true posterior, monotonicity in
K, convergence to log p(x), and Rainforth et al.'s signal-to-noise rates."""

from __future__ import annotations

import math

import pytest
import torch

from vaebench.estimators import IWAE, build_estimator

from .ground_truth import Z_MAX, make_data, make_model, per_row_snr, rainforth_toy, snr


def test_exact_posterior_gives_log_px_for_every_draw():
    # With q = p(z | x) every weight equals p(x): IWAE_K = log p(x) with zero variance.
    model = make_model(exact=True)
    x = make_data(model, repeat=1)
    for k in (1, 3, 17):
        est = IWAE(k)(model, x)
        torch.testing.assert_close(est.bound, model.log_marginal(x).detach(), rtol=0, atol=1e-10)
        torch.testing.assert_close(est.log_w, model.log_marginal(x).detach().expand(k, -1), rtol=0, atol=1e-10)


def test_iwae_1_equals_elbo_in_expectation():
    model = make_model(exact=False)
    x = make_data(model, num_distinct=1, repeat=20000)
    torch.manual_seed(0)
    bound = IWAE(1)(model, x).bound
    exact = model.analytic_elbo(x[:1]).detach()
    se = bound.std() / math.sqrt(bound.numel())
    assert abs(bound.mean() - exact) < 4 * se, (bound.mean(), exact, se)


def test_nondecreasing_in_k_and_converges_to_log_px():
    model = make_model(exact=False)
    x = make_data(model, num_distinct=1, repeat=4000)
    log_px = model.log_marginal(x[:1]).detach().item()
    torch.manual_seed(1)
    means, ses = [], []
    for k in (1, 2, 4, 16, 64, 256):
        b = IWAE(k)(model, x).bound
        means.append(b.mean().item())
        ses.append(b.std().item() / math.sqrt(b.numel()))
    for k_index in range(len(means) - 1):
        # E[IWAE_K] <= E[IWAE_2K]: each mean may fall below its predecessor by at most 3
        # combined standard errors (independent draws).
        slack = 3 * math.hypot(ses[k_index], ses[k_index + 1])
        assert means[k_index + 1] >= means[k_index] - slack, (means, ses)
    assert means[-1] > means[0] + 10 * ses[0]  # and it does increase, clearly
    # Every IWAE_K is a lower bound in expectation.
    assert all(m <= log_px + 3 * s for m, s in zip(means, ses, strict=True))
    # The gap at K = 1 is KL(q || p(z | x)); at K = 256 it is close to chi^2(p || q) / (2K)
    # for large K; we check the gap shrank below 1/8 of the K = 1 gap plus 3 SE.
    kl = model.posterior_kl(x[:1]).item()
    assert abs((log_px - means[0]) - kl) < 4 * ses[0]
    assert log_px - means[-1] < kl / 8 + 3 * ses[-1], (log_px - means[-1], kl)


def test_decoder_gradient_at_exact_posterior_is_unbiased_for_grad_log_px():
    # At q = p(z | x) (held fixed), IWAE_K(theta) <= log p_theta(x) with equality at theta:
    # the decoder gradient has the expectation grad_theta log p(x).
    from .ground_truth import REPETITIONS, estimator_grads, flat_grad, z_scores

    model = make_model(exact=True)
    x = make_data(model, repeat=16)
    target = flat_grad(model, -model.log_marginal(x).mean())
    grads = estimator_grads(model, IWAE(8), x, REPETITIONS)
    assert z_scores(grads, target).max() < Z_MAX


def test_rainforth_snr_rates():
    """Encoder SNR falls like 1/sqrt(K), decoder SNR grows like sqrt(K) (Rainforth et al.
    2018, arXiv:1802.04537, on their D = 20 toy)."""
    model, x, A = rainforth_toy()
    rows = 4000
    ks = (1, 4, 16)
    enc, dec, se = [], [], []
    for i, k in enumerate(ks):
        g_c, g_b = per_row_snr(model, A, x, IWAE(k), rows, seed=10 + i)
        (s_enc, se_enc), (s_dec, _) = snr(g_c), snr(g_b)
        enc.append(s_enc)
        se.append(se_enc)
        dec.append(s_dec)
    assert enc[-1] > 3 * se[-1]  # still measurable at the largest K
    for i in range(len(ks) - 1):
        assert enc[i + 1] < enc[i] - 3 * math.hypot(se[i], se[i + 1]), (enc, se)
    # Rates over K = 1 -> 16: the predicted slopes on a log-log scale are -1/2 (encoder)
    # and +1/2 (decoder); they hold for large K, so allow 0.2 for the pre-asymptotic range.
    enc_slope = math.log(enc[-1] / enc[0]) / math.log(ks[-1] / ks[0])
    dec_slope = math.log(dec[-1] / dec[0]) / math.log(ks[-1] / ks[0])
    assert abs(enc_slope + 0.5) < 0.2, (enc, enc_slope)
    assert abs(dec_slope - 0.5) < 0.2, (dec, dec_slope)


def test_registered_and_validates_k():
    assert isinstance(build_estimator("iwae", num_samples=3), IWAE)
    with pytest.raises(ValueError, match="num_samples must be an int >= 1"):
        IWAE(0)
