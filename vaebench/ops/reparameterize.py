"""Reparameterized Gaussian sampling fused with log q: `vaebench::reparameterize`.

The fused kernels (csrc/reparameterize.cpp, csrc/cuda/reparameterize.cu) draw eps inside the
kernel from a Philox4x32-10 stream (csrc/philox.h) indexed by element, so the CPU and CUDA
kernels give the same eps for the same seed. The op is pure: its randomness is an explicit
`seed` tensor [seed, offset] (CPU int64), which `reparameterize` draws from a torch generator.
eps is never stored: the backward recomputes it from the seed, which is exact even where z has
lost eps (sigma << |mu|, e.g. logvar = -80), unlike recovering eps = (z - mu) / sigma.
Without the compiled library the op falls back to torch.randn + `reparameterize_reference`.

Reproducibility: for a given seed the normals (and z) are bit-identical across the CPU kernel's
DEFAULT/AVX2/AVX-512 copies, thread counts and the CUDA kernel (same header arithmetic, no
libm); they are within 4 ulp of the float64 Box-Muller of the same Philox words
(`philox_normal_reference`). log q and the gradients are sums, equal to rounding.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .library import fused_device_types
from .reference import reparameterize_reference
from .support import check_allocation, check_tensor
from .support import runs_fused as _runs_fused

__all__ = ["draw_seed", "reparameterize"]

# Read once: a constant for torch.compile (see fused_device_types).
_FUSED_DEVICES = fused_device_types()
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


def reparameterize(
    mu: Tensor,
    logvar: Tensor,
    num_samples: int = 1,
    *,
    generator: torch.Generator | None = None,
    path_gradient: bool = False,
) -> tuple[Tensor, Tensor]:
    """Draw K reparameterized samples z = mu + exp(logvar / 2) * eps and their log q(z).

        z_k = mu + sigma * eps_k,  sigma = exp(logvar / 2),  eps_k ~ N(0, I)
        log q(z_k) = sum_D (-eps_k^2 / 2 - logvar / 2 - log(2 pi) / 2)

    log q is computed from eps, never by re-standardizing z. With `path_gradient` the
    gradient of log q reaches mu and logvar only through z (d log q / dz = -eps / sigma, no
    score term); otherwise it is the full gradient (d log q / d mu = 0, d log q / d logvar =
    -1/2 per element).

    Each call draws a fresh [seed, offset] from `generator` (default: torch's default CPU
    generator, also for CUDA tensors, so `torch.manual_seed(s)` gives the same samples on CPU
    and CUDA) and advances it. The fused float32 and float64 paths use different normals
    (4 and 2 per Philox block); float16/bfloat16 on CUDA use the float32 ones.

    Args:
        mu, logvar: (*batch, D) mean and log-variance of the diagonal Gaussian, D >= 1;
            any floating dtype (fused: float32/float64 on CPU, also float16/bfloat16 on CUDA;
            vaebench.ops.support.FUSED_DTYPES).
        num_samples: K >= 1; the output must fit the device's memory
            (vaebench.ops.support.allocation_limit), checked before the kernel runs.
        generator: torch generator the seed is drawn from.
        path_gradient: "sticking the landing" gradient for log q.

    Returns:
        z: (K, *batch, D) and log_q: (K, *batch).

    References:
        Auto-Encoding Variational Bayes, Kingma, Welling, 2013, arXiv 1312.6114.
        Sticking the Landing: Simple, Lower-Variance Gradient Estimators for Variational
        Inference, Roeder, Wu, Duvenaud, 2017, arXiv 1703.09194.
    """
    _check_inputs(mu, logvar, num_samples)
    if not runs_fused(mu):
        eps = torch.randn((num_samples, *mu.shape), dtype=mu.dtype, device=mu.device, generator=generator)
        return reparameterize_reference(mu, logvar, eps, path_gradient)
    seed = draw_seed(generator)
    return torch.ops.vaebench.reparameterize(mu, logvar, num_samples, seed, path_gradient)


def draw_seed(generator: torch.Generator | None = None) -> Tensor:
    """A fresh Philox [seed, offset] pair (CPU int64 (2,)) drawn from `generator`, advancing it.

    Pass it to `torch.ops.vaebench.reparameterize(mu, logvar, K, seed, path_gradient)` to
    repeat a draw exactly.
    """
    device = generator.device if generator is not None else torch.device("cpu")
    seed = torch.randint(_INT64_MIN, _INT64_MAX, (2,), dtype=torch.int64, device=device, generator=generator)
    return seed.cpu()


def runs_fused(mu: Tensor) -> bool:
    """True when `reparameterize(mu, ...)` runs the compiled kernel, False for the reference.

    The difference matters to gradient hooks: with `path_gradient=True` the kernel computes
    log q's path derivative inside its backward, so it reaches mu and logvar without passing
    through the returned z in the autograd graph (a hook on z does not see it); the reference
    routes it through z.
    """
    return _runs_fused(mu, _FUSED_DEVICES)  # CPU half: the reference (vaebench.ops.support)


def _check_inputs(mu: Tensor, logvar: Tensor, num_samples: int) -> None:
    """The kernels' input checks (csrc/reparameterize_common.h), before any work or RNG draw."""
    for name, t in (("mu", mu), ("logvar", logvar)):
        check_tensor("reparameterize", name, t)
    if logvar.dtype != mu.dtype:
        raise TypeError(f"vaebench.reparameterize: logvar must have the dtype of mu, got {logvar.dtype} and {mu.dtype}")
    if logvar.device != mu.device:
        raise ValueError(
            f"vaebench.reparameterize: logvar must be on the device of mu, got {logvar.device} and {mu.device}"
        )
    if mu.dim() < 1:
        raise ValueError(
            f"vaebench.reparameterize: mu must be (*batch, D) with at least 1 dim, got shape {tuple(mu.shape)}"
        )
    if logvar.shape != mu.shape:
        raise ValueError(
            f"vaebench.reparameterize: logvar must have the shape of mu (*batch, D), got {tuple(logvar.shape)} and "
            f"{tuple(mu.shape)}"
        )
    if mu.shape[-1] < 1:
        raise ValueError(
            f"vaebench.reparameterize: mu must be (*batch, D) with D >= 1, got shape {tuple(mu.shape)} "
            "(an empty event dimension has no density)"
        )
    if isinstance(num_samples, bool) or not isinstance(num_samples, int) or num_samples < 1:
        raise ValueError(f"vaebench.reparameterize: num_samples must be an int >= 1, got {num_samples!r}")
    # z (K, *batch, D) and log_q (K, *batch); the reference path also holds eps (K, *batch, D)
    per_sample = mu.numel() * (1 if runs_fused(mu) else 2) + mu.numel() // mu.shape[-1]
    what = "z (K, *batch, D) and log_q (K, *batch)" + ("" if runs_fused(mu) else " plus eps (reference path)")
    check_allocation(
        "reparameterize", "num_samples", num_samples, num_samples * per_sample * mu.element_size(), what, mu.device
    )


