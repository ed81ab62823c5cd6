"""Householder flow: reflections, their inverse, and the tractable log_prob."""

from __future__ import annotations

import pytest
import torch

from vaebench.posteriors import DiagonalGaussian, HouseholderFlow
from vaebench.posteriors.householder import reflect

from .helpers import assert_log_q_matches_autograd


def test_reflection_is_orthogonal_self_inverse_and_flips_v():
    v = torch.randn(3, 4)
    z = torch.randn(5, 3, 4)
    torch.testing.assert_close(reflect(z, v).norm(dim=-1), z.norm(dim=-1))
    torch.testing.assert_close(reflect(reflect(z, v), v), z)
    torch.testing.assert_close(reflect(v.unsqueeze(0), v), -v.unsqueeze(0))


def test_zero_v_is_the_identity_not_a_nan():
    v = torch.zeros(2, 3, requires_grad=True)
    z = torch.randn(4, 2, 3)
    out = reflect(z, v)
    torch.testing.assert_close(out, z)
    out.sum().backward()
    assert torch.isfinite(v.grad).all()


def test_vectors_chain_from_the_features():
    """v_1 = Linear(h), v_{t+1} = Linear_t(v_t): T - 1 D-to-D layers after one H-to-D layer."""
    flow = HouseholderFlow(feature_dim=5, latent_dim=3, num_flows=4)
    h = torch.randn(2, 5)
    vs = flow.flow_params(h)
    assert len(vs) == 4 and len(flow.next) == 3
    torch.testing.assert_close(vs[0], flow.first(h))
    torch.testing.assert_close(vs[2], flow.next[1](vs[1]))


def test_volume_preserving_and_same_density_as_rotated_base():
    flow = HouseholderFlow(feature_dim=5, latent_dim=3, num_flows=3)
    h = torch.randn(4, 5)
    z0 = torch.randn(6, 4, 3)
    z, log_det = flow.transform(z0, h)
    assert log_det.abs().max() == 0
    torch.testing.assert_close(z.norm(dim=-1), z0.norm(dim=-1))
    # log q(z) is the base density at the inverse image.
    mu, logvar = flow.base.params(h)
    torch.testing.assert_close(flow.log_prob(z, h), DiagonalGaussian.log_prob_given(z0, mu, logvar))


@pytest.mark.parametrize("num_flows", [0, 1, 10])
def test_any_length(num_flows):
    assert_log_q_matches_autograd(HouseholderFlow(feature_dim=4, latent_dim=3, num_flows=num_flows))
