"""`vaebench.finite.all_finite`: the exact answer of torch.isfinite(t).all(), from one sum."""

from __future__ import annotations

import pytest
import torch

from vaebench.finite import all_finite


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64])
def test_all_finite_is_the_exact_check(dtype):
    big = torch.finfo(dtype).max
    cases = {
        "finite": torch.randn(7, 333),
        "empty": torch.empty(0, 5),
        "nan": torch.tensor([1.0, float("nan"), 2.0]),
        "+inf": torch.tensor([1.0, float("inf")]),
        "-inf": torch.tensor([float("-inf"), 3.0]),
        "+inf and -inf": torch.tensor([float("inf"), float("-inf")]),  # the sum is NaN
        "overflowing sum of finite values": torch.full((64,), big, dtype=dtype),  # sum = inf: the exact check decides
    }
    for name, t in cases.items():
        t = t.to(dtype)
        assert all_finite(t) == bool(torch.isfinite(t).all()), name
    assert all_finite(torch.full((64,), big, dtype=dtype))
    assert not all_finite(torch.tensor([big, float("nan")], dtype=dtype))


def test_all_finite_of_integers_and_of_tensors_that_require_grad():
    assert all_finite(torch.arange(10))
    assert all_finite(torch.zeros(3, dtype=torch.bool))
    x = torch.randn(4, 3, requires_grad=True)
    assert all_finite(x)
    assert not all_finite(x * float("inf"))
    assert x.grad is None  # no graph was built on x
