"""MLP building blocks."""

from __future__ import annotations

import pytest
import torch

from vaebench.models import MLP, MLPDecoder, MLPEncoder


def test_encoder_flattens_and_decoder_outputs_p_per_dim():
    enc = MLPEncoder((1, 4, 5), (7, 6))
    assert enc(torch.zeros(3, 1, 4, 5)).shape == (3, 6) and enc.feature_dim == 6
    dec = MLPDecoder(2, (4, 5), num_params=3, hidden=(7,))
    assert dec(torch.zeros(8, 2)).shape == (8, 60) and dec.output_layer.out_features == 60


def test_activation_placement():
    net = MLP([3, 4, 2], "tanh")
    assert [type(m).__name__ for m in net.net] == ["Linear", "Tanh", "Linear"]
    net = MLP([3, 4], "relu", activate_last=True)
    assert [type(m).__name__ for m in net.net] == ["Linear", "ReLU"]
    with pytest.raises(ValueError, match=">= 2 positive layer widths"):
        MLP([3])
