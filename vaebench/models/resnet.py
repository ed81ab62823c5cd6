"""Residual convolutional encoder and decoder for 28x28 images (the IAF paper's MNIST setting).

Two stages at 14x14 and 7x7 (a stride-2 convolution, then residual blocks), a linear layer
to the features h that the posterior family (e.g. IAF, which takes h as its context) reads;
the decoder mirrors it with transposed convolutions. ELU activations, as in Kingma et al.
The depth and widths are configurable; the paper's exact MNIST configuration is not
reproduced here (REFERENCES.md marks its table unverified).

References:
    Improved Variational Inference with Inverse Autoregressive Flow, Kingma, Salimans,
    Jozefowicz, Chen, Sutskever, Welling, 2016, arXiv:1606.04934.
    Deep Residual Learning for Image Recognition, He, Zhang, Ren, Sun, 2015, arXiv:1512.03385.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch.nn.functional as F
from torch import Tensor, nn

from .mlp import glorot_init

__all__ = ["ResNetDecoder", "ResNetEncoder", "ResidualBlock"]

_SIZE = 28


def _check_event(event_shape: Sequence[int], who: str) -> int:
    if len(event_shape) != 3 or tuple(event_shape[1:]) != (_SIZE, _SIZE):
        raise ValueError(
            f"{who}: event_shape must be (C, 28, 28), got {tuple(event_shape)}; use 'conv32' for "
            "other image sizes up to 32x32 or an MLP architecture for flat data"
        )
    return int(event_shape[0])


class ResidualBlock(nn.Module):
    """x + conv(elu(conv(elu(x)))), two 3x3 convolutions at constant width.

    Shapes: (N, C, H, W) -> (N, C, H, W).
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.conv2(F.elu(self.conv1(F.elu(x))))


class ResNetEncoder(nn.Module):
    """x: (B, C, 28, 28) -> features h: (B, feature_dim).

    Args:
        event_shape: (C, 28, 28).
        channels: the width of the 14x14 and 7x7 stages.
        blocks: residual blocks per stage.
        feature_dim: the size of h.
    """

    def __init__(
        self,
        event_shape: Sequence[int],
        channels: Sequence[int] = (32, 64),
        blocks: int = 2,
        feature_dim: int = 256,
    ) -> None:
        super().__init__()
        c = _check_event(event_shape, "ResNetEncoder")
        if len(channels) != 2 or blocks < 0:
            raise ValueError(
                f"ResNetEncoder: channels must list 2 widths and blocks be >= 0, got {tuple(channels)}, {blocks}"
            )
        layers: list[nn.Module] = []
        for n_in, n_out in zip((c, channels[0]), channels, strict=True):
            layers.append(nn.Conv2d(n_in, n_out, 4, stride=2, padding=1))  # 28 -> 14 -> 7
            layers += [ResidualBlock(n_out) for _ in range(blocks)]
        self.net = nn.Sequential(*layers)
        self.fc = nn.Linear(channels[1] * 7 * 7, feature_dim)
        self.feature_dim = feature_dim
        glorot_init(self)

    def forward(self, x: Tensor) -> Tensor:
        return F.elu(self.fc(F.elu(self.net(x)).flatten(1)))


class ResNetDecoder(nn.Module):
    """z: (N, D) -> params: (N, P * C, 28, 28), the mirror image of ResNetEncoder.

    `output_layer` is the last transposed convolution (a bias per output channel).
    """

    def __init__(
        self,
        latent_dim: int,
        event_shape: Sequence[int],
        num_params: int = 1,
        channels: Sequence[int] = (64, 32),
        blocks: int = 2,
    ) -> None:
        super().__init__()
        c = _check_event(event_shape, "ResNetDecoder")
        if len(channels) != 2 or blocks < 0:
            raise ValueError(
                f"ResNetDecoder: channels must list 2 widths and blocks be >= 0, got {tuple(channels)}, {blocks}"
            )
        self.channels = tuple(channels)
        self.fc = nn.Linear(latent_dim, channels[0] * 7 * 7)
        self.stage1 = nn.Sequential(*[ResidualBlock(channels[0]) for _ in range(blocks)])
        self.up1 = nn.ConvTranspose2d(channels[0], channels[1], 4, stride=2, padding=1)  # 7 -> 14
        self.stage2 = nn.Sequential(*[ResidualBlock(channels[1]) for _ in range(blocks)])
        self.up2 = nn.ConvTranspose2d(channels[1], num_params * c, 4, stride=2, padding=1)  # 14 -> 28
        glorot_init(self)

    @property
    def output_layer(self) -> nn.ConvTranspose2d:
        return self.up2

    def forward(self, z: Tensor) -> Tensor:
        h = F.elu(self.fc(z)).view(z.shape[0], self.channels[0], 7, 7)
        h = self.stage2(self.up1(F.elu(self.stage1(h))))
        return self.up2(F.elu(h))
