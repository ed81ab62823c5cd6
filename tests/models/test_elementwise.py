"""vaebench.models.elementwise: tanh and softplus against float64 torch, gradients, extremes."""

from __future__ import annotations

import math

import pytest
import torch

from vaebench.models import elementwise
from vaebench.models.elementwise import TANH_MIN_ELEMENTS, Tanh, softplus, tanh

EXTREMES = [0.0, -0.0, 1e-30, -1e-30, 1e-6, -1e-6, 9.0, -9.0, 19.9, 20.1, -20.1, 44.0, -44.0, 88.0, -88.0]
EXTREMES += [104.0, -104.0, 1e4, -1e4, 3e38, -3e38]


def _inputs(dtype: torch.dtype, scale: float) -> torch.Tensor:
    """Random values and the extremes, more than TANH_MIN_ELEMENTS of them (the composite's path)."""
    g = torch.Generator().manual_seed(0)
    spread = scale * torch.randn(TANH_MIN_ELEMENTS + 1, generator=g, dtype=torch.float64)
    return torch.cat([spread, torch.tensor(EXTREMES, dtype=torch.float64)]).to(dtype).requires_grad_(True)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_softplus_matches_float64_softplus_to_an_ulp_of_one_with_the_exact_gradient(dtype):
    logits = _inputs(dtype, 3.0)
    exact = torch.nn.functional.softplus(logits.detach().double(), threshold=1000.0)
    out = softplus(logits)
    eps = torch.finfo(dtype).eps
    assert out.dtype == dtype
    # absolute error: an ulp of one plus the rounding of the value itself
    assert ((out.double() - exact).abs() <= eps + exact.abs() * eps).all()
    (grad,) = torch.autograd.grad(out.sum(), logits)
    assert torch.equal(grad, torch.sigmoid(logits.detach()))  # sigmoid(l) itself, in the input's precision
    assert grad[logits.detach() == 0].eq(0.5).all()  # autograd of max(l, 0) + log(1 + exp(-|l|)) would give 1
    special = softplus(torch.tensor([math.inf, -math.inf, math.nan], dtype=dtype))
    assert special[0] == math.inf and special[1] == 0 and special[2].isnan()


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_tanh_matches_float64_tanh_to_an_ulp_of_one_with_its_gradient(dtype):
    x = _inputs(dtype, 2.0)
    exact = torch.tanh(x.detach().double())
    out = tanh(x)
    eps = torch.finfo(dtype).eps
    assert out.dtype == dtype
    assert ((out.double() - exact).abs() <= 2 * eps).all()
    assert out.abs().le(1.0).all()  # never outside [-1, 1], the saturation is exact
    assert out[x.detach() > 20].eq(1.0).all() and out[x.detach() < -20].eq(-1.0).all()
    (grad,) = torch.autograd.grad(out.sum(), x)
    assert torch.equal(grad, 1.0 - out.detach() * out.detach())  # torch.tanh's backward formula
    special = tanh(torch.tensor([math.inf, -math.inf, math.nan], dtype=dtype))
    assert special[0] == 1 and special[1] == -1 and special[2].isnan()


# The composites themselves (tanh takes torch.tanh below TANH_MIN_ELEMENTS, too many for gradcheck).
COMPOSITES = [elementwise._Tanh.apply, elementwise._Softplus.apply]


@pytest.mark.parametrize("fn", COMPOSITES, ids=["tanh", "softplus"])
def test_gradcheck_and_gradgradcheck(fn):
    x = torch.tensor([-30.0, -3.0, -0.5, -1e-3, 0.0, 1e-3, 0.5, 3.0, 30.0], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(fn, (x,))
    assert torch.autograd.gradgradcheck(fn, (x,))


@pytest.mark.parametrize("fn", COMPOSITES, ids=["tanh", "softplus"])
def test_vmap_and_odd_shapes(fn):
    x = torch.randn(3, 0, 5), torch.randn(7, 1, 13, dtype=torch.float64), torch.randn(()).requires_grad_(True)
    for t in x:
        assert fn(t).shape == t.shape
    batched = torch.randn(4, 9, dtype=torch.float64)
    assert torch.equal(torch.func.vmap(fn)(batched), fn(batched))


def test_tanh_takes_torch_below_the_size_where_the_composite_pays():
    small = torch.randn(TANH_MIN_ELEMENTS - 1)
    assert torch.equal(tanh(small), torch.tanh(small))
    assert tanh(small.requires_grad_(True)).grad_fn.name() == "TanhBackward0"
    large = torch.randn(TANH_MIN_ELEMENTS, requires_grad=True)
    assert tanh(large).grad_fn.name() != "TanhBackward0"


def test_tanh_module_is_the_function():
    x = torch.randn(5, 3)
    assert torch.equal(Tanh()(x), tanh(x)) and type(Tanh()).__name__ == "Tanh"
