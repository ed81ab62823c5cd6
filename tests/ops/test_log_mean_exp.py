"""vaebench.ops.log_mean_exp and importance_weights against their references."""

from __future__ import annotations

import math

import pytest
import torch

from vaebench.ops import (
    importance_weights,
    importance_weights_reference,
    log_mean_exp,
    log_mean_exp_reference,
)
from vaebench.ops.support import FUSED_DTYPES

from .support import assert_close_lowprec, needs_cuda, needs_fused


@pytest.fixture(autouse=True)
def _seed() -> None:
    # Every draw reproducible: the low-precision rule compares maxima of rounding errors, whose
    # tails vary from draw to draw (on average the fused error equals the reference's).
    torch.manual_seed(0)


# (shape, dim): odd sizes, K = 1, reduced dim first, middle and last.
CASES = [
    ((1, 1), 0),
    ((7, 1), 0),
    ((1, 7), 0),
    ((333, 7), 0),
    ((7, 333), 0),
    ((7, 333), 1),
    ((333, 1), -1),
    ((5, 37, 3), 1),
    ((5, 3, 37), -1),
    ((2, 3, 4, 5), -3),
    # The CPU kernel's three walks: short rows (K < 128, transposed V rows at a time), long rows
    # with a K % V tail, and columns; odd counts so that no walk divides evenly.
    ((333, 7), 1),
    ((3, 1001), -1),
    ((1001, 37), 0),
]


def lme_and_grad(fn, log_w: torch.Tensor, dim: int, grad_out: torch.Tensor):
    x = log_w.detach().clone().requires_grad_()
    y = fn(x, dim)
    (g,) = torch.autograd.grad(y, x, grad_out.to(y.dtype))
    return y.detach(), g


