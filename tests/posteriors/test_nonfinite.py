"""detect_nonfinite(): off by default, scoped, and naming family, layer and quantity."""

from __future__ import annotations

import pytest
import torch

from vaebench.posteriors import (
    HouseholderFlow,
    NonFiniteError,
    PlanarFlow,
    check_finite,
    detect_nonfinite,
    detecting_nonfinite,
)


def test_off_by_default_scoped_and_nestable():
    assert not detecting_nonfinite()
    with detect_nonfinite():
        assert detecting_nonfinite()
        with detect_nonfinite(False):
            assert not detecting_nonfinite()
            check_finite(torch.tensor([float("nan")]), "x", 0, "z")  # off: no error
        assert detecting_nonfinite()
    assert not detecting_nonfinite()


def test_error_names_family_layer_quantity_and_count():
    with detect_nonfinite(), pytest.raises(NonFiniteError) as info:
        check_finite(torch.tensor([1.0, float("inf"), float("nan")]), "radial", 3, "log|det|")
    err = info.value
    assert (err.family, err.layer, err.quantity) == ("radial", 3, "log|det|")
    assert str(err).startswith("radial: layer 3 produced a non-finite log|det| (2 of 3 entries are NaN and inf)")
    assert isinstance(err, FloatingPointError)


def test_first_bad_layer_is_reported():
    """Poison layer 2's vector of a Householder chain: layers 0 and 1 stay finite."""
    flow = HouseholderFlow(feature_dim=3, latent_dim=4, num_flows=4)
    with torch.no_grad():
        flow.next[1].bias.fill_(float("nan"))  # v_3 = Linear(v_2): layer index 2
    with detect_nonfinite(), pytest.raises(NonFiniteError) as info:
        flow.rsample_and_log_prob(torch.randn(2, 3), 2)
    assert (info.value.family, info.value.layer, info.value.quantity) == (
        "householder",
        2,
        "z",
    )


def test_base_distribution_is_checked_first():
    flow = PlanarFlow(feature_dim=3, latent_dim=4)
    with torch.no_grad():
        flow.base.logvar.bias.fill_(float("inf"))
    with (
        detect_nonfinite(),
        pytest.raises(
            NonFiniteError,
            match="planar: the base distribution produced a non-finite logvar",
        ),
    ):
        flow.rsample_and_log_prob(torch.randn(2, 3), 2)


def test_planar_layer_log_det_is_checked():
    flow = PlanarFlow(feature_dim=3, latent_dim=4, num_flows=3)
    with torch.no_grad():
        flow.b.bias[1] = float("nan")  # layer 1's b: z and log|det| both go NaN; z is checked first
    with detect_nonfinite(), pytest.raises(NonFiniteError) as info:
        flow.rsample_and_log_prob(torch.randn(2, 3), 2)
    assert (info.value.layer, info.value.quantity) == (1, "z")
