"""vaebench.ops.bernoulli_head against bernoulli_head_reference."""

from __future__ import annotations

import pytest
import torch

from vaebench.ops import bernoulli_head, bernoulli_head_reference

from .support import assert_close_lowprec, needs_cuda, needs_fused


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


# (h shape, D, x shape or None for (h's leading dims, D), tile_rows)
CASES = [
    ((1, 1), 1, None, 0),
    ((7, 5), 333, None, 0),  # D not a multiple of any vector width
    ((7, 5), 333, None, 3),  # several tiles, the last one short
    ((3, 5, 6), 33, (5, 33), 0),  # x (B, D) against h (K, B, H): read K times, never expanded
    ((3, 5, 6), 33, (5, 33), 4),  # tiles that cut through the x period
    ((3, 5, 6), 17, (1, 5, 17), 1),
    ((3, 5, 6), 17, (3, 1, 17), 2),  # a broadcast in the middle: expanded
    ((2, 3, 4, 7), 16, (4, 16), 5),
    ((333, 1), 7, (7,), 0),
    ((1, 200), 784, None, 0),
]


def make(h_shape, D, x_shape, dtype=torch.float64, seed=0, scale=1.0):
    gen = torch.Generator().manual_seed(seed)
    H = h_shape[-1]
    h = scale * torch.randn(h_shape, dtype=dtype, generator=gen)
    w = torch.randn(D, H, dtype=dtype, generator=gen) / max(H, 1) ** 0.5
    b = torch.randn(D, dtype=dtype, generator=gen)
    x_shape = x_shape if x_shape is not None else (*h_shape[:-1], D)
    x = torch.bernoulli(torch.full(x_shape, 0.3, dtype=dtype), generator=gen)
    return h, w, b, x


def value_and_grads(fn, inputs, grad_out, **kwargs):
    h, w, b = (t.detach().clone().requires_grad_() for t in inputs[:3])
    out = fn(h, w, b, inputs[3], **kwargs)
    grads = torch.autograd.grad(out, (h, w, b), grad_out.to(out.dtype))
    return out.detach(), grads


