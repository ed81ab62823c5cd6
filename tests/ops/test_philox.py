"""The Philox4x32-10 normal stream (csrc/philox.h) against its pure-PyTorch reference."""

from __future__ import annotations

import pytest
import torch

from vaebench.ops.reference import philox4x32_reference, philox_normal_reference

from .support import needs_fused

# Random123's known-answer vectors for philox4x32-10: (counter words, key words) -> output words.
KAT = [
    ([0, 0, 0, 0], [0, 0], [0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8]),
    ([0xFFFFFFFF] * 4, [0xFFFFFFFF, 0xFFFFFFFF], [0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD]),
    (
        [0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344],
        [0xA4093822, 0x299F31D0],
        [0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1],
    ),
]

# The normals agree with the float64 Box-Muller of the same uniforms within this many ulp of
# the kernel's dtype (measured: 3.0 for both; see philox_normal_reference).
NORMAL_ULPS = 4


def ulp_error(got: torch.Tensor, truth: torch.Tensor) -> float:
    """max |got - truth| in units of the spacing of got's dtype at |truth|."""
    t = truth.to(got.dtype).abs()
    spacing = (torch.nextafter(t, torch.full_like(t, float("inf"))) - t).double()
    return float(((got.double() - truth).abs() / spacing).max())


@pytest.mark.parametrize("counter,key,expected", KAT)
def test_reference_known_answers(counter, key, expected):
    out = philox4x32_reference(torch.tensor([counter]), torch.tensor(key))
    assert out[0].tolist() == expected


@needs_fused
@pytest.mark.parametrize("counter,key,expected", KAT)
def test_kernel_known_answers(counter, key, expected):
    out = torch.ops.vaebench.philox4x32(torch.tensor([counter]), torch.tensor(key))
    assert out[0].tolist() == expected


@needs_fused
def test_kernel_integer_stream_equals_reference():
    g = torch.Generator().manual_seed(0)
    counter = torch.randint(0, 2**32, (4096, 4), generator=g)
    for key in ([0, 0], [0xFFFFFFFF, 1], [12345, 0xDEADBEEF]):
        key_t = torch.tensor(key)
        assert torch.equal(torch.ops.vaebench.philox4x32(counter, key_t), philox4x32_reference(counter, key_t))


@needs_fused
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize(
    "seed,start,count",
    [
        ([0, 0], 0, 40_000),
        ([-7, 2**62 + 3], 3, 9_999),  # negative seed word, high offset, misaligned head and tail
        # a run crossing a carry into the counter's high word (block index 2^32 - 2 .. 2^32 + 1)
        ([123, 5], 4 * (2**32 - 2) + 1, 13),
    ],
)
def test_kernel_normals_match_reference(dtype, seed, start, count):
    seed_t = torch.tensor(seed)
    got = torch.ops.vaebench.philox_normal(seed_t, start, count, dtype)
    truth = philox_normal_reference(seed_t, start, count, dtype)
    assert got.dtype == dtype and got.shape == (count,)
    assert ulp_error(got, truth) <= NORMAL_ULPS


@needs_fused
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_kernel_normals_depend_on_index_only(dtype):
    seed = torch.tensor([99, 1])
    whole = torch.ops.vaebench.philox_normal(seed, 0, 3000, dtype)
    for start, count in [(0, 1), (1, 1), (5, 17), (1023, 1001), (2999, 1)]:
        assert torch.equal(torch.ops.vaebench.philox_normal(seed, start, count, dtype), whole[start : start + count])


@needs_fused
def test_offset_and_seed_give_different_streams():
    a = torch.ops.vaebench.philox_normal(torch.tensor([1, 0]), 0, 1000, torch.float32)
    b = torch.ops.vaebench.philox_normal(torch.tensor([1, 1]), 0, 1000, torch.float32)
    c = torch.ops.vaebench.philox_normal(torch.tensor([2, 0]), 0, 1000, torch.float32)
    assert abs(float(torch.corrcoef(torch.stack([a, b]))[0, 1])) < 0.15
    assert abs(float(torch.corrcoef(torch.stack([a, c]))[0, 1])) < 0.15


def test_reference_rejects_other_dtypes():
    with pytest.raises(ValueError, match="dtype must be float32 or float64"):
        philox_normal_reference(torch.tensor([0, 0]), 0, 4, torch.float16)


@needs_fused
def test_kernel_errors_name_the_argument():
    with pytest.raises(RuntimeError, match="counter must be an int64 tensor"):
        torch.ops.vaebench.philox4x32(torch.zeros(3, 3, dtype=torch.int64), torch.tensor([0, 0]))
    with pytest.raises(RuntimeError, match="key must be an int64 tensor of 2"):
        torch.ops.vaebench.philox4x32(torch.zeros(3, 4, dtype=torch.int64), torch.tensor([0]))
    with pytest.raises(RuntimeError, match="seed must be a CPU int64 tensor"):
        torch.ops.vaebench.philox_normal(torch.tensor([0.0, 0.0]), 0, 4, torch.float32)
    with pytest.raises(RuntimeError, match="start and count must be >= 0"):
        torch.ops.vaebench.philox_normal(torch.tensor([0, 0]), 0, -1, torch.float32)
