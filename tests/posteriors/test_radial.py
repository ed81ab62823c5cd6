"""Radial flow: the beta >= -alpha constraint and the numerical edges (centre, large r)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from vaebench.posteriors import RadialFlow
from vaebench.posteriors.radial import radial_step

from .helpers import assert_log_q_matches_autograd


def _autograd_slogdet(z, centre, alpha_raw, beta_raw):
    def f(x):
        return radial_step(x.view(1, 1, -1), centre, alpha_raw, beta_raw)[0].view(-1)

    return torch.linalg.slogdet(torch.autograd.functional.jacobian(f, z))


@pytest.mark.parametrize("beta_raw", [-30.0, -2.0, 0.0, 5.0])
@pytest.mark.parametrize("r_scale", [1e-9, 1e-3, 1.0, 30.0])
def test_invertible_and_log_det_matches_autograd(beta_raw, r_scale):
    """beta = -alpha + softplus(.) >= -alpha: det > 0 at every distance r from the centre."""
    centre = torch.randn(1, 3)
    alpha_raw, beta = torch.tensor([0.3]), torch.tensor([beta_raw])
    direction = torch.nn.functional.normalize(torch.randn(3), dim=0)
    z = centre[0] + r_scale * direction
    sign, logabsdet = _autograd_slogdet(z, centre, alpha_raw, beta)
    assert sign > 0
    _, log_det = radial_step(z.view(1, 1, 3), centre, alpha_raw, beta)
    torch.testing.assert_close(log_det.view(()), logabsdet, rtol=1e-7, atol=1e-7)


@pytest.mark.parametrize("beta_raw", [-50.0, 0.0, 4.0])
def test_exactly_at_the_centre(beta_raw):
    """At r = 0 the Jacobian is (1 + beta / alpha) I = (softplus_beta / alpha) I: finite value
    and finite gradients (|z - z0| has no gradient singularity there)."""
    centre = torch.randn(2, 4)
    alpha_raw = torch.tensor([0.5, -1.0], requires_grad=True)
    beta = torch.full((2,), beta_raw, requires_grad=True)
    z = centre.clone().unsqueeze(0).requires_grad_()
    z_new, log_det = radial_step(z, centre, alpha_raw, beta)
    expected = 4 * (torch.log(F.softplus(beta)) - torch.log(F.softplus(alpha_raw)))
    torch.testing.assert_close(log_det[0], expected)
    torch.testing.assert_close(z_new, z)
    (z_new.sum() + log_det.sum()).backward()
    for g in (z.grad, alpha_raw.grad, beta.grad):
        assert torch.isfinite(g).all()


def test_large_inputs_stay_finite():
    centre, alpha_raw, beta_raw = torch.randn(2, 3), torch.randn(2), torch.randn(2)
    z = (torch.randn(5, 2, 3) * 1e8).requires_grad_()
    z_new, log_det = radial_step(z, centre, alpha_raw, beta_raw)
    assert torch.isfinite(z_new).all() and torch.isfinite(log_det).all()
    assert log_det.abs().max() < 1e-6  # far from the centre the layer is the identity
    (z_new.sum() + log_det.sum()).backward()
    assert torch.isfinite(z.grad).all()


@pytest.mark.parametrize("num_flows", [1, 7])
def test_any_length(num_flows):
    assert_log_q_matches_autograd(RadialFlow(feature_dim=4, latent_dim=3, num_flows=num_flows))
