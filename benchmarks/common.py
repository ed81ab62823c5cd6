"""Shared pieces of the op benchmarks (benchmarks/bench_<op>.py): providers, the one setup
factory, timing in alternating rounds, and append-only records with the environment.

Each bench file defines `CASES` (name -> size) and `make_inputs(size, dtype, device)`, which
returns the reference function, the fused function and the inputs; everything else is here:

    pytest benchmarks/bench_log_mean_exp.py --benchmark-only      # pytest-benchmark tables
    python benchmarks/bench_log_mean_exp.py                       # speedup ratios (+ record)

The ratios are what a CI speed gate reads (`ratios()` returns them as a dict).
"""

from __future__ import annotations

import json
import os
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch
from torch import Tensor

__all__ = ["PROVIDERS", "Bench", "append_record", "ratios", "setup", "time_calls"]

Provider = Literal["reference", "compiled", "fused"]
Mode = Literal["fwd", "fwd_bwd"]
PROVIDERS: tuple[Provider, ...] = ("reference", "compiled", "fused")
RESULTS = Path(__file__).resolve().parent.parent / "results" / "benchmarks"

# (reference_fn, fused_fn, inputs): the functions take the inputs positionally; inputs that
# require grad are the ones differentiated in fwd_bwd.
MakeInputs = Callable[
    [tuple[int, ...], torch.dtype, torch.device],
    tuple[Callable, Callable, Sequence[Tensor]],
]


@dataclass
class Bench:
    """A ready-to-time call of one provider on one case; setup and warm-up already done."""

    call: Callable[[], object]
    inputs: Sequence[Tensor]
    nbytes: int  # bytes the op must move at least (inputs read + outputs written), for GB/s


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def setup(
    make_inputs: MakeInputs,
    provider: Provider,
    mode: Mode,
    size: tuple[int, ...],
    dtype: torch.dtype = torch.float32,
    device: torch.device | str = "cpu",
    seed: int = 0,
) -> Bench:
    """The one setup factory: inputs, provider function, warm-up (compilation) outside timing.

    fwd runs under no_grad; fwd_bwd runs the forward and torch.autograd.grad of the outputs
    with respect to the inputs that require grad (no accumulation into .grad).
    """
    device = torch.device(device)
    torch.manual_seed(seed)
    reference, fused, inputs = make_inputs(size, dtype, device)
    fn = {
        "reference": reference,
        "compiled": torch.compile(reference, dynamic=False),
        "fused": fused,
    }[provider]
    wrt = [t for t in inputs if t.requires_grad]
    out = fn(*inputs)
    outs = out if isinstance(out, tuple) else (out,)
    grad_outs = [torch.ones_like(o) for o in outs]
    nbytes = sum(t.numel() * t.element_size() for t in inputs) + sum(o.numel() * o.element_size() for o in outs)

    if mode == "fwd":

        def call() -> object:
            with torch.no_grad():
                return fn(*inputs)

    else:
        nbytes += sum(t.numel() * t.element_size() for t in wrt)  # the gradients written

        def call() -> object:
            o = fn(*inputs)
            return torch.autograd.grad(o if isinstance(o, tuple) else (o,), wrt, grad_outs)

    for _ in range(3):  # compile, allocate, warm caches
        call()
    _sync(device)
    return Bench(call, inputs, nbytes)


def time_calls(
    calls: dict[str, Callable[[], object]],
    repeats: int = 20,
    rounds: int = 3,
    device: torch.device | str = "cpu",
) -> dict[str, list[float]]:
    """Seconds of every call of each entry, alternating the entries in `rounds` rounds of
    `repeats` calls so that all see the same machine noise."""
    device = torch.device(device)
    samples: dict[str, list[float]] = {k: [] for k in calls}
    for _ in range(rounds):
        for name, call in calls.items():
            for _ in range(repeats):
                _sync(device)
                t0 = time.perf_counter()
                call()
                _sync(device)
                samples[name].append(time.perf_counter() - t0)
    return samples


def ratios(
    make_inputs: MakeInputs,
    size: tuple[int, ...],
    dtype: torch.dtype = torch.float32,
    device: torch.device | str = "cpu",
    threads: int | None = 2,
    repeats: int = 20,
    rounds: int = 3,
    extra: dict[str, Callable[[], object]] | None = None,
) -> dict[str, object]:
    """Times every provider in both modes (plus `extra` calls, e.g. a same-size copy) in one
    process and returns medians, GB/s and the speedups fused/reference and fused/compiled.

    On a shared machine the medians carry other processes' load; the speedups from the best
    times ("best_speedup_*") are the steadier estimate of what the kernels can do."""
    if threads is not None:
        torch.set_num_threads(threads)
    benches = {f"{p}/{m}": setup(make_inputs, p, m, size, dtype, device) for m in ("fwd", "fwd_bwd") for p in PROVIDERS}
    calls = {k: b.call for k, b in benches.items()} | dict(extra or {})
    samples = time_calls(calls, repeats, rounds, device)
    seconds = {k: statistics.median(v) for k, v in samples.items()}
    best = {k: min(v) for k, v in samples.items()}
    result: dict[str, object] = {
        "size": list(size),
        "dtype": str(dtype).removeprefix("torch."),
        "threads": torch.get_num_threads(),
        "seconds": seconds,
        "best_seconds": best,
        "loadavg_1min": os.getloadavg()[0],
        "gbps": {k: benches[k].nbytes / seconds[k] / 1e9 for k in benches},
    }
    for m in ("fwd", "fwd_bwd"):
        result[f"speedup_vs_reference/{m}"] = seconds[f"reference/{m}"] / seconds[f"fused/{m}"]
        result[f"speedup_vs_compiled/{m}"] = seconds[f"compiled/{m}"] / seconds[f"fused/{m}"]
        result[f"best_speedup_vs_reference/{m}"] = best[f"reference/{m}"] / best[f"fused/{m}"]
        result[f"best_speedup_vs_compiled/{m}"] = best[f"compiled/{m}"] / best[f"fused/{m}"]
    return result


def append_record(op: str, result: dict[str, object]) -> Path:
    """Appends one JSON line (result + environment) to results/benchmarks/<op>.jsonl."""
    from vaebench.environment import environment

    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{op}.jsonl"
    record = {
        "op": op,
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        **result,
        "environment": environment("cpu"),
    }
    with path.open("a") as f:
        f.write(json.dumps(record, default=str) + "\n")
    return path
