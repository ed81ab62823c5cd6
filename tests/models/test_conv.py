"""The convolutional encoder/decoder: shapes for 32x32 and padded 28x28 images."""

from __future__ import annotations

import pytest
import torch

from vaebench.models import ConvDecoder, ConvEncoder


@pytest.mark.parametrize("event_shape", [(3, 32, 32), (1, 28, 28), (2, 7, 9)])
def test_shapes_round_trip(event_shape):
    enc = ConvEncoder(event_shape, feature_dim=16)
    dec = ConvDecoder(5, event_shape, num_params=2)
    assert enc(torch.zeros(4, *event_shape)).shape == (4, 16)
    assert dec(torch.zeros(6, 5)).shape == (6, 2 * event_shape[0], *event_shape[1:])


def test_flat_data_is_refused():
    with pytest.raises(ValueError, match="use an MLP architecture"):
        ConvEncoder((784,))
