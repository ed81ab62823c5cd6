"""Analytic KL between diagonal Gaussians: `vaebench::gaussian_kl`.

The fused kernels (csrc/gaussian_kl.cpp, csrc/cuda/gaussian_kl.cu) compute the KL and its four
gradients in one pass each; a prior shared by the batch has its gradient reduced in the
kernel. Without the compiled library the op falls back to `gaussian_kl_reference`.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .library import fused_device_types
from .reference import gaussian_kl_reference
from .support import check_tensor, runs_fused

__all__ = ["gaussian_kl"]

# Read once: a constant for torch.compile (see fused_device_types).
_FUSED_DEVICES = fused_device_types()


def gaussian_kl(
    mu: Tensor,
    logvar: Tensor,
    prior_mu: Tensor | None = None,
    prior_logvar: Tensor | None = None,
) -> Tensor:
    """KL(N(mu, exp(logvar)) || N(prior_mu, exp(prior_logvar))) summed over the latent dim D.

        KL = 1/2 sum_D [ pl - l + exp(l - pl) + (mu - pm)^2 exp(-pl) - 1 ]

    with l = logvar, pm = prior_mu, pl = prior_logvar; None stands for the standard normal's
    0. exp(l - pl) keeps it finite for |logvar| up to ~80 in float32. Differentiable in all four
    inputs; a broadcast prior's gradient is summed to the prior's shape.

    Args:
        mu, logvar: (*batch, D), D >= 1.
        prior_mu, prior_logvar: (D,), (1, D), ... any shape ending in D that broadcasts to
            (*batch, D), or None.

    Returns:
        (*batch,) the KL per batch element.

    References:
        Auto-Encoding Variational Bayes, Kingma, Welling, 2013, arXiv 1312.6114 (appendix B).
    """
    # Checked here for both paths, so a mistake raises the same error type (TypeError or
    # ValueError naming the argument) whether or not the compiled kernels are loaded.
    _check_inputs("gaussian_kl", mu, logvar, prior_mu, prior_logvar)
    if not runs_fused(mu, _FUSED_DEVICES):  # CPU half: the reference (vaebench.ops.support)
        return gaussian_kl_reference(mu, logvar, prior_mu, prior_logvar)
    return torch.ops.vaebench.gaussian_kl(mu, logvar, prior_mu, prior_logvar)


def _check_inputs(
    op: str,
    mu: Tensor,
    logvar: Tensor,
    prior_mu: Tensor | None,
    prior_logvar: Tensor | None,
) -> None:
    """The fused kernels' input checks (csrc/gaussian_kl.h), in Python for both paths."""
    for name, t in (
        ("mu", mu),
        ("logvar", logvar),
        ("prior_mu", prior_mu),
        ("prior_logvar", prior_logvar),
    ):
        if t is None:
            continue
        check_tensor(op, name, t)
        if t is not mu and t.dtype != mu.dtype:
            raise TypeError(f"vaebench.{op}: {name} must have the dtype of mu, got {t.dtype} and {mu.dtype}")
        if t.device != mu.device:
            raise ValueError(f"vaebench.{op}: {name} must be on the device of mu, got {t.device} and {mu.device}")
    if mu.dim() < 1:
        raise ValueError(f"vaebench.{op}: mu must be (*batch, D) with at least 1 dim(s), got shape {tuple(mu.shape)}")
    if logvar.shape != mu.shape:
        raise ValueError(
            f"vaebench.{op}: logvar must have the shape of mu, got {tuple(logvar.shape)} and {tuple(mu.shape)}"
        )
    D = mu.shape[-1]
    if D < 1:
        raise ValueError(f"vaebench.{op}: mu must hold D >= 1 latent dims, got shape {tuple(mu.shape)}")
    for name, p in (("prior_mu", prior_mu), ("prior_logvar", prior_logvar)):
        if p is None:
            continue
        if p.dim() < 1 or p.shape[-1] != D:
            raise ValueError(
                f"vaebench.{op}: {name} must end in the latent dim D={D} of mu (shape (..., {D})), got shape {tuple(p.shape)}"
            )
        # strict=False: broadcasting compares the trailing dims only.
        if p.dim() > mu.dim() or any(
            a not in (1, b) for a, b in zip(reversed(p.shape), reversed(mu.shape), strict=False)
        ):
            raise ValueError(
                f"vaebench.{op}: {name} must broadcast to mu's shape {tuple(mu.shape)} (e.g. ({D},) or mu's own shape), "
                f"got shape {tuple(p.shape)}"
            )


