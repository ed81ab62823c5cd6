"""MADE: the masked autoencoder whose outputs depend only on earlier inputs (IAF's network)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["MADE", "MaskedLinear"]


class MaskedLinear(nn.Linear):
    """y = x (W * mask)^T + b, the mask fixed at construction (a buffer, moved with .to)."""

    mask: Tensor  # (out, in), a buffer

    def __init__(self, in_features: int, out_features: int, mask: Tensor) -> None:
        super().__init__(in_features, out_features)
        if mask.shape != (out_features, in_features):
            raise ValueError(
                f"MaskedLinear: mask must be (out, in) = {(out_features, in_features)}, got {tuple(mask.shape)}"
            )
        self.register_buffer("mask", mask.to(self.weight.dtype))

    def forward(self, x: Tensor) -> Tensor:
        return F.linear(x, self.weight * self.mask, self.bias)


class MADE(nn.Module):
    """An autoregressive network: output block j's entry i depends on x_1..x_{i-1} and the
    context only.

        hidden_1 = act(MaskedLinear(x) + Linear(context))
        hidden_l = act(MaskedLinear(hidden_{l-1})),   out = MaskedLinear(hidden_L)

    Degrees: input i has degree i (1..D); hidden unit k has degree k mod D (0..D-1; degree 0
    units see only the context, so output 1 still depends on it); a unit connects to the
    previous layer's units of degree <= its own, an output of degree i to hidden units of
    degree < i. The context enters the first hidden layer, as in IAF.

    Shapes: x: (..., D), context: (..., C) broadcastable against x's batch -> (..., num_outputs, D).

    References:
        MADE: Masked Autoencoder for Distribution Estimation. Germain, Gregor, Murray,
            Larochelle, 2015. arXiv:1502.03509.
    """

    def __init__(
        self,
        features: int,
        hidden: int,
        *,
        num_hidden_layers: int = 1,
        context_features: int | None = None,
        num_outputs: int = 2,
    ) -> None:
        super().__init__()
        for arg, value, low in (
            ("features", features, 1),
            ("hidden", hidden, 1),
            ("num_hidden_layers", num_hidden_layers, 1),
            ("num_outputs", num_outputs, 1),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"MADE: {arg} must be an int >= {low}, got {value!r}")
        self.features = features
        self.num_outputs = num_outputs
        degrees_in = torch.arange(1, features + 1)
        degrees_hidden = torch.arange(hidden) % features
        layers = []
        previous = degrees_in
        for _ in range(num_hidden_layers):
            mask = degrees_hidden[:, None] >= previous[None, :]
            layers.append(MaskedLinear(previous.numel(), hidden, mask))
            previous = degrees_hidden
        self.hidden_layers = nn.ModuleList(layers)
        degrees_out = degrees_in.repeat(num_outputs)
        self.output = MaskedLinear(hidden, num_outputs * features, degrees_out[:, None] > previous[None, :])
        self.context = nn.Linear(context_features, hidden, bias=False) if context_features else None

    def forward(self, x: Tensor, context: Tensor | None = None) -> Tensor:
        y = self.hidden_layers[0](x)
        if self.context is not None:
            if context is None:
                raise ValueError("MADE: built with context_features, so context is required")
            y = y + self.context(context)
        y = F.elu(y)
        for layer in self.hidden_layers[1:]:
            y = F.elu(layer(y))
        return self.output(y).unflatten(-1, (self.num_outputs, self.features))
