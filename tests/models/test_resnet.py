"""The residual encoder/decoder for 28x28 images."""

from __future__ import annotations

import pytest
import torch

from vaebench.models import ResidualBlock, ResNetDecoder, ResNetEncoder, build_model


def test_shapes_and_residual_identity():
    enc = ResNetEncoder((1, 28, 28), channels=(4, 8), blocks=2, feature_dim=10)
    dec = ResNetDecoder(3, (1, 28, 28), num_params=2, channels=(8, 4), blocks=2)
    assert enc(torch.zeros(5, 1, 28, 28)).shape == (5, 10)
    assert dec(torch.zeros(6, 3)).shape == (6, 2, 28, 28)
    block = ResidualBlock(4)
    with torch.no_grad():
        block.conv2.weight.zero_()
        block.conv2.bias.zero_()
    x = torch.randn(2, 4, 7, 7)
    torch.testing.assert_close(block(x), x)  # a zeroed residual branch is the identity


def test_with_iaf_posterior_and_output_bias():
    mean = torch.full((1, 28, 28), 0.1)
    model = build_model(
        {"name": "resnet28", "latent_dim": 4, "channels": (4, 8), "blocks": 1, "feature_dim": 16},
        posterior="iaf",
        event_shape=(1, 28, 28),
        data_mean=mean,
    )
    torch.testing.assert_close(model.decoder.output_layer.bias, torch.log(torch.tensor([0.1 / 0.9])))
    x = (torch.rand(3, 1, 28, 28) < 0.2).float()
    lw = model.log_weights(x, 2)
    assert lw.log_w.shape == (2, 3) and torch.isfinite(lw.log_w).all()


def test_wrong_size_is_named():
    with pytest.raises(ValueError, match="use 'conv32'"):
        ResNetEncoder((1, 32, 32))