def _register() -> None:
    """Fake kernels (shapes for torch.compile) and autograd for the compiled ops."""

    @torch.library.register_fake("vaebench::gaussian_kl")
    def _(
        mu: Tensor,
        logvar: Tensor,
        prior_mu: Tensor | None = None,
        prior_logvar: Tensor | None = None,
    ) -> Tensor:
        _check_inputs("gaussian_kl", mu, logvar, prior_mu, prior_logvar)
        return mu.new_empty(mu.shape[:-1])

    @torch.library.register_fake("vaebench::gaussian_kl_backward")
    def _(
        grad: Tensor,
        mu: Tensor,
        logvar: Tensor,
        prior_mu: Tensor | None,
        prior_logvar: Tensor | None,
        prior_grad: bool,
    ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        def prior_shape(p: Tensor | None) -> tuple[int, ...]:
            return tuple(p.shape) if p is not None and prior_grad else (0,)

        return (
            mu.new_empty(mu.shape),
            mu.new_empty(mu.shape),
            mu.new_empty(prior_shape(prior_mu)),
            mu.new_empty(prior_shape(prior_logvar)),
        )

    def setup_context(ctx, inputs, output) -> None:
        mu, logvar, prior_mu, prior_logvar = inputs
        ctx.save_for_backward(mu, logvar, prior_mu, prior_logvar)

    def backward(ctx, grad: Tensor) -> tuple[Tensor | None, ...]:
        mu, logvar, prior_mu, prior_logvar = ctx.saved_tensors
        # needs_input_grad can be shorter than the schema when trailing priors were defaulted.
        need = [i < len(ctx.needs_input_grad) and ctx.needs_input_grad[i] for i in range(4)]
        g_mu, g_lv, g_pm, g_pl = torch.ops.vaebench.gaussian_kl_backward(
            grad, mu, logvar, prior_mu, prior_logvar, need[2] or need[3]
        )
        return tuple(g if n else None for g, n in zip((g_mu, g_lv, g_pm, g_pl), need, strict=True))

    torch.library.register_autograd("vaebench::gaussian_kl", backward, setup_context=setup_context)

    # Second derivatives: autograd of the reference's first-order gradient (create_graph), so
    # that the KL's gradient is spelt once in C++ (csrc/gaussian_kl.h) and never in Python (rare
    # in VAE training, so clarity over speed here).
    def setup_context_bwd(ctx, inputs, output) -> None:
        grad, mu, logvar, prior_mu, prior_logvar, _ = inputs
        ctx.save_for_backward(grad, mu, logvar, prior_mu, prior_logvar)

    def backward_bwd(ctx, v_mu: Tensor, v_lv: Tensor, v_pm: Tensor, v_pl: Tensor) -> tuple[Tensor | None, ...]:
        saved = ctx.saved_tensors
        with torch.enable_grad():
            leaves = [None if t is None else t if t.requires_grad else t.detach().requires_grad_() for t in saved]
            g, mu, lv, pm, pl = leaves
            assert g is not None and mu is not None and lv is not None  # always saved; only the priors can be None
            # The backward op's outputs as functions of its inputs: autograd of the reference
            # KL, whose prior gradients come back in the priors' own (broadcast) shapes.
            params = [t for t in (mu, lv, pm, pl) if t is not None]
            firsts = iter(torch.autograd.grad(gaussian_kl_reference(mu, lv, pm, pl), params, g, create_graph=True))
            g_mu, g_lv = next(firsts), next(firsts)
            outs, vs = [g_mu, g_lv], [v_mu, v_lv]
            for p, v in ((pm, v_pm), (pl, v_pl)):
                if p is None:
                    continue
                g_p = next(firsts)
                if v.numel() > 0:  # an empty v: the backward returned no prior gradient (prior_grad false)
                    outs.append(g_p)
                    vs.append(v)
            wrt = [t for t in leaves if t is not None]
            grads = iter(torch.autograd.grad(outs, wrt, vs, create_graph=True, allow_unused=True))
        return (*(None if t is None else next(grads) for t in leaves), None)

    torch.library.register_autograd("vaebench::gaussian_kl_backward", backward_bwd, setup_context=setup_context_bwd)


if _FUSED_DEVICES:
    _register()
