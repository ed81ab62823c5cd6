"""Sylvester flows: orthogonalization, the three ways of making Q, and the numerical edges."""

from __future__ import annotations

import math

import pytest
import torch

from vaebench.posteriors import (
    HouseholderSylvesterFlow,
    OrthogonalSylvesterFlow,
    SylvesterFlow,
    TriangularSylvesterFlow,
    bjorck_orthogonalize,
)

from .helpers import assert_log_q_matches_autograd


@pytest.mark.parametrize("dtype, tol", [(torch.float64, 1e-12), (torch.float32, 2e-5)])
@pytest.mark.parametrize("d, m", [(5, 5), (6, 2), (3, 1)])
def test_bjorck_gives_orthonormal_columns_the_polar_factor(dtype, tol, d, m):
    q = torch.randn(4, d, m, dtype=dtype)
    out = bjorck_orthogonalize(q)
    eye = torch.eye(m, dtype=dtype)
    assert (out.transpose(-1, -2) @ out - eye).abs().max() < tol
    # The iteration converges to the orthogonal polar factor U V^T of q.
    u, _, vh = torch.linalg.svd(q.double(), full_matrices=False)
    torch.testing.assert_close(out.double(), u @ vh, rtol=0, atol=50 * tol)


def test_bjorck_converges_from_a_badly_conditioned_start():
    q = torch.randn(2, 4, 3)
    q[..., 2] = q[..., 1] + 1e-6 * torch.randn(2, 4)  # condition number ~1e6
    out = bjorck_orthogonalize(q)
    assert (out.transpose(-1, -2) @ out - torch.eye(3)).abs().max() < 1e-12


def test_bjorck_warns_when_it_has_not_converged():
    with pytest.warns(RuntimeWarning, match="after 2 steps"):
        bjorck_orthogonalize(torch.randn(3, 5, 5), max_steps=2)
    with pytest.raises(ValueError, match="max_steps must be an int >= 1, got 0"):
        bjorck_orthogonalize(torch.randn(3, 5, 5), max_steps=0)
    with pytest.raises(ValueError, match=r"M <= D, got \(2, 5\)"):
        bjorck_orthogonalize(torch.randn(2, 5))
    with pytest.raises(ValueError, match="max_orthogonalization_steps must be an int >= 1"):
        OrthogonalSylvesterFlow(3, 4, max_orthogonalization_steps=0)


@pytest.mark.parametrize("orthogonalization", ["bjorck", "qr"])
@pytest.mark.parametrize("m", [1, 2, 4])
def test_orthogonal_variant_with_fewer_columns_than_dims(m, orthogonalization):
    """O-SNF with M <= D: the determinant identity needs Q^T Q = I_M; autograd checks it."""
    flow = OrthogonalSylvesterFlow(
        feature_dim=3,
        latent_dim=4,
        num_flows=2,
        num_ortho_vecs=m,
        orthogonalization=orthogonalization,
    )
    q = torch.stack(flow.flow_params(torch.randn(5, 3))["q"], 1)  # one (B, D, M) per layer
    assert q.shape == (5, 2, 4, m)
    assert (q.transpose(-1, -2) @ q - torch.eye(m)).abs().max() < 1e-12
    assert_log_q_matches_autograd(flow)


@pytest.mark.parametrize("num_householder", [1, 3])
def test_householder_variant_q_is_orthogonal(num_householder):
    flow = HouseholderSylvesterFlow(feature_dim=3, latent_dim=4, num_householder=num_householder)
    params = flow.flow_params(torch.randn(2, 3))
    y = torch.randn(5, 2, 4)
    for t in range(flow.num_flows):
        qy = flow._q(y, params, t)
        torch.testing.assert_close(flow._q_transpose(qy, params, t), y)
        torch.testing.assert_close(qy.norm(dim=-1), y.norm(dim=-1))
    assert_log_q_matches_autograd(flow)


