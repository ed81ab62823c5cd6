"""The protocol's parameter initialization, one home for models and posterior families."""

from __future__ import annotations

from torch import nn

__all__ = ["glorot_init", "zero_init"]


def glorot_init(module: nn.Module) -> None:
    """Glorot-uniform weights and zero biases on every Linear/Conv layer (the IWAE protocol:
    Burda et al. initialize every layer so, the posterior's parameter heads included).

    References:
        Understanding the difficulty of training deep feedforward neural networks, Glorot,
        Bengio, 2010 (AISTATS; no arXiv id).
        Importance Weighted Autoencoders, Burda, Grosse, Salakhutdinov, 2015, arXiv:1509.00519.
    """
    for m in module.modules():
        if isinstance(m, (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


def zero_init(layer: nn.Linear | None) -> None:
    """Zero weights and bias: a parameter head whose output starts at 0 for every input (how a
    flow starts at the identity). None (an empty head) is left alone."""
    if layer is None:
        return
    nn.init.zeros_(layer.weight)
    if layer.bias is not None:
        nn.init.zeros_(layer.bias)
