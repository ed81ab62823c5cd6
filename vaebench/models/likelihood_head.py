"""The fused likelihood head: log p(x | z) through `vaebench.ops.bernoulli_head` where the model allows.

A decoder whose last layer is a Linear feeding a Bernoulli likelihood need not materialize its
(K, B, prod(event)) logits: the last layer and the likelihood's sum over the data dims are one
fused op, computed in cache-sized row tiles (csrc/bernoulli_head.cpp). The unfused path,
`likelihood.log_prob(x, decoder(z))`, stays the reference and the fallback for every other
decoder and likelihood.
"""

from __future__ import annotations

import math
import os

from torch import Tensor, nn
from torch.nn.modules.module import _global_forward_hooks, _global_forward_pre_hooks

from ..ops import bernoulli_head
from .likelihoods import BernoulliLikelihood, Likelihood

__all__ = ["TRAINING_MIN_LOGIT_BYTES", "fused_head_pays", "fused_output_layer", "head_log_prob"]


def _l2_cache_bytes() -> int:
    try:
        l2 = os.sysconf("SC_LEVEL2_CACHE_SIZE")
    except (ValueError, OSError, AttributeError):  # not POSIX, or the OS does not say
        l2 = 0
    return l2 if l2 > 0 else 1 << 20


#: With gradients, the fused head pays only for logits of at least this many bytes on a CPU. Its
#: backward recomputes every tile's logits, a fourth matmul over the tile that the unfused path
#: (which keeps them) does not do: 3 against 2 matmuls of rows x H x D in the backward. That buys
#: never writing and re-reading the (rows, D) logits and their temporaries, which costs nothing
#: while they fit in cache. Measured (MLP head H=200, D=784, float32, 1 thread, 2 MiB L2,
#: median of 15 alternating rounds, load 8): unfused / fused time 0.72 at 100 rows (0.3 MiB of
#: logits), 0.81 at 200, 1.01 at 400 (1.2 MiB), 1.12 at 800, 1.28 at 1600, 1.39 at 5000. So the
#: break-even is logits of about half of one core's L2 cache.
TRAINING_MIN_LOGIT_BYTES = _l2_cache_bytes() // 2


def fused_head_pays(rows: int, out_features: int, like: Tensor, needs_grad: bool) -> bool:
    """Whether the fused head is the faster path for `rows` rows of `out_features` logits.

    Always without gradients (the forward alone is one tiled matmul and one pass in cache,
    about 4x F.linear + BCE) and on CUDA; with gradients on a CPU, only when the logits the
    unfused path would keep reach `TRAINING_MIN_LOGIT_BYTES` (the recomputation's extra matmul
    then costs less than the memory traffic it saves). `like`: a tensor of the head's dtype
    and device."""
    if not needs_grad or like.device.type != "cpu":
        return True
    return rows * out_features * like.element_size() >= TRAINING_MIN_LOGIT_BYTES


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
