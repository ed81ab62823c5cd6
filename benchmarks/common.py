"""What the op benchmark scripts (benchmarks/bench_<op>.py) share on top of the package's one
setup factory, `vaebench.benchmarking.op_benchmark` (each op's inputs, reference and fused
functions, cases, providers, modes, warm-up and the alternating-rounds timing): the
pytest-benchmark body, the script's command line, the speedup ratios it prints and the
append-only records with the environment.

    pytest benchmarks/bench_log_mean_exp.py --benchmark-only      # pytest-benchmark tables
    python benchmarks/bench_log_mean_exp.py                       # speedup ratios (+ record)
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from vaebench.benchmarking.op_benchmark import OP_BENCHMARKS, Mode, Provider, measure_op, setup_bench

__all__ = ["append_record", "benchmark_case", "print_ratios", "ratios", "script_parser"]

RESULTS = Path(__file__).resolve().parent.parent / "results" / "benchmarks"
THREADS = 2  # the kernels' CPU targets are stated for 2 threads


def benchmark_case(benchmark: Any, op: str, provider: Provider, mode: Mode, case: str) -> None:
    """The pytest-benchmark body of every bench file: one named case of `op`, setup outside timing."""
    torch.set_num_threads(THREADS)
    c = OP_BENCHMARKS[op].cases[case]
    bench = setup_bench(op, provider, mode, c.size, **c.options)
    benchmark.group = f"{op} {case} {mode}"
    benchmark.extra_info.update(size=c.size, threads=torch.get_num_threads(), nbytes=bench.nbytes)
    benchmark(bench.call)


def script_parser(op: str, description: str) -> argparse.ArgumentParser:
    """The bench script's command line: --size in the op's dims (default: its "target" case),
    --threads, --repeats, --no-record."""
    bench = OP_BENCHMARKS[op]
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument(
        "--size", type=int, nargs=len(bench.dims), default=bench.cases["target"].size, metavar=bench.dims
    )
    parser.add_argument("--threads", type=int, default=THREADS)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--no-record", action="store_true", help="do not append to results/benchmarks")
    return parser


def ratios(
    op: str,
    size: tuple[int, ...],
    dtype: torch.dtype = torch.float32,
    device: torch.device | str = "cpu",
    threads: int | None = THREADS,
    repeats: int = 20,
    rounds: int = 3,
    extra: dict[str, Callable[[], object]] | None = None,
    **options: Any,
) -> dict[str, object]:
    """Times every provider of `op` in both modes (plus `extra` calls, e.g. a same-size copy) in
    one process, alternating in rounds (`measure_op`), and returns medians, GB/s and the
    speedups fused/reference and fused/compiled.

    On a shared machine the medians carry other processes' load; the speedups from the best
    times ("best_speedup_*") are the steadier estimate of what the kernels can do."""
    if threads is not None:
        torch.set_num_threads(threads)
    timed = measure_op(op, size, dtype=dtype, device=device, repeats=repeats, rounds=rounds, extra=extra, **options)
    seconds, best = timed.medians(), timed.bests()
    result: dict[str, object] = {
        "size": list(size),
        "dtype": str(dtype).removeprefix("torch."),
        "threads": torch.get_num_threads(),
        "seconds": seconds,
        "best_seconds": best,
        "loadavg_1min": os.getloadavg()[0],
        "nbytes": dict(timed.nbytes),
        "gbps": {k: n / seconds[k] / 1e9 for k, n in timed.nbytes.items()},
    }
    for m in ("fwd", "fwd_bwd"):
        result[f"speedup_vs_reference/{m}"] = seconds[f"reference/{m}"] / seconds[f"fused/{m}"]
        result[f"speedup_vs_compiled/{m}"] = seconds[f"compiled/{m}"] / seconds[f"fused/{m}"]
        result[f"best_speedup_vs_reference/{m}"] = best[f"reference/{m}"] / best[f"fused/{m}"]
        result[f"best_speedup_vs_compiled/{m}"] = best[f"compiled/{m}"] / best[f"fused/{m}"]
    return result


def print_ratios(result: dict[str, Any]) -> None:
    """Prints each timed call's median and GB/s, then the speedups and bandwidth fractions."""
    for k, v in result["seconds"].items():
        print(f"{k:28s} {v * 1e3:9.3f} ms  {result['gbps'].get(k, float('nan')):6.2f} GB/s")
    for k, v in result.items():
        if k.startswith(("speedup", "best_speedup", "fraction", "best_fraction")) or k in (
            "copy_gbps",
            "copy_time_over_fwd_bwd_time",
            "loadavg_1min",
        ):
            print(f"{k:40s} {v:6.2f}")


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
