"""The two-stochastic-layer VAE: its log weights, stopped log q and parameter groups."""

from __future__ import annotations

import pytest
import torch

from vaebench.models import HierarchicalVAE, build_model

D = torch.float64


def _model():
    torch.manual_seed(0)
    return build_model("mlp_burda_2layer", event_shape=(12,), latent_dims=(4, 3), hidden=(8,), hidden2=(6,)).double()


def _x():
    return torch.bernoulli(torch.full((5, 12), 0.3, dtype=D), generator=torch.Generator().manual_seed(1))


def test_log_weights_of_the_whole_hierarchy():
    model, x = _model(), _x()
    assert isinstance(model, HierarchicalVAE) and model.latent_dim == 3
    lw = model.log_weights(x, 4)
    z1, z2 = lw.latents
    assert z1.shape == (4, 5, 4) and z2.shape == (4, 5, 3) and lw.z is z2
    torch.testing.assert_close(lw.log_q, model.log_q(x, lw.latents))
    log_px_z, log_pz = model.log_joint(x, lw.latents)
    torch.testing.assert_close(lw.log_w, log_px_z + log_pz - lw.log_q)
    # log p(z) = log N(z2; 0, I) + log p(z1 | z2).
    mean, logvar = model.conditional_prior.params(z2)
    expected = torch.distributions.Normal(mean, (0.5 * logvar).exp()).log_prob(z1).sum(-1)
    expected = expected + torch.distributions.Normal(0.0, 1.0).log_prob(z2).sum(-1)
    torch.testing.assert_close(lw.log_pz, expected)


def test_stopped_log_q_keeps_the_path_through_z1():
    model, x = _model(), _x()
    torch.manual_seed(2)
    lw = model.log_weights(x, 3)
    z1 = lw.latents[0].detach().requires_grad_(True)
    z2 = lw.latents[1].detach().requires_grad_(True)
    stopped = model.log_q(x, (z1, z2), stop_params=True)
    full = model.log_q(x, (z1, z2))
    torch.testing.assert_close(stopped, full)
    params = list(model.encoder_parameters())
    g_stop = torch.autograd.grad(stopped.sum(), [z1, z2, *params], allow_unused=True)
    g_full = torch.autograd.grad(full.sum(), [z1, z2])
    torch.testing.assert_close(g_stop[0], g_full[0])  # z1 still feeds q(z2 | z1)
    torch.testing.assert_close(g_stop[1], g_full[1])
    assert all(g is None or g.abs().max() == 0 for g in g_stop[2:])


def test_no_analytic_kl_and_mc_posterior_mean():
    model, x = _model(), _x()
    assert model.kl(x) is None
    assert model.posterior_mean(x, num_samples=8).shape == (5, 3)
    assert model.sample(2).shape == (2, 12)


def test_bad_latent_dims_are_named():
    with pytest.raises(ValueError, match=r"latent_dims must be \(D1, D2\)"):
        build_model("mlp_burda_2layer", event_shape=(12,), latent_dims=(4,))