def test_triangular_variant_alternates_identity_and_reversal():
    flow = TriangularSylvesterFlow(feature_dim=3, latent_dim=4, num_flows=3)
    y = torch.arange(4.0).view(1, 1, 4)
    assert torch.equal(flow._q(y, {}, 0), y)
    assert torch.equal(flow._q(y, {}, 1), y.flip(-1))
    assert torch.equal(flow._q_transpose(y, {}, 2), y)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_diagonal_product_near_minus_one_stays_finite_and_exact(dtype):
    """R1_ii R2_ii = tanh(20) tanh(-20), which is -1 in float32, at tanh' = 1: the naive
    1 + R1_ii R2_ii tanh' is 0 there; the layer gives log cosh(0) - 2 log cosh(20) per dim."""
    flow = TriangularSylvesterFlow(feature_dim=3, latent_dim=2, num_flows=1).to(dtype)
    with torch.no_grad():  # a1 = 20, a2 = -20, b = 0 and no off-diagonal entries, for any h
        for head, value in ((flow.diag1, 20.0), (flow.diag2, -20.0), (flow.bias, 0.0), (flow.triangles, 0.0)):
            head.weight.zero_()
            head.bias.fill_(value)
    params = flow.flow_params(torch.randn(1, 3, dtype=dtype))
    assert torch.equal(params["r1"][0], torch.diag_embed(torch.tanh(torch.full((1, 2), 20.0, dtype=dtype))))
    z = torch.zeros(1, 1, 2, dtype=dtype, requires_grad=True)  # pre-activation 0: tanh' = 1
    z_new, log_det = flow.layer(0, z, params)
    expected = 2 * (0.0 - 2 * (20.0 + math.log1p(math.exp(-40.0)) - math.log(2.0)))
    assert math.isclose(log_det.item(), expected, rel_tol=1e-5)
    (z_new.sum() + log_det.sum()).backward()
    assert torch.isfinite(z.grad).all()


@pytest.mark.parametrize("cls", [OrthogonalSylvesterFlow, HouseholderSylvesterFlow, TriangularSylvesterFlow])
def test_large_inputs_stay_finite(cls):
    flow = cls(feature_dim=3, latent_dim=4)
    h = torch.randn(2, 3)
    z = (torch.randn(3, 2, 4) * 1e8).requires_grad_()
    z_new, log_det = flow.transform(z, h)
    assert torch.isfinite(z_new).all() and torch.isfinite(log_det).all()
    (z_new.sum() + log_det.sum()).backward()
    assert torch.isfinite(z.grad).all()


def test_invalid_configurations_name_the_argument():
    with pytest.raises(ValueError, match="variant must be one of orthogonal, householder, triangular"):
        SylvesterFlow(3, 4, variant="diagonal")
    with pytest.raises(ValueError, match=r"num_ortho_vecs \(M\) must be an int in \[1, D=4\], got 5"):
        OrthogonalSylvesterFlow(3, 4, num_ortho_vecs=5)
    with pytest.raises(ValueError, match="num_ortho_vecs only applies to variant='orthogonal'"):
        SylvesterFlow(3, 4, variant="triangular", num_ortho_vecs=2)
    with pytest.raises(ValueError, match="orthogonalization must be one of bjorck, qr, got 'svd'"):
        OrthogonalSylvesterFlow(3, 4, orthogonalization="svd")
    with pytest.raises(ValueError, match="num_householder must be an int >= 1, got 0"):
        HouseholderSylvesterFlow(3, 4, num_householder=0)


@pytest.mark.parametrize("cls", [OrthogonalSylvesterFlow, TriangularSylvesterFlow])
def test_zero_layers_is_the_base_and_builds_nothing(cls):
    flow = cls(feature_dim=3, latent_dim=4, num_flows=0)
    assert {name.split(".")[0] for name, _ in flow.named_parameters()} == {"base"}
    assert_log_q_matches_autograd(flow)