def _register() -> None:
    """Fake kernels (shapes for torch.compile) and autograd for the compiled ops."""

    @torch.library.register_fake("vaebench::reparameterize")
    def _(
        mu: Tensor, logvar: Tensor, num_samples: int, seed: Tensor, path_gradient: bool = False
    ) -> tuple[Tensor, Tensor]:
        torch._check(num_samples >= 1, lambda: f"vaebench.reparameterize: num_samples must be >= 1, got {num_samples}")
        return mu.new_empty((num_samples, *mu.shape)), mu.new_empty((num_samples, *mu.shape[:-1]))

    @torch.library.register_fake("vaebench::reparameterize_backward")
    def _(
        grad_z: Tensor | None,
        grad_log_q: Tensor | None,
        mu: Tensor,
        logvar: Tensor,
        seed: Tensor,
        num_samples: int,
        path_gradient: bool,
    ) -> tuple[Tensor, Tensor]:
        return mu.new_empty(mu.shape), mu.new_empty(mu.shape)

    def setup_context(ctx, inputs, output) -> None:
        mu, logvar, num_samples, seed, path_gradient = inputs
        # Only mu, logvar and the seed: eps is recomputed, z and log_q are not needed.
        ctx.save_for_backward(mu, logvar, seed)
        ctx.num_samples = num_samples
        ctx.path_gradient = path_gradient
        # An unused output's gradient stays None instead of a (K, *batch, D) tensor of zeros.
        ctx.set_materialize_grads(False)

    def backward(ctx, grad_z: Tensor | None, grad_log_q: Tensor | None) -> tuple[Tensor | None, ...]:
        mu, logvar, seed = ctx.saved_tensors
        if grad_z is None and grad_log_q is None:
            return None, None, None, None, None
        g_mu, g_lv = torch.ops.vaebench.reparameterize_backward(
            grad_z, grad_log_q, mu, logvar, seed, ctx.num_samples, ctx.path_gradient
        )
        return g_mu, g_lv, None, None, None

    torch.library.register_autograd("vaebench::reparameterize", backward, setup_context=setup_context)

    def setup_context_bwd(ctx, inputs, output) -> None:
        grad_z, grad_log_q, mu, logvar, seed, num_samples, path_gradient = inputs
        ctx.save_for_backward(grad_z, grad_log_q, mu, logvar, seed)
        ctx.num_samples = num_samples
        ctx.path_gradient = path_gradient

    def backward_bwd(ctx, v_mu: Tensor, v_lv: Tensor) -> tuple[Tensor | None, ...]:
        # Second order (gradient penalties, Hessian-vector products). The backward is
        #   g_mu = sum_k gz - [path] 1/sigma sum_k gl eps
        #   g_lv = sigma/2 sum_k gz eps - 1/2 sum_k gl [path: eps^2, else 1]
        # and its vector-Jacobian product is written out below with differentiable torch ops.
        # With `path_gradient`, log q is log N(z; mu0, sigma0) with (mu0, sigma0) held fixed and
        # z = mu + sigma eps live (the reference's semantics): d eps/d mu = 1/sigma and
        # d eps/d logvar = eps/2 inside log q. Exact to any order for the full gradient; for the
        # path gradient the second order matches the reference (higher orders are not tested).
        # eps is z for mu = 0, logvar = 0 (sigma = exp(0) = 1 exactly): the same stream,
        # recomputed on any device.
        grad_z, grad_log_q, mu, logvar, seed = ctx.saved_tensors
        with torch.no_grad():
            zeros = torch.zeros_like(mu)
            eps = torch.ops.vaebench.reparameterize(zeros, zeros, ctx.num_samples, seed, False)[0]
        sigma = torch.exp(0.5 * logvar)
        d_gz = d_gl = d_mu = None
        d_lv = torch.zeros_like(logvar)
        if grad_z is not None:
            d_gz = v_mu + 0.5 * sigma * eps * v_lv
            d_lv = d_lv + 0.25 * sigma * (grad_z * eps).sum(0) * v_lv
        if grad_log_q is not None:
            if ctx.path_gradient:
                w = grad_log_q.unsqueeze(-1)
                d_gl = (-v_mu * eps / sigma - 0.5 * v_lv * eps.square()).sum(-1)
                d_mu = -(w.sum(0) * v_mu / sigma.square() + 0.5 * (w * eps).sum(0) * v_lv / sigma)
                d_lv = d_lv - 0.5 * (w * eps).sum(0) * v_mu / sigma - 0.5 * (w * eps.square()).sum(0) * v_lv
            else:
                d_gl = (-0.5 * v_lv).sum(-1).expand_as(grad_log_q)
        return d_gz, d_gl, d_mu, d_lv, None, None, None

    torch.library.register_autograd("vaebench::reparameterize_backward", backward_bwd, setup_context=setup_context_bwd)


if _FUSED_DEVICES:
    _register()
