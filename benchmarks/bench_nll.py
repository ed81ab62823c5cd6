"""Speed of the K=5000 test-NLL evaluation, end to end, against a hand-written eager evaluator,
torch.compile of it and the decoder's matmuls alone on the same shapes (benchmarks/end_to_end.py).

    pytest benchmarks/bench_nll.py --benchmark-only
    python benchmarks/bench_nll.py [--points 20] [--samples 5000] [--threads 2] [--rounds 3]

The script times every provider in alternating rounds in one process, prints the medians, the
best times and the ratios, and appends them to results/benchmarks/nll.jsonl with the
environment. Targets (issue 11; 2-core CPU, 2 threads, float32, MLP 784-200-200-50, 20 test
digits, K=5000): vaebench within 1.3x of the decoder matmuls' time, >= 1.8x the hand-written
batched eager evaluator (chunks of 500 samples, 10 points at a time).
"""

from __future__ import annotations

import argparse
import copy
import math
import os
import statistics
from collections.abc import Callable

import pytest
import torch
from common import THREADS, append_record
from end_to_end import EagerVAE, burda_model, digits, matmul_shapes, matmuls_call

from vaebench.benchmarking import time_rounds
from vaebench.evaluation import estimate_log_likelihood

PROVIDERS = ("vaebench", "vaebench-unfused", "eager", "compiled", "matmuls")
EAGER_CHUNK, EAGER_POINTS = 500, 10  # the hand-written evaluator


def nll_calls(points: int = 20, samples: int = 5000) -> tuple[dict[str, Callable[[], object]], float]:
    """Every provider's K-sample NLL of the first `points` test digits, on the same weights, and
    the decoder matmuls' GFLOP."""
    model = burda_model()
    unfused = copy.deepcopy(model)
    unfused.fused_head = False
    x = digits("test", points)
    eager = EagerVAE(model)
    compiled_log_weights = torch.compile(eager.log_weights, dynamic=False)

    def eager_nll(log_weights: Callable[..., torch.Tensor]) -> torch.Tensor:
        out = []
        with torch.no_grad():
            for i in range(0, points, EAGER_POINTS):
                xb = x[i : i + EAGER_POINTS].flatten(1)
                mu, logvar = eager.encode(xb)
                chunks = [min(EAGER_CHUNK, samples - s) for s in range(0, samples, EAGER_CHUNK)]
                log_w = torch.cat([log_weights(xb, mu, logvar, k) for k in chunks])
                out.append(torch.logsumexp(log_w, 0) - math.log(samples))
        return -torch.cat(out).mean()

    decoder_shapes = [s for s in matmul_shapes(model, 0, EAGER_CHUNK * EAGER_POINTS) if s[0] > 0]
    passes = math.ceil(samples / EAGER_CHUNK) * math.ceil(points / EAGER_POINTS)
    matmuls, gflop = matmuls_call(decoder_shapes, backward=False, repeat=passes)
    calls = {
        "vaebench": lambda: estimate_log_likelihood(model, x, num_samples=samples, progress=False).nll,
        "vaebench-unfused": lambda: estimate_log_likelihood(unfused, x, num_samples=samples, progress=False).nll,
        "eager": lambda: eager_nll(eager.log_weights),
        "compiled": lambda: eager_nll(compiled_log_weights),
        "matmuls": matmuls,
    }
    return calls, gflop


@pytest.mark.parametrize("provider", PROVIDERS)
def test_nll_k5000(benchmark, provider: str) -> None:
    torch.set_num_threads(THREADS)
    calls, _ = nll_calls()
    benchmark.group = "nll K=5000, 20 points"
    benchmark.pedantic(calls[provider], rounds=3, iterations=1, warmup_rounds=1)


def measure(points: int = 20, samples: int = 5000, threads: int = THREADS, rounds: int = 3) -> dict[str, object]:
    """Medians, best times and ratios of every provider (see the module docstring)."""
    torch.set_num_threads(threads)
    calls, gflop = nll_calls(points, samples)
    nll = {k: float(calls[k]()) for k in ("vaebench", "vaebench-unfused", "eager", "compiled")}  # warm-up too
    samples_s = time_rounds(calls, "cpu", repeats=1, rounds=rounds, warmup=0)
    med = {k: statistics.median(v) for k, v in samples_s.items()}
    best = {k: min(v) for k, v in samples_s.items()}
    result: dict[str, object] = {
        "points": points,
        "num_samples": samples,
        "threads": torch.get_num_threads(),
        "rounds": rounds,
        "decoder_gflop": gflop,
        "nll": nll,
        "seconds": med,
        "best_seconds": best,
        "loadavg_1min": os.getloadavg()[0],
        "points_per_second": {k: points / v for k, v in med.items()},
        "matmul_gflops": gflop / med["matmuls"],
    }
    for stat, t in (("", med), ("best_", best)):
        result[f"{stat}speedup_vs_eager"] = t["eager"] / t["vaebench"]
        result[f"{stat}speedup_vs_compiled"] = t["compiled"] / t["vaebench"]
        result[f"{stat}speedup_vs_unfused"] = t["vaebench-unfused"] / t["vaebench"]
        result[f"{stat}time_over_matmuls"] = t["vaebench"] / t["matmuls"]
        result[f"{stat}eager_time_over_matmuls"] = t["eager"] / t["matmuls"]
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--points", type=int, default=20)
    parser.add_argument("--samples", type=int, default=5000)
    parser.add_argument("--threads", type=int, default=THREADS)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-record", action="store_true", help="do not append to results/benchmarks")
    args = parser.parse_args()
    result = measure(args.points, args.samples, args.threads, args.rounds)
    for k in result["seconds"]:
        print(f"{k:18s} median {result['seconds'][k]:7.3f} s   best {result['best_seconds'][k]:7.3f} s")
    for k, v in result.items():
        if isinstance(v, float):
            print(f"{k:32s} {v:8.3f}")
    print("nll", result["nll"])
    if not args.no_record:
        print("recorded in", append_record("nll", result))


if __name__ == "__main__":
    main()
