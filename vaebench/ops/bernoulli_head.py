"""The fused likelihood head: the decoder's last Linear layer fused with the Bernoulli
log-likelihood summed over the data dimensions, `vaebench::bernoulli_head`.

The kernels (csrc/bernoulli_head.cpp, csrc/cuda/bernoulli_head.cu) compute the logits a tile of
rows at a time (BLAS on the CPU, cuBLAS on CUDA) and reduce each tile while it is in cache, so
the (rows, D) logits are never materialized; the backward recomputes a tile's logits instead
of saving them (the fused-linear-cross-entropy pattern of Liger-Kernel). Without the compiled
library the op falls back to `bernoulli_head_reference`.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .library import fused_device_types
from .reference import bernoulli_head_reference

__all__ = ["bernoulli_head"]

# Read once: a constant for torch.compile (see fused_device_types).
_FUSED_DEVICES = fused_device_types()


def bernoulli_head(h: Tensor, weight: Tensor, bias: Tensor, x: Tensor, *, tile_rows: int = 0) -> Tensor:
    """log p(x | h) of a Bernoulli whose logits are the Linear layer l = h W^T + b, summed over D.

        log p(x | h) = sum_D x l - softplus(l),   l = h W^T + b
        d/dl = x - sigmoid(l);  grad_h = dl W,  grad_W = dl^T h,  grad_b = sum_rows dl

    Differentiable in h, weight and bias; x is data (an x that requires grad is refused). The
    logits are never stored: forward and backward each compute them one tile of rows at a time.

    Args:
        h: (*batch, H) the features entering the last layer.
        weight: (D, H), bias: (D,) that layer's parameters (`nn.Linear(H, D)`).
        x: (*xbatch, D) the data, xbatch broadcasting to batch: x (B, D) against h (K, B, H) is
            read K times without being expanded.
        tile_rows: rows per tile; 0 (default) sizes the tile for the L2 cache (CPU) or for GPU
            memory (CUDA). Other values are for tests and benchmarks.

    Returns:
        (*batch,) log p(x | h).

    References:
        Liger Kernel: Efficient Triton Kernels for LLM Training, Hsu et al., 2024, arXiv
        2410.10989 (the fused linear cross-entropy).
    """
    _check_inputs("bernoulli_head", h, weight, bias, x, tile_rows)
    if x.requires_grad:
        raise ValueError(
            "vaebench.bernoulli_head: x is the data and gets no gradient, but it requires grad; pass x.detach(), "
            "or use vaebench.ops.bernoulli_head_reference for a gradient in x"
        )
    if h.device.type not in _FUSED_DEVICES:
        return bernoulli_head_reference(h, weight, bias, x)
    return torch.ops.vaebench.bernoulli_head(h, weight, bias, x, tile_rows)


def _check_inputs(op: str, h: Tensor, weight: Tensor, bias: Tensor, x: Tensor, tile_rows: int) -> None:
    """The fused kernels' input checks (csrc/bernoulli_head.h), in Python for both paths."""
    for name, t in (("h", h), ("weight", weight), ("bias", bias), ("x", x)):
        if not isinstance(t, Tensor):
            raise TypeError(f"vaebench.{op}: {name} must be a torch.Tensor, got {type(t).__name__}")
        if not t.is_floating_point():
            raise TypeError(f"vaebench.{op}: {name} must be a floating-point tensor, got {t.dtype}")
        if t.dtype != h.dtype:
            raise TypeError(f"vaebench.{op}: {name} must have the dtype of h, got {t.dtype} and {h.dtype}")
        if t.device != h.device:
            raise ValueError(f"vaebench.{op}: {name} must be on the device of h, got {t.device} and {h.device}")
    if h.dim() < 1:
        raise ValueError(f"vaebench.{op}: h must be (..., H) with at least 1 dim(s), got shape {tuple(h.shape)}")
    H = h.shape[-1]
    if weight.dim() != 2 or weight.shape[1] != H:
        raise ValueError(
            f"vaebench.{op}: weight must be (D, H) with H={H} the last dim of h, got shape {tuple(weight.shape)} "
            "(nn.Linear(H, D).weight has this layout)"
        )
    D = weight.shape[0]
    if tuple(bias.shape) != (D,):
        raise ValueError(
            f"vaebench.{op}: bias must be (D,) with D={D} the rows of weight, got shape {tuple(bias.shape)}"
        )
    if x.dim() < 1 or x.shape[-1] != D:
        raise ValueError(f"vaebench.{op}: x must be (..., D) with D={D} the rows of weight, got shape {tuple(x.shape)}")
    lead, xlead = tuple(h.shape[:-1]), tuple(x.shape[:-1])
    # strict=False: broadcasting compares the trailing dims only.
    if len(xlead) > len(lead) or any(a not in (1, b) for a, b in zip(reversed(xlead), reversed(lead), strict=False)):
        raise ValueError(
            f"vaebench.{op}: x's leading dims must broadcast to h's leading dims {lead} "
            f"(e.g. x (B, D) for h (K, B, H)), got x of shape {tuple(x.shape)}"
        )
    if isinstance(tile_rows, bool) or not isinstance(tile_rows, int) or tile_rows < 0:
        raise ValueError(
            f"vaebench.{op}: tile_rows must be an int >= 0 (0 chooses it from the cache size), got {tile_rows!r}"
        )


def _register() -> None:
    """Fake kernels (shapes for torch.compile) and autograd for the compiled ops."""

    @torch.library.register_fake("vaebench::bernoulli_head")
    def _(h: Tensor, weight: Tensor, bias: Tensor, x: Tensor, tile_rows: int = 0) -> Tensor:
        _check_inputs("bernoulli_head", h, weight, bias, x, tile_rows)
        return h.new_empty(h.shape[:-1])

    @torch.library.register_fake("vaebench::bernoulli_head_backward")
    def _(
        grad: Tensor, h: Tensor, weight: Tensor, bias: Tensor, x: Tensor, tile_rows: int = 0
    ) -> tuple[Tensor, Tensor, Tensor]:
        return h.new_empty(h.shape), weight.new_empty(weight.shape), bias.new_empty(bias.shape)

    def setup_context(ctx, inputs, output) -> None:
        h, weight, bias, x, tile_rows = inputs
        # The inputs only: the logits are recomputed in the backward, never saved.
        ctx.save_for_backward(h, weight, bias, x)
        ctx.tile_rows = tile_rows

    def backward(ctx, grad: Tensor) -> tuple[Tensor | None, ...]:
        h, weight, bias, x = ctx.saved_tensors
        g_h, g_w, g_b = torch.ops.vaebench.bernoulli_head_backward(grad, h, weight, bias, x, ctx.tile_rows)
        need = ctx.needs_input_grad
        return (g_h if need[0] else None, g_w if need[1] else None, g_b if need[2] else None, None, None)

    torch.library.register_autograd("vaebench::bernoulli_head", backward, setup_context=setup_context)


if _FUSED_DEVICES:
    _register()
