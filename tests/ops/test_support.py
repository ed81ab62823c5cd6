"""The ops' shared argument checks (vaebench.ops.support): errors name the argument and the fix."""

from __future__ import annotations

import pytest
import torch

from vaebench import ops
from vaebench.ops.support import (
    FUSED_DTYPES,
    allocation_limit,
    check_tensor,
    format_bytes,
    runs_fused,
)


class _CudaLooking(torch.Tensor):
    """A CPU tensor that reports a CUDA device: what a CUDA tensor looks like to the checks on a
    machine whose driver is missing (a real one cannot be made there)."""

    @property
    def device(self) -> torch.device:  # type: ignore[override]
        return torch.device("cuda", 0)


@pytest.mark.parametrize("op", ["log_mean_exp", "importance_weights"])
def test_a_python_list_is_named(op: str) -> None:
    with pytest.raises(TypeError, match=r"log_w must be a torch.Tensor, got list; convert it with torch.as_tensor"):
        getattr(ops, op)([1.0, 2.0, 3.0], 0)


def test_a_list_for_every_op_argument() -> None:
    with pytest.raises(TypeError, match="vaebench.reparameterize: logvar must be a torch.Tensor, got list"):
        ops.reparameterize(torch.zeros(2, 3), [[0.0] * 3] * 2)
    with pytest.raises(TypeError, match="vaebench.gaussian_kl: prior_mu must be a torch.Tensor, got tuple"):
        ops.gaussian_kl(torch.zeros(2, 3), torch.zeros(2, 3), (0.0, 0.0, 0.0))


@pytest.mark.parametrize("dim", [0.5, "0", True, None])
def test_a_dim_that_is_not_an_int(dim: object) -> None:
    with pytest.raises(TypeError, match=r"vaebench.log_mean_exp: dim must be an int, got"):
        ops.log_mean_exp(torch.zeros(3, 2), dim)  # type: ignore[arg-type]


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64])
def test_every_floating_dtype_runs_on_cpu_and_the_path_follows_fused_dtypes(dtype: torch.dtype) -> None:
    x = torch.randn(5, 3).to(dtype)
    z, log_q = ops.reparameterize(x, x, 2)
    assert z.dtype == log_q.dtype == dtype
    assert ops.log_mean_exp(x, 0).dtype == ops.gaussian_kl(x, x).dtype == dtype
    fused = frozenset({"cpu"}) if ops.fused_available() else frozenset()
    assert runs_fused(x, fused) == (ops.fused_available() and dtype in FUSED_DTYPES["cpu"])


def test_a_huge_num_samples_says_how_much_memory_it_needs() -> None:
    mu = torch.zeros(3, 4)
    with pytest.raises(ValueError) as info:
        ops.reparameterize(mu, mu, 10**12)
    msg = str(info.value)
    needed = 10**12 * (12 * (1 if ops.fused_available() else 2) + 3) * 4  # z (+ eps) and log_q, float32
    assert f"num_samples=1000000000000 needs {format_bytes(needed)}" in msg
    assert format_bytes(allocation_limit(torch.device("cpu"))) in msg and "lower num_samples" in msg
    # just under the limit is not refused by the check (only by what the allocator can give)
    assert 10**6 * (12 * 2 + 3) * 4 < allocation_limit(torch.device("cpu"))
    assert ops.reparameterize(mu, mu, 10**3)[0].shape == (1000, 3, 4)


def test_format_bytes() -> None:
    assert [format_bytes(n) for n in (5, 1536, 3 * 2**30, 2**60)] == ["5 B", "1.5 KiB", "3.0 GiB", "1024.0 PiB"]


def test_a_cuda_tensor_without_a_usable_driver(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    t = torch.zeros(3, 2).as_subclass(_CudaLooking)
    assert t.device.type == "cuda"
    with pytest.raises(RuntimeError, match=r"vaebench.log_mean_exp: log_w is on cuda:0, but no CUDA device is usable"):
        check_tensor("log_mean_exp", "log_w", t)
    assert ops.backend("cuda") == "reference"  # no kernel can run without a usable GPU
