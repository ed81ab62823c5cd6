"""IAF: the gated update, the order reversal, depth/width, and saturated gates."""

from __future__ import annotations

import pytest
import torch

from vaebench.posteriors import IAF
from vaebench.posteriors.iaf import iaf_step

from .helpers import assert_log_q_matches_autograd


def test_one_step_has_a_lower_triangular_jacobian_with_sigma_on_the_diagonal():
    flow = IAF(feature_dim=3, latent_dim=4, num_flows=1, hidden=9)
    h = torch.randn(1, 3)
    z0 = torch.randn(4)
    jac = torch.autograd.functional.jacobian(lambda z: flow.transform(z.view(1, 1, 4), h)[0].view(-1), z0)
    assert jac.triu(1).abs().max() == 0
    out = flow.steps[0](z0.view(1, 1, 4), h)
    sigma = torch.sigmoid(out[..., 1, :] + flow.forget_bias).view(-1)
    torch.testing.assert_close(jac.diagonal(), sigma)


def test_steps_compose_with_the_order_reversed_between_them():
    flow = IAF(feature_dim=3, latent_dim=4, num_flows=2, hidden=8, forget_bias=1.5)
    h = torch.randn(2, 3)
    z0 = torch.randn(5, 2, 4)
    z, log_det = flow.transform(z0, h)
    out0 = flow.steps[0](z0, h)
    z1, ld0 = iaf_step(z0, out0[..., 0, :], out0[..., 1, :], 1.5)
    z1 = z1.flip(-1)
    out1 = flow.steps[1](z1, h)
    z2, ld1 = iaf_step(z1, out1[..., 0, :], out1[..., 1, :], 1.5)  # no reversal after the last
    torch.testing.assert_close(z, z2)
    torch.testing.assert_close(log_det, ld0 + ld1)


@pytest.mark.parametrize("num_flows, hidden, layers", [(1, 2, 1), (3, 7, 2), (6, 16, 3)])
def test_any_depth_and_width(num_flows, hidden, layers):
    flow = IAF(
        feature_dim=4,
        latent_dim=3,
        num_flows=num_flows,
        hidden=hidden,
        num_hidden_layers=layers,
    )
    assert_log_q_matches_autograd(flow)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("gate", [-1e4, -80.0, 80.0, 1e4])
def test_saturated_gates_stay_finite(dtype, gate):
    z = torch.randn(2, 3, 4, dtype=dtype, requires_grad=True)
    m = torch.randn(2, 3, 4, dtype=dtype, requires_grad=True)
    s = torch.full((2, 3, 4), gate, dtype=dtype, requires_grad=True)
    z_new, log_det = iaf_step(z, m, s, 1.0)
    assert torch.isfinite(z_new).all() and torch.isfinite(log_det).all()
    # sigma -> 1 keeps z; sigma -> 0 replaces it with m; log sigma -> min(gate, 0) * D.
    torch.testing.assert_close(z_new, z if gate > 0 else m)
    torch.testing.assert_close(
        log_det,
        torch.full_like(log_det, 4 * min(gate + 1.0, 0.0)),
        rtol=1e-6,
        atol=1e-6,
    )
    (z_new.sum() + log_det.sum()).backward()
    for g in (z.grad, m.grad, s.grad):
        assert torch.isfinite(g).all()


def test_forget_bias_sets_the_gate_at_a_zero_network():
    flow = IAF(feature_dim=3, latent_dim=4, num_flows=1, forget_bias=2.0)
    with torch.no_grad():
        for p in flow.steps.parameters():
            p.zero_()
    z0 = torch.randn(5, 2, 4)
    z, log_det = flow.transform(z0, torch.randn(2, 3))
    sigma = torch.sigmoid(torch.tensor(2.0))
    torch.testing.assert_close(z, sigma * z0)
    torch.testing.assert_close(log_det, torch.full((5, 2), 4 * torch.log(sigma).item()))
