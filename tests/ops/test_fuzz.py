"""Property tests: every fused op against its reference over random shapes, strides (views that
are not contiguous), dtypes and extreme values, forward and backward (hypothesis)."""

from __future__ import annotations

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vaebench.ops import (
    gaussian_kl,
    gaussian_kl_reference,
    importance_weights,
    importance_weights_reference,
    log_mean_exp,
    log_mean_exp_reference,
    reparameterize_reference,
)

from .support import assert_close_lowprec, needs_fused

FUZZ = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
# float64: the kernels and the references agree to rounding; float32: to a few ulp of the sums
TOL = {torch.float64: {"rtol": 1e-9, "atol": 1e-9}, torch.float32: {"rtol": 2e-4, "atol": 2e-4}}
pytestmark = needs_fused


@st.composite
def tensors(
    draw: st.DrawFn,
    min_dims: int = 1,
    max_dims: int = 3,
    low: float = -50.0,
    high: float = 50.0,
    specials: tuple[float, ...] = (),
) -> torch.Tensor:
    """A float64 tensor of random shape (sizes 1..9, the odd ones included), possibly a strided
    view (transposed or every other element), with values in [low, high] and some `specials`."""
    shape = draw(st.lists(st.integers(1, 9), min_size=min_dims, max_size=max_dims))
    seed = draw(st.integers(0, 2**31 - 1))
    gen = torch.Generator().manual_seed(seed)
    layout = draw(st.sampled_from(["contiguous", "step", "transposed"]))
    base_shape = list(shape)
    if layout == "step":
        base_shape[-1] *= 2
    t = low + (high - low) * torch.rand(base_shape, dtype=torch.float64, generator=gen)
    if specials:
        mask = torch.rand(base_shape, generator=gen) < draw(st.sampled_from([0.0, 0.2, 1.0]))
        t[mask] = draw(st.sampled_from(specials))
    if layout == "step":
        t = t[..., ::2]
    elif layout == "transposed" and t.dim() >= 2:
        t = t.transpose(0, -1).contiguous().transpose(0, -1)  # same values, column-major strides
    assert list(t.shape) == shape
    return t


dtypes = st.sampled_from([torch.float32, torch.float64])


@FUZZ
@given(tensors(specials=(float("-inf"), -1e30, 1e30)), dtypes, st.data())
def test_log_mean_exp_matches_the_reference_at_any_magnitude(
    log_w: torch.Tensor, dtype: torch.dtype, data: st.DataObject
) -> None:
    dim = data.draw(st.integers(-log_w.dim(), log_w.dim() - 1))
    x = log_w.to(dtype)
    torch.testing.assert_close(log_mean_exp(x, dim), log_mean_exp_reference(x, dim), **TOL[dtype], equal_nan=True)


def _sums_to_one(w: torch.Tensor, dim: int, live: torch.Tensor) -> None:
    """The weights of every slice with a finite entry sum to 1 within float rounding (summed in
    float64, so that the check adds no rounding of its own): each weight carries the rounding of
    one exp, one division by the slice's sum and one product, a few eps in all."""
    total = w.double().sum(dim)[live]
    torch.testing.assert_close(total, torch.ones_like(total), rtol=0, atol=8 * torch.finfo(w.dtype).eps)


@FUZZ
@given(
    tensors(low=-1e3, high=1e3, specials=(float("-inf"), -1e3, 1e3)),
    dtypes,
    st.sampled_from([0.0, -1e7, 1e7, -1e10, 1e10, -1e30, 1e30]),
    st.data(),
)
def test_log_mean_exp_gradient_and_weights_match_the_reference(
    log_w: torch.Tensor, dtype: torch.dtype, offset: float, data: st.DataObject
) -> None:
    """At any magnitude (an offset up to 1e30 on every entry): the fused gradient and weights
    against the reference's and torch.softmax's (exact relative to each other: each subtracts
    the slice's max), and summing to 1."""
    dim = data.draw(st.integers(-log_w.dim(), log_w.dim() - 1))
    log_w = log_w.to(dtype).add_(offset)  # in place: a strided view stays one
    x = log_w.clone().requires_grad_()
    x_ref = log_w.clone().requires_grad_()
    out, ref = log_mean_exp(x, dim), log_mean_exp_reference(x_ref, dim)
    torch.testing.assert_close(out, ref, **TOL[dtype], equal_nan=True)
    grad = torch.randn(out.shape, dtype=dtype)
    (g,) = torch.autograd.grad(out, x, grad)
    (g_ref,) = torch.autograd.grad(ref, x_ref, grad)
    torch.testing.assert_close(g, g_ref, **TOL[dtype], equal_nan=True)
    (w, ess), (w_ref, ess_ref) = importance_weights(log_w, dim), importance_weights_reference(log_w, dim)
    torch.testing.assert_close(w, w_ref, **TOL[dtype], equal_nan=True)
    torch.testing.assert_close(ess, ess_ref, rtol=10 * TOL[dtype]["rtol"], atol=10 * TOL[dtype]["atol"], equal_nan=True)
    # torch.softmax, not torch.logsumexp's autograd: that one forms exp(log_w - lse) from the
    # rounded lse, so at |lse| >~ 1/eps its weights do not sum to 1 (see vaebench.ops.reference).
    live = torch.isfinite(log_w).any(dim)
    softmax = torch.softmax(log_w.double(), dim).to(dtype)
    torch.testing.assert_close(
        w[live.unsqueeze(dim).expand_as(w)], softmax[live.unsqueeze(dim).expand_as(w)], **TOL[dtype]
    )
    _sums_to_one(w, dim, live)
    (g1,) = torch.autograd.grad(log_mean_exp(x, dim), x, torch.ones_like(out))
    _sums_to_one(g1, dim, live)


