"""The elementwise functions on the models' hot paths, `tanh` and `softplus`, from ATen's fast
primitives on a CPU.

Why: on the CPU build of torch these machines run, ATen's `tanh` and `log1p` (inside
`F.softplus`, `F.logsigmoid` and BCE-with-logits) are several times slower than its `sigmoid`,
`exp` and `log`. Measured on (1667, 200) and (100, 784) float32 tensors, one thread: tanh
2.8 ns per element, log1p 12 ns, sigmoid 0.25 ns, exp 0.9 ns, log 1.25 ns. In whole runs (same
process, alternating rounds, medians): softplus below makes a batch-100 ELBO training step 10%
faster at one thread (5.72 against 6.37 ms) and 4% at two; tanh below makes the K=5000 NLL
evaluation 7% faster at one thread (135 against 145 ms for 4 digits) and 5% at two, and leaves
an IWAE K=50 step unchanged. So on a CPU
    tanh(x)     = 2 sigmoid(2x) - 1
    softplus(l) = max(l, 0) + log(1 + exp(-|l|))

each with one backward node that uses the exact derivative (1 - tanh^2, sigmoid). Both err by at
most about an ulp of 1 in absolute terms (the size of the rounding of the sums they feed: a
matmul over 200 units, a log-likelihood over 784 pixels); tanh's relative error near 0 is larger
than torch.tanh's for the same reason (2 s - 1 cancels), which no layer downstream can see at
that scale. On other devices both call torch's own kernels (fast there).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

__all__ = ["TANH_MIN_ELEMENTS", "Tanh", "softplus", "tanh"]


class _Tanh(torch.autograd.Function):
    """y = 2 sigmoid(2x) - 1; backward g (1 - y^2), as torch.tanh's."""

    generate_vmap_rule = True

    @staticmethod
    def forward(x: Tensor) -> Tensor:
        return torch.sigmoid(x * 2.0).mul_(2.0).sub_(1.0)

    @staticmethod
    def setup_context(ctx: torch.autograd.function.FunctionCtx, inputs: tuple[Tensor], output: Tensor) -> None:
        ctx.save_for_backward(output)

    @staticmethod
    def backward(ctx: torch.autograd.function.FunctionCtx, grad: Tensor) -> Tensor:
        (y,) = ctx.saved_tensors  # type: ignore[attr-defined]  # set by save_for_backward
        return grad * (1.0 - y * y)


class _Softplus(torch.autograd.Function):
    """max(l, 0) + log(1 + exp(-|l|)); backward g sigmoid(l) (autograd of the expression would
    give 1 at l = 0, not 1/2)."""

    generate_vmap_rule = True

    @staticmethod
    def forward(logits: Tensor) -> Tensor:
        return torch.log(1.0 + torch.exp(-logits.abs())) + logits.clamp_min(0.0)

    @staticmethod
    def setup_context(ctx: torch.autograd.function.FunctionCtx, inputs: tuple[Tensor], output: Tensor) -> None:
        ctx.save_for_backward(inputs[0])

    @staticmethod
    def backward(ctx: torch.autograd.function.FunctionCtx, grad: Tensor) -> Tensor:
        (logits,) = ctx.saved_tensors  # type: ignore[attr-defined]  # set by save_for_backward
        return grad * torch.sigmoid(logits)


#: Below this many elements `tanh` calls torch.tanh: the composite's four kernels and its Python
#: backward node cost more than ATen's slower arithmetic at the size of a batch-100 hidden layer
#: ((100, 200): a batch-100 ELBO step 3% slower at 1 thread and 17% at 2 with the composite,
#: measured), where an NLL pass ((1667, 200) per pass) gains 5-7%.
TANH_MIN_ELEMENTS = 1 << 16


def tanh(x: Tensor) -> Tensor:
    """tanh elementwise, differentiable (twice); 2 sigmoid(2x) - 1 on a CPU for tensors of at
    least TANH_MIN_ELEMENTS elements (module docstring)."""
    if x.device.type != "cpu" or x.numel() < TANH_MIN_ELEMENTS:
        return torch.tanh(x)
    return _Tanh.apply(x)


def softplus(logits: Tensor) -> Tensor:
    """log(1 + exp(l)) elementwise, differentiable (twice); without log1p on a CPU (module docstring)."""
    if logits.device.type != "cpu":
        return torch.nn.functional.softplus(logits)
    return _Softplus.apply(logits)


class Tanh(nn.Module):
    """nn.Tanh computed by `tanh` (the MLPs' activation)."""

    def forward(self, x: Tensor) -> Tensor:
        return tanh(x)
