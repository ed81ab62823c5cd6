"""What the op tests share: the skip markers and STYLE.md's low-precision rule."""

from __future__ import annotations

import pytest
import torch

from vaebench.ops import fused_available

needs_fused = pytest.mark.skipif(
    not fused_available(),
    reason="compiled library not loaded (tests/ops/test_backend.py checks it in CI)",
)
needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def assert_close_lowprec(got: torch.Tensor, truth: torch.Tensor, same_precision_ref: torch.Tensor) -> None:
    """STYLE.md's rule: error vs the float64 truth <= 2x that of the reference computed in the
    same precision (plus one ulp of the values' scale, for when that error happens to be 0)."""
    assert got.shape == truth.shape and got.dtype == same_precision_ref.dtype
    got, ref = got.double(), same_precision_ref.double()
    finite = torch.isfinite(truth)
    assert torch.equal(torch.isfinite(got), finite) and torch.equal(got[~finite], truth[~finite])
    err = (got - truth)[finite].abs().max() if finite.any() else torch.tensor(0.0)
    err_ref = (ref - truth)[finite].abs().max() if finite.any() else torch.tensor(0.0)
    scale = truth[finite].abs().max() if finite.any() else torch.tensor(1.0)
    floor = torch.finfo(same_precision_ref.dtype).eps * max(float(scale), 1.0)
    assert float(err) <= 2 * float(err_ref) + floor, (float(err), float(err_ref), floor)