@pytest.mark.parametrize("h_shape,D,x_shape,tile", CASES)
def test_matches_reference_float64(h_shape, D, x_shape, tile):
    inputs = make(h_shape, D, x_shape)
    grad_out = torch.randn(h_shape[:-1], dtype=torch.float64, generator=torch.Generator().manual_seed(10))
    out, grads = value_and_grads(bernoulli_head, inputs, grad_out, tile_rows=tile)
    out_ref, grads_ref = value_and_grads(bernoulli_head_reference, inputs, grad_out)
    assert out.shape == h_shape[:-1]
    torch.testing.assert_close(out, out_ref, rtol=1e-12, atol=1e-12)
    for g, g_ref, t in zip(grads, grads_ref, inputs[:3], strict=True):  # no gradient for x
        assert g.shape == t.shape
        torch.testing.assert_close(g, g_ref, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("h_shape,D,x_shape,tile", CASES)
def test_float32_within_twice_reference_error(h_shape, D, x_shape, tile):
    inputs = make(h_shape, D, x_shape, seed=1)
    inputs32 = [t.float() for t in inputs]
    grad_out = torch.randn(h_shape[:-1], dtype=torch.float64, generator=torch.Generator().manual_seed(10))
    out64, grads64 = value_and_grads(bernoulli_head_reference, inputs, grad_out)
    out_ref, grads_ref = value_and_grads(bernoulli_head_reference, inputs32, grad_out)
    out, grads = value_and_grads(bernoulli_head, inputs32, grad_out, tile_rows=tile)
    assert_close_lowprec(out, out64, out_ref)
    for g, g64, g_ref in zip(grads, grads64, grads_ref, strict=True):
        assert_close_lowprec(g, g64, g_ref)


@pytest.mark.parametrize("tile", [0, 2])
def test_gradcheck(tile):
    h, w, b, x = make((3, 4, 5), 9, (4, 9), seed=2)
    leaves = [t.requires_grad_() for t in (h, w, b)]
    assert torch.autograd.gradcheck(lambda *a: bernoulli_head(*a, x, tile_rows=tile), leaves)


def test_grads_only_where_asked():
    h, w, b, x = make((4, 6), 10, None, seed=3)
    w.requires_grad_()
    out = bernoulli_head(h, w, b, x)
    (g_w,) = torch.autograd.grad(out.sum(), (w,))
    assert h.grad is None and b.grad is None
    torch.testing.assert_close(g_w, torch.autograd.grad(bernoulli_head_reference(h, w, b, x).sum(), (w,))[0])


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_extreme_logits(dtype):
    """Logits up to |l| ~ 1e4: softplus(l) = max(l, 0) + log1p(exp(-|l|)) never overflows, and
    sigmoid saturates to exactly 0 or 1 in the gradient."""
    h, w, b, x = make((6, 4), 50, None, dtype=dtype, seed=4)
    h = h * 3e3
    grad_out = torch.randn(6, dtype=torch.float64, generator=torch.Generator().manual_seed(11))
    out, grads = value_and_grads(bernoulli_head, (h, w, b, x), grad_out)
    out64, grads64 = value_and_grads(bernoulli_head_reference, [t.double() for t in (h, w, b, x)], grad_out)
    out_ref, grads_ref = value_and_grads(bernoulli_head_reference, (h, w, b, x), grad_out)
    assert torch.isfinite(out).all() and all(torch.isfinite(g).all() for g in grads)
    assert (out.double().abs() > 1e3).any()  # the logits really are extreme
    assert_close_lowprec(out, out64, out_ref)
    for g, g64, g_ref in zip(grads, grads64, grads_ref, strict=True):
        assert_close_lowprec(g, g64, g_ref)


def test_empty_rows_and_zero_width():
    h, w, b, x = make((0, 5), 7, None, seed=5)
    assert bernoulli_head(h, w, b, x).shape == (0,)
    h, w, b, x = make((3, 0), 4, None, seed=5)  # H = 0: the logits are the bias
    leaves = [t.requires_grad_() for t in (h, w, b)]
    out, out_ref = bernoulli_head(*leaves, x), bernoulli_head_reference(*leaves, x)
    torch.testing.assert_close(out, out_ref)
    torch.testing.assert_close(torch.autograd.grad(out.sum(), leaves[2]), torch.autograd.grad(out_ref.sum(), leaves[2]))


def test_non_contiguous_inputs():
    h, w, b, x = make((5, 8), 12, None, seed=6)
    h_nc = h.t().contiguous().t()
    w_nc = w.t().contiguous().t()
    x_nc = torch.cat([x, x], 1)[:, ::2]
    torch.testing.assert_close(bernoulli_head(h_nc, w_nc, b, x_nc), bernoulli_head_reference(h, w, b, x_nc))


@needs_fused
def test_no_logits_are_saved_for_the_backward():
    """The issue's memory target: nothing of the size of the (rows, D) logits is kept."""
    K, B, H, D = 8, 16, 6, 784
    h, w, b, x = make((K, B, H), D, (B, D), dtype=torch.float32, seed=7)
    leaves = [t.requires_grad_() for t in (h, w, b)]
    saved: list[int] = []

    def pack(t: torch.Tensor) -> torch.Tensor:
        saved.append(t.numel())
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = bernoulli_head(*leaves, x)
    assert saved and max(saved) < K * B * D, saved
    # the reference keeps the logits (at least one (K, B, D) tensor): the check can fail
    saved.clear()
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        bernoulli_head_reference(*leaves, x)
    assert max(saved) >= K * B * D
    out.sum().backward()


def test_torch_compile_fullgraph():
    def loss(h: torch.Tensor, w: torch.Tensor, b: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return -(bernoulli_head(h, w, b, x) * torch.arange(1.0, 4.0, dtype=h.dtype).unsqueeze(-1)).sum()

    h, w, b, x = make((3, 4, 5), 9, (4, 9), seed=8)
    leaves = [t.requires_grad_() for t in (h, w, b)]
    compiled = torch.compile(loss, fullgraph=True, backend="aot_eager")
    y = compiled(*leaves, x)
    grads = torch.autograd.grad(y, leaves)
    y_ref = -(bernoulli_head_reference(*leaves, x) * torch.arange(1.0, 4.0, dtype=h.dtype).unsqueeze(-1)).sum()
    grads_ref = torch.autograd.grad(y_ref, leaves)
    torch.testing.assert_close(y, y_ref)
    for g, g_ref in zip(grads, grads_ref, strict=True):
        torch.testing.assert_close(g, g_ref)


@needs_fused
@pytest.mark.parametrize("h_shape,x_shape,tile", [((4, 6), (4, 9), 0), ((3, 4, 6), (4, 9), 2)])
def test_opcheck(h_shape, x_shape, tile):
    h, w, b, x = make(h_shape, 9, x_shape, seed=9)
    args = (h.requires_grad_(), w.requires_grad_(), b.requires_grad_(), x, tile)
    torch.library.opcheck(torch.ops.vaebench.bernoulli_head.default, args)
    grad = torch.randn(h_shape[:-1], dtype=torch.float64)
    torch.library.opcheck(
        torch.ops.vaebench.bernoulli_head_backward.default, (grad, h.detach(), w.detach(), b.detach(), x, tile)
    )


@pytest.mark.parametrize(
    "shapes,match",
    [
        (((4, 3), (5, 2), (5,), (4, 5)), r"weight must be \(D, H\) with H=3"),
        (((4, 3), (5, 3), (4,), (4, 5)), r"bias must be \(D,\) with D=5"),
        (((4, 3), (5, 3), (5,), (4, 6)), r"x must be \(..., D\) with D=5"),
        (((4, 3), (5, 3), (5,), (2, 5)), "x's leading dims must broadcast to h's leading dims"),
        (((4, 3), (5, 3), (5,), (2, 4, 5)), "x's leading dims must broadcast"),
        (((), (5, 0), (5,), (5,)), r"h must be \(..., H\) with at least 1 dim"),
    ],
)
def test_shape_errors_name_the_argument(shapes, match):
    args = [torch.zeros(s) for s in shapes]
    with pytest.raises(ValueError, match=match):  # the same type on the fused and the reference path
        bernoulli_head(*args)


def test_dtype_and_data_errors():
    h, w, b, x = make((4, 3), 5, None, seed=10)
    with pytest.raises(TypeError, match="weight must have the dtype of h, got torch.float32 and torch.float64"):
        bernoulli_head(h, w.float(), b, x)
    with pytest.raises(TypeError, match="x must be a floating-point tensor"):
        bernoulli_head(h, w, b, x.long())
    with pytest.raises(ValueError, match="x is the data and gets no gradient"):
        bernoulli_head(h, w, b, x.requires_grad_())
    with pytest.raises(ValueError, match="tile_rows must be an int >= 0"):
        bernoulli_head(h, w, b, x.detach(), tile_rows=-1)


@needs_fused
def test_cpu_half_is_refused():
    h, w, b, x = (t.half() for t in make((4, 3), 5, None, seed=11))
    with pytest.raises(RuntimeError, match="on CPU h must be float32 or float64, got Half"):
        bernoulli_head(h, w, b, x)


@needs_cuda
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16])
@pytest.mark.parametrize("h_shape,D,x_shape,tile", [((50, 100, 200), 784, (100, 784), 0), *CASES[:6]])
def test_cuda_matches_reference(dtype, h_shape, D, x_shape, tile):
    inputs = make(h_shape, D, x_shape, seed=12)
    grad_out = torch.randn(h_shape[:-1], dtype=torch.float64, generator=torch.Generator().manual_seed(10))
    out64, grads64 = value_and_grads(bernoulli_head_reference, inputs, grad_out)
    cast = [t.to("cuda", dtype) for t in inputs]
    out_ref, grads_ref = value_and_grads(bernoulli_head_reference, cast, grad_out.cuda())
    out, grads = value_and_grads(bernoulli_head, cast, grad_out.cuda(), tile_rows=tile)
    assert_close_lowprec(out.cpu(), out64, out_ref.cpu())
    for g, g64, g_ref in zip(grads, grads64, grads_ref, strict=True):
        assert_close_lowprec(g.cpu(), g64, g_ref.cpu())