# Entries c + a few units around one huge value c: x - max is exact (both near c), so the true
# weights are torch.softmax of the float64 copy; the old kernels formed them against the rounded
# lse and got them wrong by a factor exp(lse - rounded lse), up to exp(|c| eps) (2 x -1e30: 1, 1).
HUGE = {
    torch.float32: [-3e38, -1e30, 1e30, -1e10, 1e10, -1e7, 1e7],
    torch.float64: [-1e300, 1e300, -1e30, 1e30, -1e10, 1e10, -1e7],
}
HUGE_CASES = [(dtype, c) for dtype, cs in HUGE.items() for c in cs]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_weights_of_huge_magnitude_log_weights_sum_to_one(dtype: torch.dtype) -> None:
    x = torch.full((2,), -1e30, dtype=dtype, requires_grad=True)
    (g,) = torch.autograd.grad(log_mean_exp(x, 0), x)
    (g_ref,) = torch.autograd.grad(log_mean_exp_reference(x, 0), x)
    w, _ = importance_weights(x, 0)
    w_ref, _ = importance_weights_reference(x.detach(), 0)
    # The exact values: two equal log-weights have weights 1/2 each, at any magnitude.
    half = torch.full_like(w, 0.5)
    for got in (w, g, w_ref, g_ref, torch.softmax(x.detach(), 0)):
        assert torch.equal(got, half), got


@pytest.mark.parametrize("dtype,c", HUGE_CASES)
@pytest.mark.parametrize("shape,dim", [((7, 333), 0), ((7, 333), 1), ((1001, 3), 0), ((3, 1001), -1), ((5, 37, 3), 1)])
@pytest.mark.parametrize("layout", ["contiguous", "transposed", "step"])
def test_weights_at_huge_magnitudes_are_exact(
    dtype: torch.dtype, c: float, shape: tuple[int, ...], dim: int, layout: str
) -> None:
    gen = torch.Generator().manual_seed(abs(hash((c, shape, dim))) % 2**31)
    unit = max(1.0, abs(c) * torch.finfo(dtype).eps)  # the spacing of the values near c
    noise = torch.randint(-3, 1, shape, generator=gen).double() * unit + torch.rand(
        shape, generator=gen, dtype=torch.float64
    )
    log_w = (c + noise).to(dtype)
    if layout == "transposed":  # the same values with column-major strides
        log_w = log_w.transpose(0, -1).contiguous().transpose(0, -1)
    elif layout == "step":  # the same values, every other element of a wider tensor
        wide = torch.zeros((*shape[:-1], 2 * shape[-1]), dtype=dtype)
        wide[..., ::2] = log_w
        log_w = wide[..., ::2]
    assert log_w.is_contiguous() == (layout == "contiguous")
    truth = torch.softmax(log_w.double(), dim)
    x = log_w.detach().requires_grad_()  # the view itself, strides and all
    grad = 0.5 + torch.rand(log_mean_exp(log_w, dim).shape, generator=gen, dtype=torch.float64)
    (g,) = torch.autograd.grad(log_mean_exp(x, dim), x, grad.to(dtype))
    (g_ref,) = torch.autograd.grad(log_mean_exp_reference(x, dim), x, grad.to(dtype))
    w, ess = importance_weights(log_w, dim)
    w_ref, ess_ref = importance_weights_reference(log_w, dim)
    eps = torch.finfo(dtype).eps
    tol = {"rtol": 8 * eps, "atol": 8 * eps}
    for got in (w, w_ref):
        torch.testing.assert_close(got.double(), truth, **tol)
    for got in (g, g_ref):
        torch.testing.assert_close(got.double(), truth * grad.unsqueeze(dim), **tol)
    live = torch.ones(ess.shape, dtype=torch.bool)
    _sums_to_one(w, dim, live)
    ess_truth = 1 / truth.square().sum(dim)
    torch.testing.assert_close(ess.double(), ess_truth, rtol=32 * eps, atol=0)
    if dtype == torch.float32:  # (in float64 the reference is the truth)
        assert_close_lowprec(ess, ess_truth, ess_ref)  # its float32 sum of K squares errs more than 32 eps
    torch.testing.assert_close(log_mean_exp(log_w, dim), log_mean_exp_reference(log_w, dim), rtol=2 * eps, atol=0)


