"""Speed and peak memory of vaebench.ops.reparameterize: providers reference / compiled / fused.

    pytest benchmarks/bench_reparameterize.py --benchmark-only
    python benchmarks/bench_reparameterize.py [--size 64 256 64] [--threads 2] [--dtype float32]

"reference" is eager torch.randn + reparameterize_reference, "compiled" is torch.compile of
that, "fused" is the kernel (eps drawn inside it, recomputed in the backward). The script
prints the times, the speedups (fused vs reference and vs compiled) and the peak memory of
fwd+bwd per provider, and appends them to results/benchmarks/reparameterize.jsonl with the
environment. Target (2-core AVX-512 CPU, 2 threads, K=64, B=256, D=64, fwd+bwd): >= 4x eager,
>= 2x compiled, peak memory <= the reference's. Inputs and cases: `vaebench.benchmarking.op_benchmark`
(`reparameterize_inputs`, `OP_BENCHMARKS["reparameterize"]`).
"""

from __future__ import annotations

import ctypes
import re
from collections.abc import Callable
from typing import Any

import pytest
import torch
from common import append_record, benchmark_case, print_ratios, ratios, script_parser

from vaebench.benchmarking.op_benchmark import MODES, OP_BENCHMARKS, PROVIDERS, setup_bench

# name -> Case((K, B, D)): "target", "iwae-k5000-chunk", "single-sample".
CASES = OP_BENCHMARKS["reparameterize"].cases


def _status_bytes(key: str) -> int:
    with open("/proc/self/status") as f:
        return int(re.search(rf"{key}:\s+(\d+) kB", f.read()).group(1)) * 1024


def peak_memory(call: Callable[[], object]) -> int | None:
    """Peak resident bytes one call adds (Linux, CPU): the high-water mark, reset just before.

    glibc's mmap threshold is pinned at 64 KiB and its heap trimmed first, so that memory freed
    earlier does not hide the call's allocations; None where /proc/self/clear_refs is not writable.
    """
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(-3, 64 * 1024)  # M_MMAP_THRESHOLD
        call()
        libc.malloc_trim(0)  # hand back what earlier runs left in the heap
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # reset VmHWM to the current RSS
    except OSError:
        return None
    base = _status_bytes("VmRSS")
    call()
    return _status_bytes("VmHWM") - base


def peak_memories(size: tuple[int, ...], dtype: torch.dtype = torch.float32) -> dict[str, int | None]:
    """Peak memory of fwd+bwd per provider (bytes), CPU."""
    return {p: peak_memory(setup_bench("reparameterize", p, "fwd_bwd", size, dtype, "cpu").call) for p in PROVIDERS}


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("case", list(CASES))
def test_reparameterize(benchmark: Any, provider: str, mode: str, case: str) -> None:
    benchmark_case(benchmark, "reparameterize", provider, mode, case)


def main() -> None:
    parser = script_parser("reparameterize", __doc__.split("\n")[0])
    parser.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    dtype = getattr(torch, args.dtype)
    size = tuple(args.size)
    result = ratios("reparameterize", size, dtype=dtype, device=args.device, threads=args.threads, repeats=args.repeats)
    if args.device == "cpu":
        result["peak_bytes/fwd_bwd"] = peak_memories(size, dtype)
    print_ratios(result)
    for p, b in result.get("peak_bytes/fwd_bwd", {}).items():
        print(f"peak memory fwd+bwd {p:12s} {b / 2**20 if b is not None else float('nan'):8.2f} MiB")
    if not args.no_record:
        print("recorded in", append_record("reparameterize", result))


if __name__ == "__main__":
    main()
