"""The fused likelihood head: log p(x | z) through `vaebench.ops.bernoulli_head` where the model allows.

A decoder whose last layer is a Linear feeding a Bernoulli likelihood need not materialize its
(K, B, prod(event)) logits: the last layer and the likelihood's sum over the data dims are one
fused op, computed in cache-sized row tiles (csrc/bernoulli_head.cpp). The unfused path,
`likelihood.log_prob(x, decoder(z))`, stays the reference and the fallback for every other
decoder and likelihood.
"""

from __future__ import annotations

import math

from torch import Tensor, nn
from torch.nn.modules.module import _global_forward_hooks, _global_forward_pre_hooks

from ..ops import bernoulli_head
from .likelihoods import BernoulliLikelihood, Likelihood

__all__ = ["fused_output_layer", "head_log_prob"]


def fused_output_layer(decoder: nn.Module, likelihood: Likelihood, event_shape: tuple[int, ...]) -> nn.Linear | None:
    """The decoder's last Linear layer if log p(x | z) can take the fused head, else None.

    It can when the likelihood is Bernoulli, the decoder exposes `features(z)` (the input of
    its `output_layer`) and that layer is an `nn.Linear` with a bias and prod(event_shape)
    outputs (one logit per data dim), and nothing hooks that layer's forward: the fused head
    never calls it as a module, so a forward hook (the trainer's non-finite diagnosis, a user's
    probe) would silently not run; with one, the unfused path calls the layer."""
    if type(likelihood) is not BernoulliLikelihood or not callable(getattr(decoder, "features", None)):
        return None
    layer = getattr(decoder, "output_layer", None)
    if type(layer) is not nn.Linear or layer.bias is None or layer.out_features != math.prod(event_shape):
        return None
    if layer._forward_hooks or layer._forward_pre_hooks or _global_forward_hooks or _global_forward_pre_hooks:
        return None
    return layer


def head_log_prob(decoder: nn.Module, layer: nn.Linear, x: Tensor, z: Tensor) -> Tensor:
    """log p(x | z) = sum_n x_n l_n - softplus(l_n), l = layer(decoder.features(z)), fused.

    Shapes: x: (B, *event), z: (K, B, D) -> (K, B). The logits are never materialized."""
    k, b = z.shape[0], z.shape[1]
    # Checked callable by fused_output_layer; nn.Module.__getattr__ says Tensor | Module.
    features = decoder.features(z.reshape(k * b, z.shape[-1])).reshape(k, b, -1)  # type: ignore[operator]
    return bernoulli_head(features, layer.weight, layer.bias, x.reshape(x.shape[0], -1))