@needs_fused  # without the extension the op is its reference: comparing them would test nothing
@pytest.mark.parametrize("shape,dim", CASES)
def test_matches_reference_float64(shape, dim):
    gen = torch.Generator().manual_seed(0)
    log_w = 10 * torch.randn(shape, dtype=torch.float64, generator=gen)
    grad_out = torch.randn(log_mean_exp_reference(log_w, dim).shape, dtype=torch.float64, generator=gen)
    y, g = lme_and_grad(log_mean_exp, log_w, dim, grad_out)
    y_ref, g_ref = lme_and_grad(log_mean_exp_reference, log_w, dim, grad_out)
    torch.testing.assert_close(y, y_ref, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(g, g_ref, rtol=1e-12, atol=1e-14)


@needs_fused  # without the extension the op is its reference: comparing them would test nothing
@pytest.mark.parametrize("shape,dim", CASES)
def test_float32_within_twice_reference_error(shape, dim):
    gen = torch.Generator().manual_seed(1)
    log_w = 10 * torch.randn(shape, dtype=torch.float64, generator=gen)
    grad_out = torch.randn(log_mean_exp_reference(log_w, dim).shape, dtype=torch.float64, generator=gen)
    y64, g64 = lme_and_grad(log_mean_exp_reference, log_w, dim, grad_out)
    y_ref, g_ref = lme_and_grad(log_mean_exp_reference, log_w.float(), dim, grad_out)
    y, g = lme_and_grad(log_mean_exp, log_w.float(), dim, grad_out)
    assert_close_lowprec(y, y64, y_ref)
    assert_close_lowprec(g, g64, g_ref)


@pytest.mark.parametrize("dim", [0, 1])
def test_gradcheck(dim):
    log_w = torch.randn(9, 5, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x: log_mean_exp(x, dim), (log_w,))


@pytest.mark.parametrize("dim", [0, -1])
def test_gradgradcheck(dim):
    log_w = torch.randn(6, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradgradcheck(lambda x: log_mean_exp(x, dim), (log_w,))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("K,spread", [(100_000, 1e4), (5000, 1e4), (3, 1e4), (100_000, 1.0)])
def test_extreme_spread_and_large_k(dtype, K, spread):
    gen = torch.Generator().manual_seed(2)
    log_w = spread * torch.randn(K, 3, dtype=torch.float64, generator=gen)
    log_w[:, 1] = torch.linspace(-spread, spread, K, dtype=torch.float64)  # max grows every step
    for dim, x in ((0, log_w), (-1, log_w.T.contiguous())):
        y64 = log_mean_exp_reference(x, dim)
        y = log_mean_exp(x.to(dtype), dim)
        assert torch.isfinite(y).all()
        if dtype == torch.float64:
            torch.testing.assert_close(y, y64, rtol=1e-13, atol=1e-11)
        else:
            assert_close_lowprec(y, y64, log_mean_exp_reference(x.to(dtype), dim))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_neg_inf_entries_and_all_neg_inf_slices(dtype):
    log_w = torch.randn(6, 4, dtype=dtype)
    log_w[:, 0] = -math.inf  # a dead slice
    log_w[::2, 1] = -math.inf  # some dead entries
    log_w[:5, 2] = -math.inf  # one live entry
    x = log_w.clone().requires_grad_()
    y = log_mean_exp(x, 0)
    (g,) = torch.autograd.grad(y, x, torch.full_like(y, 2.0))
    assert y[0] == -math.inf and torch.isfinite(y[1:]).all()
    assert not torch.isnan(g).any() and (g[:, 0] == 0).all()
    torch.testing.assert_close(y, log_mean_exp_reference(log_w, 0))
    torch.testing.assert_close(g[:, 2], torch.tensor([0, 0, 0, 0, 0, 2], dtype=dtype))
    w, ess = importance_weights(log_w, 0)
    assert (w[:, 0] == 0).all() and ess[0] == 0 and ess[2] == 1
    w_ref, ess_ref = importance_weights_reference(log_w, 0)
    torch.testing.assert_close(w, w_ref)
    torch.testing.assert_close(ess, ess_ref)


def test_nan_propagates():
    log_w = torch.randn(50, 3, dtype=torch.float64)
    log_w[17, 1] = math.nan
    y = log_mean_exp(log_w, 0)
    assert torch.isnan(y[1]) and torch.isfinite(y[[0, 2]]).all()


@needs_fused  # without the extension the op is its reference: comparing them would test nothing
@pytest.mark.parametrize("K", [1, 2, 15, 16, 17, 127, 128, 129, 300])
@pytest.mark.parametrize("inner", [1, 2, 17])
def test_every_walk_boundary(K, inner):
    """log_w: (outer, K, inner) over dim 1 around the CPU walks' boundaries: K across the vector
    width (16 floats, 8 doubles) and the short/long row switch (128), outer across the V rows a
    short-row group transposes, inner = 1 (rows) or > 1 (columns, partial vectors)."""
    for outer in (1, 3, 17, 33):
        x = 5 * torch.randn(outer, K, inner, dtype=torch.float64)
        grad_out = torch.randn(outer, inner, dtype=torch.float64)
        y, g = lme_and_grad(log_mean_exp, x, 1, grad_out)
        y_ref, g_ref = lme_and_grad(log_mean_exp_reference, x, 1, grad_out)
        torch.testing.assert_close(y, y_ref, rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(g, g_ref, rtol=1e-12, atol=1e-14)
        w, ess = importance_weights(x, 1)
        w_ref, ess_ref = importance_weights_reference(x, 1)
        torch.testing.assert_close(w, w_ref, rtol=1e-12, atol=1e-14)
        torch.testing.assert_close(ess, ess_ref, rtol=1e-12, atol=1e-12)
        x32 = x.float()
        assert_close_lowprec(log_mean_exp(x32, 1), y_ref, log_mean_exp_reference(x32, 1))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("K", [7, 129, 1001])
@pytest.mark.parametrize("dim", [0, 1])
def test_nan_and_inf_in_every_walk(dtype, K, dim):
    """NaN anywhere gives NaN; else +inf anywhere gives +inf; else all -inf gives -inf. The
    columns hold the special values at the start, in the middle and at the end of the slice (the
    row walks' tail), alone and mixed; K = 7, 129 and 1001 reach all three CPU walks."""
    specials = [
        {},
        {0: math.nan},
        {K // 2: math.nan},
        {K - 1: math.nan},
        {0: math.inf},
        {K - 1: math.inf},
        {K // 2: math.inf, 0: -math.inf},
        {0: math.inf, K - 1: math.nan},
        {K - 1: -math.inf},
    ]
    log_w = torch.randn(K, len(specials) + 1, dtype=torch.float64)
    for j, entries in enumerate(specials):
        for k, v in entries.items():
            log_w[k, j] = v
    log_w[:, -1] = -math.inf  # an all -inf slice
    x = (log_w if dim == 0 else log_w.T.contiguous()).to(dtype)
    truth = log_mean_exp_reference(x.double(), dim)
    y = log_mean_exp(x, dim)
    assert torch.equal(torch.isnan(y), torch.isnan(truth))
    finite = torch.isfinite(truth)
    assert torch.equal(y[~finite & ~torch.isnan(truth)], truth[~finite & ~torch.isnan(truth)].to(dtype))
    torch.testing.assert_close(y[finite], truth[finite].to(dtype))
    # The gradient, as autograd of logsumexp gives it: NaN over a slice with a NaN, NaN at +inf
    # entries and 0 beside them, zero over the dead slice, the weights elsewhere.
    _, g = lme_and_grad(log_mean_exp, x, dim, torch.ones_like(y))
    _, g_ref = lme_and_grad(log_mean_exp_reference, x.double(), dim, torch.ones_like(truth))
    torch.testing.assert_close(g, g_ref.to(dtype), equal_nan=True)
    assert (g.select(1 - dim, -1) == 0).all()
    w, ess = importance_weights(x, dim)
    w_ref, ess_ref = importance_weights_reference(x, dim)
    torch.testing.assert_close(w, w_ref, equal_nan=True)
    torch.testing.assert_close(ess, ess_ref, equal_nan=True)


@pytest.mark.parametrize("dim", [0, 1])
def test_large_weights_match_reference(dim):
    """log_w of 17.2 MB: the CPU backward writes w with streaming stores from 16 MiB on; 1023
    columns leave most rows unaligned to the vector, so both store paths run."""
    log_w = 10 * torch.randn(4200, 1023)
    x = log_w if dim == 0 else log_w.T.contiguous()
    grad_out = torch.rand(x.shape[1 - dim])
    y, g = lme_and_grad(log_mean_exp, x, dim, grad_out)
    y64, g64 = lme_and_grad(log_mean_exp_reference, x.double(), dim, grad_out.double())
    y32, g32 = lme_and_grad(log_mean_exp_reference, x, dim, grad_out)
    assert_close_lowprec(y, y64, y32)
    assert_close_lowprec(g, g64, g32)
    w, ess = importance_weights(x, dim)
    w64, ess64 = importance_weights_reference(x.double(), dim)
    w32, ess32 = importance_weights_reference(x, dim)
    assert_close_lowprec(w, w64, w32)
    assert_close_lowprec(ess, ess64, ess32)


@needs_fused  # without the extension the op is its reference: comparing them would test nothing
@pytest.mark.parametrize("dim", [0, 1, -1])
def test_non_contiguous_input(dim):
    base = torch.randn(40, 66, dtype=torch.float64)
    for x in (base.T, base[:, ::3], base.T[1::2]):
        assert not x.is_contiguous()
        y, g = lme_and_grad(
            log_mean_exp,
            x,
            dim,
            torch.ones(log_mean_exp_reference(x, dim).shape, dtype=torch.float64),
        )
        y_ref, g_ref = lme_and_grad(log_mean_exp_reference, x, dim, torch.ones_like(y))
        torch.testing.assert_close(y, y_ref, rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(g, g_ref, rtol=1e-12, atol=1e-14)
        w, ess = importance_weights(x, dim)
        w_ref, ess_ref = importance_weights_reference(x, dim)
        torch.testing.assert_close(w, w_ref, rtol=1e-12, atol=1e-14)
        torch.testing.assert_close(ess, ess_ref, rtol=1e-12, atol=1e-12)


@needs_fused  # without the extension the op is its reference: comparing them would test nothing
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("shape,dim", [((64, 333), 0), ((7, 5), 1), ((3, 333, 2), 1), ((1, 4), 0)])
def test_importance_weights_match_reference(dtype, shape, dim):
    log_w = 5 * torch.randn(shape, dtype=torch.float64)
    w64, ess64 = importance_weights_reference(log_w, dim)
    w_ref, ess_ref = importance_weights_reference(log_w.to(dtype), dim)
    w, ess = importance_weights(log_w.to(dtype), dim)
    assert w.shape == log_w.shape and ess.shape == log_mean_exp_reference(log_w, dim).shape
    if dtype == torch.float64:
        torch.testing.assert_close(w, w64, rtol=1e-12, atol=1e-15)
        torch.testing.assert_close(ess, ess64, rtol=1e-12, atol=1e-12)
    else:
        assert_close_lowprec(w, w64, w_ref)
        assert_close_lowprec(ess, ess64, ess_ref)
    torch.testing.assert_close(w.sum(dim), torch.ones_like(ess))
    assert (ess >= 1 - 1e-5).all() and (ess <= shape[dim] + 1e-3).all()


def test_importance_weights_are_detached():
    log_w = torch.randn(8, 3, requires_grad=True)
    w, ess = importance_weights(log_w, 0)
    assert not w.requires_grad and not ess.requires_grad


def test_ess_of_equal_weights_is_k():
    w, ess = importance_weights(torch.zeros(37, 2, dtype=torch.float64), 0)
    torch.testing.assert_close(ess, torch.full((2,), 37.0, dtype=torch.float64))
    torch.testing.assert_close(w, torch.full((37, 2), 1 / 37, dtype=torch.float64))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_reference_ess_of_16bit_weights_is_float32(dtype):
    # K above float16's largest value, and weights whose squares underflow in float16.
    w, ess = importance_weights_reference(torch.zeros(70_000, 2, dtype=dtype), 0)
    assert w.dtype == dtype and ess.dtype == torch.float32
    torch.testing.assert_close(ess, torch.full((2,), 70_000.0), rtol=1e-2, atol=0)


def test_torch_compile_fullgraph():
    def iwae_bound(log_w: torch.Tensor) -> torch.Tensor:
        _, ess = importance_weights(log_w, 0)
        return log_mean_exp(log_w, 0).sum() + 0 * ess.sum()

    log_w = torch.randn(16, 5, dtype=torch.float64, requires_grad=True)
    compiled = torch.compile(iwae_bound, fullgraph=True, backend="aot_eager")
    y = compiled(log_w)
    (g,) = torch.autograd.grad(y, log_w)
    y_ref = log_mean_exp_reference(log_w, 0).sum()
    (g_ref,) = torch.autograd.grad(y_ref, log_w)
    torch.testing.assert_close(y, y_ref)
    torch.testing.assert_close(g, g_ref)


@needs_fused
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_opcheck(dtype):
    log_w = torch.randn(7, 5, dtype=dtype, requires_grad=True)
    torch.library.opcheck(torch.ops.vaebench.log_mean_exp.default, (log_w, 1))
    torch.library.opcheck(torch.ops.vaebench.log_mean_exp.default, (log_w.detach()[:, 1:], 0))
    torch.library.opcheck(torch.ops.vaebench.importance_weights.default, (log_w.detach(), 0))
    out = torch.ops.vaebench.log_mean_exp(log_w.detach(), 0)
    torch.library.opcheck(
        torch.ops.vaebench.log_mean_exp_backward.default,
        (torch.randn_like(out), log_w.detach(), out, 0),
    )


@pytest.mark.parametrize(
    "log_w,dim,error,match",
    [
        (
            torch.zeros(0, 3),
            0,
            ValueError,
            r"log_w must hold K >= 1 log-weights along dim 0, got shape \[?\(?0, 3",
        ),
        (
            torch.zeros(4, 3),
            2,
            IndexError,
            r"dim must be in \[-2, 1\] for log_w of shape .*got dim=2",
        ),
        (
            torch.zeros(4, 3, dtype=torch.int64),
            0,
            TypeError,
            "log_w must be a floating-point tensor",
        ),
        (torch.tensor(1.0), 0, ValueError, "log_w must be .* with at least 1 dim"),
    ],
)
def test_errors_name_the_argument(log_w, dim, error, match):
    # Checked in Python before dispatch, so the fused and reference paths raise the same type.
    for fn in (log_mean_exp, importance_weights):
        with pytest.raises(error, match=match):  # the same type on the fused and the reference path
            fn(log_w, dim)


def test_cpu_half_runs_the_reference():
    """vaebench.ops.support.FUSED_DTYPES: CPU half has no kernel, so the wrappers take the reference."""
    log_w = torch.randn(4, 3).half()
    assert torch.equal(log_mean_exp(log_w, 0), log_mean_exp_reference(log_w, 0))
    w, ess = importance_weights(log_w, 0)
    w_ref, ess_ref = importance_weights_reference(log_w, 0)
    assert torch.equal(w, w_ref) and torch.equal(ess, ess_ref)


@needs_fused
def test_the_cpu_kernel_refuses_half_as_fused_dtypes_says():
    assert torch.float16 not in FUSED_DTYPES["cpu"]
    with pytest.raises(RuntimeError, match="on CPU log_w must be float32 or float64, got Half"):
        torch.ops.vaebench.log_mean_exp(torch.zeros(4, 3, dtype=torch.half), 0)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64])
# (70000, 3, 2) over dim 1: more slices before `dim` than one grid's 65535 rows (launched in parts)
@pytest.mark.parametrize(
    "shape,dim", [((5000, 333), 0), ((7, 100_000), 1), ((3, 64, 5), 1), ((1, 1), 0), ((70_000, 3, 2), 1)]
)
@pytest.mark.cuda
@needs_cuda
def test_cuda_matches_reference(dtype, shape, dim):
    gen = torch.Generator().manual_seed(4)
    log_w = 10 * torch.randn(shape, dtype=torch.float64, generator=gen)
    log_w[..., 0] = -math.inf
    grad_out = torch.randn(log_mean_exp_reference(log_w, dim).shape, dtype=torch.float64, generator=gen)
    y64, g64 = lme_and_grad(log_mean_exp_reference, log_w, dim, grad_out)
    x = log_w.to("cuda", dtype)
    y_ref, g_ref = lme_and_grad(log_mean_exp_reference, x, dim, grad_out.cuda())
    y, g = lme_and_grad(log_mean_exp, x, dim, grad_out.cuda())
    assert_close_lowprec(y.cpu(), y64, y_ref.cpu())
    assert_close_lowprec(g.cpu(), g64, g_ref.cpu())
    w64, ess64 = importance_weights_reference(log_w, dim)
    w_ref, ess_ref = importance_weights_reference(x, dim)
    w, ess = importance_weights(x, dim)
    assert_close_lowprec(w.cpu(), w64, w_ref.cpu())
    assert_close_lowprec(ess.cpu(), ess64, ess_ref.cpu())
