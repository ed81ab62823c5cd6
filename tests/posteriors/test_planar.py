"""Planar flow: the invertibility constraint on u and the numerical edges."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from vaebench.posteriors import PlanarFlow
from vaebench.posteriors.planar import constrain_u, planar_step

from .helpers import assert_log_q_matches_autograd


def _log_det_autograd(z, u, w, b):
    jac = torch.autograd.functional.jacobian(lambda x: planar_step(x.view(1, 1, -1), u, w, b)[0].view(-1), z)
    return torch.linalg.slogdet(jac)


@pytest.mark.parametrize("wu", [-1e3, -50.0, -1.0, 0.0, 3.0, 40.0])
def test_constraint_makes_w_dot_u_hat_at_least_minus_one(wu):
    w = torch.randn(4, 5)
    u = torch.randn(4, 5)
    # Move u so that w.u takes the requested value.
    u = u + ((wu - (w * u).sum(-1)) / w.square().sum(-1)).unsqueeze(-1) * w
    u_hat, one_plus = constrain_u(u, w)
    wu_hat = (w * u_hat).sum(-1)
    torch.testing.assert_close(wu_hat, -1.0 + F.softplus(torch.full((4,), wu)))
    torch.testing.assert_close(one_plus, F.softplus(torch.full((4,), wu)), rtol=1e-9, atol=0)
    assert (one_plus >= 0).all()  # > 0 until softplus underflows (w.u < -745 in float64)


@pytest.mark.parametrize("wu", [-30.0, -1.0, 0.5, 10.0])
def test_jacobian_determinant_is_positive_everywhere(wu):
    """det(I + u_hat psi^T) > 0 at every z: the constrained layer is invertible."""
    w = torch.randn(1, 3)
    u = torch.randn(1, 3)
    u = u + ((wu - (w * u).sum(-1)) / w.square().sum(-1)).unsqueeze(-1) * w
    b = torch.randn(1)
    for z in torch.randn(20, 3) * 3:
        sign, logabsdet = _log_det_autograd(z, u, w, b)
        assert sign > 0
        _, log_det = planar_step(z.view(1, 1, 3), u, w, b)
        torch.testing.assert_close(log_det.view(()), logabsdet, rtol=1e-7, atol=1e-7)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_near_singular_edge_stays_finite_and_exact(dtype):
    """w.u = -50 (so 1 + w.u_hat = softplus(-50) ~ 2e-22) at tanh = 0: the naive
    1 + u_hat.psi cancels to 0 (log = -inf); the layer's log|det| is log softplus(-50)."""
    w = torch.tensor([[1.0, 2.0, -0.5]], dtype=dtype)
    u = (-50.0 / w.square().sum()) * w
    z = torch.tensor([[[0.3, -0.1, 0.2]]], dtype=dtype, requires_grad=True)
    b = -(z.detach() * w).sum(-1).view(1)  # puts w.z + b at 0
    z_new, log_det = planar_step(z, u, w, b)
    u_hat, _ = constrain_u(u, w)
    naive = 1.0 + (u_hat * (1 - torch.tanh((z * w).sum(-1) + b).square().unsqueeze(-1)) * w).sum(-1)
    assert abs(naive.item()) < 100 * torch.finfo(dtype).eps  # what the stable form avoids
    expected = math.log(F.softplus(torch.tensor(-50.0, dtype=torch.float64)).item())
    assert math.isclose(log_det.item(), expected, rel_tol=1e-5)
    log_det.sum().backward()
    assert torch.isfinite(z.grad).all() and torch.isfinite(z_new).all()


def test_underflowed_margin_stays_finite():
    """w.u = -1e3: 1 + w.u_hat = softplus(-1e3) underflows to 0; at tanh = 0 the layer's
    log|det| is floored at log(tiny) instead of -inf, and its gradients stay finite."""
    w = torch.tensor([[1.0, 0.0]])
    u = torch.tensor([[-1e3, 0.0]], requires_grad=True)
    z = torch.zeros(1, 1, 2, requires_grad=True)
    z_new, log_det = planar_step(z, u, w, torch.zeros(1))
    assert torch.isfinite(log_det).all() and log_det.item() < -700
    (z_new.sum() + log_det.sum()).backward()
    assert torch.isfinite(u.grad).all() and torch.isfinite(z.grad).all()


def test_saturated_tanh_and_large_inputs_stay_finite():
    w, u, b = torch.randn(2, 4), torch.randn(2, 4), torch.randn(2)
    z = (torch.randn(3, 2, 4) * 1e6).requires_grad_()
    z_new, log_det = planar_step(z, u, w, b)
    assert torch.isfinite(z_new).all() and torch.isfinite(log_det).all()
    # tanh saturated: the layer is a shift and log|det| is 0.
    torch.testing.assert_close(log_det, torch.zeros_like(log_det))
    (z_new.sum() + log_det.sum()).backward()
    assert torch.isfinite(z.grad).all()


def test_zero_w_is_a_shift_not_a_nan():
    u, w, b = torch.randn(2, 3), torch.zeros(2, 3, requires_grad=True), torch.randn(2)
    z = torch.randn(4, 2, 3)
    z_new, log_det = planar_step(z, u, w, b)
    torch.testing.assert_close(z_new, z + torch.tanh(b).view(1, 2, 1) * u)
    torch.testing.assert_close(log_det, torch.zeros(4, 2))
    (z_new.sum() + log_det.sum()).backward()
    assert torch.isfinite(w.grad).all()


@pytest.mark.parametrize("num_flows", [0, 1, 9])
def test_any_length(num_flows):
    assert_log_q_matches_autograd(PlanarFlow(feature_dim=4, latent_dim=3, num_flows=num_flows))


def test_rejects_a_negative_length():
    with pytest.raises(ValueError, match="num_flows must be an int >= 0, got -1"):
        PlanarFlow(feature_dim=4, latent_dim=3, num_flows=-1)
