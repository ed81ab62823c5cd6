"""Convolutional encoder and decoder for small colour images (32x32, e.g. CIFAR-10).

Three stride-2 convolutions (32 -> 16 -> 8 -> 4) and a linear layer to features; the decoder
mirrors it with transposed convolutions. Images smaller than 32x32 (28x28 MNIST) are
zero-padded to 32x32 on the way in and the decoder's output is cropped back.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch.nn.functional as F
from torch import Tensor, nn

from .mlp import _activation, glorot_init

__all__ = ["ConvDecoder", "ConvEncoder"]

_SIZE = 32


def _check_event(event_shape: Sequence[int], who: str) -> tuple[int, int, int]:
    if len(event_shape) != 3 or event_shape[1] > _SIZE or event_shape[2] > _SIZE or min(event_shape) < 1:
        raise ValueError(
            f"{who}: event_shape must be (C, H, W) with H, W <= {_SIZE}, got {tuple(event_shape)}; "
            "use an MLP architecture ('mlp_burda') for flat data"
        )
    c, h, w = (int(s) for s in event_shape)
    return c, h, w


class ConvEncoder(nn.Module):
    """x: (B, C, H, W) -> features h: (B, feature_dim).

    Layers: conv 4x4/2 to `channels[0]`, `channels[1]`, `channels[2]`, activation after each,
    flatten (channels[2] * 4 * 4) and a linear layer with an activation.
    """

    def __init__(
        self,
        event_shape: Sequence[int],
        channels: Sequence[int] = (32, 64, 128),
        feature_dim: int = 256,
        activation: str = "elu",
    ) -> None:
        super().__init__()
        c, self.height, self.width = _check_event(event_shape, "ConvEncoder")
        if len(channels) != 3:
            raise ValueError(f"ConvEncoder: channels must list 3 widths, got {tuple(channels)}")
        layers: list[nn.Module] = []
        for n_in, n_out in zip((c, *channels[:-1]), channels, strict=True):
            layers += [nn.Conv2d(n_in, n_out, 4, stride=2, padding=1), _activation(activation)]
        layers += [nn.Flatten(), nn.Linear(channels[-1] * 16, feature_dim), _activation(activation)]
        self.net = nn.Sequential(*layers)
        self.feature_dim = feature_dim
        glorot_init(self)

    def forward(self, x: Tensor) -> Tensor:
        # Pad right/bottom to 32x32 so that 28x28 images reuse the same strides.
        x = F.pad(x, (0, _SIZE - self.width, 0, _SIZE - self.height))
        return self.net(x)


class ConvDecoder(nn.Module):
    """z: (N, D) -> params: (N, P * C, H, W), the mirror image of ConvEncoder.

    `output_layer` is the last transposed convolution (bias per output channel).
    """

    def __init__(
        self,
        latent_dim: int,
        event_shape: Sequence[int],
        num_params: int = 1,
        channels: Sequence[int] = (128, 64, 32),
        activation: str = "elu",
    ) -> None:
        super().__init__()
        c, self.height, self.width = _check_event(event_shape, "ConvDecoder")
        if len(channels) != 3:
            raise ValueError(f"ConvDecoder: channels must list 3 widths, got {tuple(channels)}")
        self.channels = tuple(channels)
        self.fc = nn.Sequential(nn.Linear(latent_dim, channels[0] * 16), _activation(activation))
        self.net = nn.Sequential(
            nn.ConvTranspose2d(channels[0], channels[1], 4, stride=2, padding=1),
            _activation(activation),
            nn.ConvTranspose2d(channels[1], channels[2], 4, stride=2, padding=1),
            _activation(activation),
            nn.ConvTranspose2d(channels[2], num_params * c, 4, stride=2, padding=1),
        )
        glorot_init(self)

    @property
    def output_layer(self) -> nn.ConvTranspose2d:
        layer = self.net[-1]
        assert isinstance(layer, nn.ConvTranspose2d)  # the last layer built above
        return layer

    def forward(self, z: Tensor) -> Tensor:
        h = self.fc(z).view(z.shape[0], self.channels[0], 4, 4)
        return self.net(h)[:, :, : self.height, : self.width]