@FUZZ
@given(
    tensors(min_dims=1, max_dims=3, low=-20, high=20), dtypes, st.sampled_from(["none", "vector", "full"]), st.data()
)
def test_gaussian_kl_matches_the_reference(
    mu: torch.Tensor, dtype: torch.dtype, prior: str, data: st.DataObject
) -> None:
    logvar = data.draw(tensors(min_dims=mu.dim(), max_dims=mu.dim(), low=-30, high=30))
    logvar = logvar.reshape(-1)[: mu.numel()].reshape(mu.shape) if logvar.numel() >= mu.numel() else mu.flip(-1) / 2
    D = mu.shape[-1]
    inputs = [mu.to(dtype), logvar.to(dtype)]
    if prior == "vector":
        inputs += [torch.linspace(-2, 2, D, dtype=dtype), torch.linspace(-3, 1, D, dtype=dtype)]
    elif prior == "full":
        inputs += [mu.flip(-1).to(dtype) / 3, logvar.flip(-1).to(dtype) / 2]
    else:
        inputs += [None, None]
    a = [t.clone().requires_grad_() if t is not None else None for t in inputs]
    b = [t.clone().requires_grad_() if t is not None else None for t in inputs]
    out, ref = gaussian_kl(*a), gaussian_kl_reference(*b)
    torch.testing.assert_close(out, ref, **TOL[dtype])
    grad = torch.rand(out.shape, dtype=dtype) + 0.5
    ga = torch.autograd.grad(out, [t for t in a if t is not None], grad)
    gb = torch.autograd.grad(ref, [t for t in b if t is not None], grad)
    for x, y in zip(ga, gb, strict=True):
        torch.testing.assert_close(x, y, **TOL[dtype])


@FUZZ
@given(
    tensors(min_dims=1, max_dims=3, low=-5, high=5),
    dtypes,
    st.integers(1, 7),
    st.booleans(),
    st.sampled_from([0.0, -30.0, 10.0]),
    st.integers(0, 2**62),
)
def test_reparameterize_matches_the_reference_with_the_kernels_own_noise(
    mu: torch.Tensor, dtype: torch.dtype, k: int, path: bool, logvar_shift: float, seed: int
) -> None:
    mu = mu.to(dtype)
    logvar = (mu.flip(-1) / 2 + logvar_shift).to(dtype)
    s = torch.tensor([seed, 0], dtype=torch.int64)
    zeros = torch.zeros_like(mu)
    eps = torch.ops.vaebench.reparameterize(zeros, zeros, k, s, False)[0]  # z at mu=0, sigma=1 is eps
    a = [mu.clone().requires_grad_(), logvar.clone().requires_grad_()]
    b = [mu.clone().requires_grad_(), logvar.clone().requires_grad_()]
    z, log_q = torch.ops.vaebench.reparameterize(a[0], a[1], k, s, path)
    z_ref, log_q_ref = reparameterize_reference(b[0], b[1], eps, path)
    torch.testing.assert_close(z, z_ref, **TOL[dtype])
    torch.testing.assert_close(log_q, log_q_ref, **TOL[dtype])
    gz, gl = torch.randn(z.shape, dtype=dtype), torch.randn(log_q.shape, dtype=dtype)
    got = torch.autograd.grad((z, log_q), a, (gz, gl))
    want = torch.autograd.grad((z_ref, log_q_ref), b, (gz, gl))
    for x, y in zip(got, want, strict=True):
        scale = max(1.0, float(y.abs().max()))
        torch.testing.assert_close(x, y, rtol=TOL[dtype]["rtol"] * 10, atol=TOL[dtype]["atol"] * 10 * scale)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_cpu_half_is_the_reference_exactly(dtype: torch.dtype) -> None:
    log_w = torch.randn(7, 5).to(dtype)
    assert torch.equal(log_mean_exp(log_w, 1), log_mean_exp_reference(log_w, 1))
