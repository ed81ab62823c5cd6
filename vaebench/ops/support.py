"""What the fused kernels support, stated once, and the argument checks every op wrapper shares.

Dtypes (the kernels' dispatch in csrc/, `AT_DISPATCH_FLOATING_TYPES` on CPU and
`..._AND2(kHalf, kBFloat16)` on CUDA):

    device   fused kernel                           other floating dtypes
    cpu      float32, float64                       the pure-PyTorch reference (e.g. float16)
    cuda     float16, bfloat16, float32, float64    -

So every op accepts every floating dtype; `runs_fused` says which path a tensor takes. The
raw kernels (`torch.ops.vaebench.*`) refuse what they do not support, with the same list.

Memory: an op whose output outgrows its inputs (`reparameterize` draws K samples) checks the
bytes it is about to allocate against `allocation_limit(device)` before the kernel runs: the
device's total memory (CPU: physical RAM; CUDA: the GPU's memory). A call beyond it can never
succeed, so it is refused with the size it needs instead of the allocator's bare error.
"""

from __future__ import annotations

import os
from typing import Any

import torch
from torch import Tensor
from torch._subclasses.fake_tensor import FakeTensor

__all__ = [
    "FUSED_DTYPES",
    "allocation_limit",
    "check_allocation",
    "check_dim",
    "check_tensor",
    "format_bytes",
    "runs_fused",
]

FUSED_DTYPES: dict[str, frozenset[torch.dtype]] = {
    "cpu": frozenset({torch.float32, torch.float64}),
    "cuda": frozenset({torch.float16, torch.bfloat16, torch.float32, torch.float64}),
}


def runs_fused(t: Tensor, fused_devices: frozenset[str]) -> bool:
    """Whether an op on `t` takes the compiled kernel: a loaded device type and a supported dtype."""
    return t.device.type in fused_devices and t.dtype in FUSED_DTYPES.get(t.device.type, frozenset())


def _tracing(t: Tensor) -> bool:
    return isinstance(t, FakeTensor) or torch.compiler.is_compiling()


def check_tensor(op: str, name: str, t: Any) -> None:
    """`t` is a floating-point tensor on a usable device; errors name the argument and the fix."""
    if not isinstance(t, Tensor):
        raise TypeError(
            f"vaebench.{op}: {name} must be a torch.Tensor, got {type(t).__name__}; convert it with "
            f"torch.as_tensor({name}, dtype=torch.float32)"
        )
    if not t.is_floating_point():
        raise TypeError(
            f"vaebench.{op}: {name} must be a floating-point tensor (fused: {_dtype_list('cpu')} on CPU, "
            f"{_dtype_list('cuda')} on CUDA), got {t.dtype}; convert it with .float()"
        )
    if t.device.type == "cuda" and not _tracing(t) and not torch.cuda.is_available():
        raise RuntimeError(
            f"vaebench.{op}: {name} is on {t.device}, but no CUDA device is usable here "
            "(torch.cuda.is_available() is False: no GPU, no driver, or a driver older than this torch's "
            "CUDA); move it with .cpu()"
        )


def check_dim(op: str, name: str, dim: Any, tensor: str, shape: tuple[int, ...]) -> None:
    """`dim` is an int that indexes the argument `tensor` of `shape` (negative too)."""
    if isinstance(dim, bool) or not isinstance(dim, int):
        raise TypeError(f"vaebench.{op}: {name} must be an int, got {dim!r} ({type(dim).__name__})")
    nd = len(shape)
    if not -nd <= dim < nd:
        raise IndexError(
            f"vaebench.{op}: {name} must be in [{-nd}, {nd - 1}] for {tensor} of shape {tuple(shape)}, got {name}={dim}"
        )


def _dtype_list(device: str) -> str:
    return "/".join(str(d).removeprefix("torch.") for d in sorted(FUSED_DTYPES[device], key=str))


def format_bytes(n: float) -> str:
    """1536 -> '1.5 KiB' (binary units, as the allocator reports)."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if n < 1024 or unit == "PiB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1024
    raise AssertionError("unreachable")


def _physical_memory() -> int:
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):  # not POSIX: no limit of ours, the allocator decides
        return 2**63 - 1


# Read once at import: a constant for torch.compile (it cannot trace os.sysconf).
_CPU_LIMIT = _physical_memory()


def allocation_limit(device: torch.device) -> int:
    """The most bytes one call may allocate on `device`: its total memory."""
    if device.type == "cuda" and torch.cuda.is_available():
        return int(torch.cuda.get_device_properties(device).total_memory)
    return _CPU_LIMIT


def check_allocation(op: str, argument: str, value: Any, nbytes: int, what: str, device: torch.device) -> None:
    """Refuse a call that needs more than `allocation_limit(device)` bytes, naming the argument.

    Under torch.compile only the CPU limit is checked (the GPU's properties are not traceable).
    """
    if device.type == "cuda" and torch.compiler.is_compiling():
        return
    limit = allocation_limit(device)
    if nbytes > limit:
        raise ValueError(
            f"vaebench.{op}: {argument}={value!r} needs {format_bytes(nbytes)} for {what}, more than the "
            f"{format_bytes(limit)} of {device.type} memory (the limit, vaebench.ops.support.allocation_limit); "
            f"lower {argument} or split the call into chunks"
        )
