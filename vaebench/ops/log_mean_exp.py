"""One-pass log-mean-exp over K importance weights: `vaebench::log_mean_exp`, and the
normalized weights with their effective sample size: `vaebench::importance_weights`.

The fused kernels (csrc/log_mean_exp.cpp, csrc/cuda/log_mean_exp.cu) read log_w once: each
slice keeps an online (max, rescaled sum) state, one exp per entry, so any spread of log-weights
and any K are stable. The weights (importance_weights, and the backward, which recomputes them
from log_w: nothing else is stored) are exp(log_w - max) / sum from that state, never formed
against the rounded log-sum-exp: they are exact relative to each other and sum to 1 at any
magnitude (the backward reads log_w twice for it). Without the compiled library both fall back to the references
in `vaebench.ops.reference`.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .library import fused_device_types
from .reference import importance_weights_reference, log_mean_exp_reference
from .support import check_dim, check_tensor, runs_fused

__all__ = ["importance_weights", "log_mean_exp"]

# Read once: a constant for torch.compile (see fused_device_types).
_FUSED_DEVICES = fused_device_types()


def log_mean_exp(log_w: Tensor, dim: int = 0) -> Tensor:
    """log (1/K) sum_k exp(log_w_k) along `dim`: the IWAE bound from its log-weights.

        LME(log_w) = m + log sum_k exp(log_w_k - m) - log K,   m = max_k log_w_k
        d LME / d log_w_k = w_k = exp(log_w_k) / sum_j exp(log_w_j)  (self-normalized weights)

    -inf entries are allowed; an all -inf slice gives -inf and a zero gradient. NaN propagates.
    A +inf entry gives +inf, and NaN weights (the gradient) over its slice: they are undefined.

    Args:
        log_w: (..., K, ...) log-weights, K >= 1 along `dim` (any dim, negative too); any
            floating dtype (the fused ones: vaebench.ops.support.FUSED_DTYPES).
        dim: the sample dim (an int).

    Returns:
        (...) log_w without `dim`.

    References:
        Importance Weighted Autoencoders, Burda, Grosse, Salakhutdinov, 2015, arXiv 1509.00519.
    """
    _check_log_w("log_mean_exp", log_w, dim)  # both paths: the same error types with or without the kernels
    if not runs_fused(log_w, _FUSED_DEVICES):  # CPU half: the reference (vaebench.ops.support)
        return log_mean_exp_reference(log_w, dim)
    return torch.ops.vaebench.log_mean_exp(log_w, dim)


def importance_weights(log_w: Tensor, dim: int = 0) -> tuple[Tensor, Tensor]:
    """Self-normalized importance weights and their effective sample size along `dim`.

        w_k = exp(log_w_k) / sum_j exp(log_w_j),    ESS = 1 / sum_k w_k^2  (1 <= ESS <= K)

    An all -inf slice has no weights: w = 0 and ESS = 0 there. A slice with a NaN or +inf entry
    has NaN weights and a NaN ESS.

    Not differentiable: the results are detached. They serve diagnostics and estimators that
    stop the gradient through the weights (DReG's w^2, reweighted wake-sleep); the gradient of
    the bound through the weights is that of `log_mean_exp`.

    Args:
        log_w: (..., K, ...) log-weights, K >= 1 along `dim`.
        dim: the sample dim.

    Returns:
        w: like log_w, and ess: log_w without `dim`, in float32 for float16/bfloat16 log_w (a
        count up to K overflows float16 beyond 65504).

    References:
        Doubly Reparameterized Gradient Estimators for Monte Carlo Objectives, Tucker, Lawson,
        Gu, Maddison, 2018, arXiv 1810.04152.
    """
    _check_log_w("importance_weights", log_w, dim)  # both paths: the same error types with or without the kernels
    log_w = log_w.detach()
    if not runs_fused(log_w, _FUSED_DEVICES):
        return importance_weights_reference(log_w, dim)
    return torch.ops.vaebench.importance_weights(log_w, dim)


def _check_log_w(op: str, log_w: Tensor, dim: int) -> None:
    """The fused kernels' input checks (csrc/log_mean_exp.h), in Python for both paths."""
    check_tensor(op, "log_w", log_w)
    if log_w.dim() < 1:
        raise ValueError(
            f"vaebench.{op}: log_w must be (..., K, ...) with at least 1 dim(s), got shape {tuple(log_w.shape)}"
        )
    check_dim(op, "dim", dim, "log_w", tuple(log_w.shape))
    if log_w.shape[dim] < 1:
        raise ValueError(
            f"vaebench.{op}: log_w must hold K >= 1 log-weights along dim {dim}, got shape "
            f"{tuple(log_w.shape)}; the mean of no weights is undefined"
        )


def _reduced(log_w: Tensor, dim: int) -> list[int]:
    shape = list(log_w.shape)
    del shape[dim % log_w.dim()]
    return shape


def _register() -> None:
    """Fake kernels (shapes for torch.compile) and autograd for the compiled ops."""

    @torch.library.register_fake("vaebench::log_mean_exp")
    def _(log_w: Tensor, dim: int = 0) -> Tensor:
        _check_log_w("log_mean_exp", log_w, dim)
        return log_w.new_empty(_reduced(log_w, dim))

    @torch.library.register_fake("vaebench::log_mean_exp_backward")
    def _(grad: Tensor, log_w: Tensor, out: Tensor, dim: int) -> Tensor:
        return log_w.new_empty(log_w.shape)

    @torch.library.register_fake("vaebench::importance_weights")
    def _(log_w: Tensor, dim: int = 0) -> tuple[Tensor, Tensor]:
        _check_log_w("importance_weights", log_w, dim)
        ess_dtype = torch.float32 if log_w.dtype in (torch.float16, torch.bfloat16) else log_w.dtype
        return log_w.new_empty(log_w.shape), log_w.new_empty(_reduced(log_w, dim), dtype=ess_dtype)

    def setup_context(ctx, inputs, output) -> None:
        log_w, dim = inputs
        ctx.save_for_backward(log_w, output)
        ctx.dim = dim

    def backward(ctx, grad: Tensor) -> tuple[Tensor, None]:
        log_w, out = ctx.saved_tensors
        return torch.ops.vaebench.log_mean_exp_backward(grad, log_w, out, ctx.dim), None

    torch.library.register_autograd("vaebench::log_mean_exp", backward, setup_context=setup_context)

    # Second derivatives: the backward computes grad_in = g * w, w = exp(log_w - out - log K) as a
    # function of its inputs (the kernels form the same w from log_w's max and sum, since `out` is
    # rounded; at out = log_mean_exp(log_w), the only out autograd passes, the values agree).
    # With v the incoming gradient: d/dg = sum_k v w, d/dlog_w = v g w, d/dout = -g sum_k v w;
    # autograd adds out's own dependence on log_w (d out / d log_w = w), which makes the total
    # the softmax Jacobian g (v w - w sum_k v w).
    # w comes from the backward op itself (g = 1), so every order stays differentiable.
    def setup_context_bwd(ctx, inputs, output) -> None:
        grad, log_w, out, dim = inputs
        ctx.save_for_backward(grad, log_w, out)
        ctx.dim = dim

    def backward_bwd(ctx, v: Tensor) -> tuple[Tensor, Tensor, Tensor, None]:
        grad, log_w, out = ctx.saved_tensors
        dim = ctx.dim
        w = torch.ops.vaebench.log_mean_exp_backward(torch.ones_like(grad), log_w, out, dim)
        vw = v * w
        vw_sum = vw.sum(dim)
        return vw_sum, vw * grad.unsqueeze(dim), -grad * vw_sum, None

    torch.library.register_autograd("vaebench::log_mean_exp_backward", backward_bwd, setup_context=setup_context_bwd)


if _FUSED_DEVICES:
    _register()
