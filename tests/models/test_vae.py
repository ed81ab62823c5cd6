"""The VAE contract: log_weights terms, stopped log q, kl, posterior_mean, parameter groups, errors."""

from __future__ import annotations

import pytest
import torch

from vaebench.models import (
    VAE,
    BernoulliLikelihood,
    LogWeights,
    MLPDecoder,
    MLPEncoder,
    build_model,
)
from vaebench.posteriors import DiagonalGaussian

D = torch.float64


def _model(posterior: str = "diagonal") -> VAE:
    torch.manual_seed(0)
    return build_model("mlp_burda", posterior=posterior, event_shape=(12,), latent_dim=3, hidden=(8,)).double()


def _x(b: int = 5) -> torch.Tensor:
    return torch.bernoulli(torch.full((b, 12), 0.3, dtype=D), generator=torch.Generator().manual_seed(1))


def test_log_weights_terms_and_shapes():
    model, x = _model(), _x()
    lw = model.log_weights(x, 4)
    assert isinstance(lw, LogWeights)
    for t in (lw.log_w, lw.log_px_z, lw.log_pz, lw.log_q):
        assert t.shape == (4, 5)
    assert lw.z.shape == (4, 5, 3) and lw.latents == (lw.z,)
    torch.testing.assert_close(lw.log_w, lw.log_px_z + lw.log_pz - lw.log_q)
    # Each term recomputed from z by its own module.
    torch.testing.assert_close(lw.log_q, model.posterior.log_prob(lw.z, model.encode(x)))
    torch.testing.assert_close(lw.log_pz, torch.distributions.Normal(0.0, 1.0).log_prob(lw.z).sum(-1))
    torch.testing.assert_close(lw.log_px_z, model.likelihood.log_prob(x, model.decode(lw.z)))


def test_stopped_log_q_has_the_value_and_only_the_path_gradient():
    model, x = _model(), _x()
    torch.manual_seed(3)
    stopped = model.log_weights(x, 2, stop_q_params=True)
    torch.manual_seed(3)
    full = model.log_weights(x, 2)
    torch.testing.assert_close(stopped.log_q, full.log_q)
    # d log q_stop / d z equals the full d log q / d z, and no gradient reaches phi directly.
    z = full.z.detach().requires_grad_(True)
    h = model.encode(x)
    (gz_full,) = torch.autograd.grad(model.posterior.log_prob(z, h).sum(), z)
    from vaebench.models import stopped_log_prob

    lq = stopped_log_prob(model.posterior, z, h)
    gz, *gphi = torch.autograd.grad(lq.sum(), [z, *model.encoder_parameters()], allow_unused=True)
    torch.testing.assert_close(gz, gz_full)
    assert all(g is None or g.abs().max() == 0 for g in gphi)


def test_kl_matches_monte_carlo():
    model, x = _model(), _x(2)
    torch.manual_seed(4)
    lw = model.log_weights(x, 40000)
    mc = (lw.log_q - lw.log_pz).mean(0)
    se = (lw.log_q - lw.log_pz).std(0) / 200
    assert ((mc - model.kl(x)).abs() < 4 * se).all()
    assert _model("planar").kl(x) is None


def test_posterior_mean_is_analytic_for_gaussians_and_mc_for_flows():
    model, x = _model(), _x()
    mu, _ = model.posterior.params(model.encode(x))
    torch.testing.assert_close(model.posterior_mean(x), mu)
    flow = _model("planar")
    assert flow.posterior_mean(x, num_samples=16).shape == (5, 3)


def test_parameter_groups_partition_the_parameters():
    for model in (
        _model(),
        build_model("mlp_burda_2layer", event_shape=(12,), latent_dims=(4, 2), hidden=(8,), hidden2=(6,)),
    ):
        phi = {id(p) for p in model.encoder_parameters()}
        theta = {id(p) for p in model.decoder_parameters()}
        assert phi and theta and not phi & theta
        assert phi | theta == {id(p) for p in model.parameters()}


def test_init_output_bias_sets_the_bernoulli_logit():
    model = _model()
    mean = torch.linspace(0.0, 1.0, 12, dtype=D)
    model.init_output_bias(mean)
    torch.testing.assert_close(model.decoder.output_layer.bias, BernoulliLikelihood().output_bias(mean))
    with pytest.raises(ValueError, match="data_mean must have the event shape"):
        model.init_output_bias(mean[:5])


def test_bad_inputs_are_named():
    model = _model()
    with pytest.raises(ValueError, match=r"x must be \(B, 12\) for this model, got \(5, 11\)"):
        model.log_weights(_x()[:, :11], 2)
    with pytest.raises(ValueError, match="floating-point"):
        model.log_weights(_x().long(), 2)
    bad = _x()
    bad[0, 0] = float("nan")
    with pytest.raises(ValueError, match="NaN or inf"):
        model.log_weights(bad, 2)
    for k in (0, -1, 1.5):
        with pytest.raises(ValueError, match="num_samples must be an int >= 1"):
            model.log_weights(_x(), k)
    with pytest.raises(ValueError, match=r"no tractable log_prob.*supports \('elbo_mc', 'iwae', 'renyi'\)"):
        _model("planar").log_weights(_x(), 2, stop_q_params=True)
    with pytest.raises(ValueError, match="x is torch.float32 on cpu but the model's parameters are torch.float64"):
        model.log_weights(_x().float(), 2)
    with pytest.raises(TypeError, match="posterior must be a vaebench Posterior"):
        VAE(MLPEncoder((12,), (8,)), torch.nn.Linear(8, 3), MLPDecoder(3, (12,)), BernoulliLikelihood(), (12,))


def test_sample_has_the_event_shape():
    model = VAE(MLPEncoder((12,), (8,)), DiagonalGaussian(8, 3), MLPDecoder(3, (12,)), BernoulliLikelihood(), (12,))
    s = model.sample(7)
    assert s.shape == (7, 12) and ((s >= 0) & (s <= 1)).all()


def test_log_weights_and_kl_is_one_pass_of_the_same_quantities():
    model, x = _model(), _x()
    torch.manual_seed(5)
    lw, kl = model.log_weights_and_kl(x, 3)
    torch.manual_seed(5)
    ref = model.log_weights(x, 3)
    torch.testing.assert_close(lw.log_w, ref.log_w)
    torch.testing.assert_close(kl, model.kl(x))
    assert _model("planar").log_weights_and_kl(x, 2)[1] is None
