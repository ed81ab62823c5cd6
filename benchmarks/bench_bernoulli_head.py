"""Speed of vaebench.ops.bernoulli_head: providers reference / compiled / fused, fwd and fwd+bwd.

    pytest benchmarks/bench_bernoulli_head.py --benchmark-only
    python benchmarks/bench_bernoulli_head.py [--size 50 100 200 784] [--threads 2]

The script prints the speedups (fused vs the reference, eager F.linear + the Bernoulli
log-likelihood + sum, and vs torch.compile of the reference) and the time of the layer's
matmuls alone on the same shapes, the limit on a CPU, and appends them to
results/benchmarks/bernoulli_head.jsonl with the environment. Inputs and cases:
`vaebench.benchmarking.op_benchmark.bernoulli_head_inputs` and `OP_BENCHMARKS["bernoulli_head"]`.
Target (issue 11; 2-core CPU, 2 threads; K=50, B=100, H=200, D=784 fwd+bwd): >= 3x eager, no
(rows, D) logits kept for the backward.
"""

from __future__ import annotations

import pytest
import torch
from common import append_record, benchmark_case, print_ratios, ratios, script_parser

from vaebench.benchmarking.op_benchmark import MODES, OP_BENCHMARKS, PROVIDERS

# name -> Case((K, B, H, D)): "target" (IWAE K=50 step), "elbo" (K=1) and "eval-chunk".
CASES = OP_BENCHMARKS["bernoulli_head"].cases


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("case", list(CASES))
def test_bernoulli_head(benchmark, provider: str, mode: str, case: str) -> None:
    benchmark_case(benchmark, "bernoulli_head", provider, mode, case)


def _matmul_calls(size: tuple[int, ...]) -> dict[str, object]:
    """The layer's matmuls alone, into preallocated outputs (no page faults): the forward's
    h W^T, and the backward's dl W and dl^T h."""
    k, b, h_dim, d = size
    gen = torch.Generator().manual_seed(0)
    h = torch.randn(k * b, h_dim, generator=gen)
    w = torch.randn(d, h_dim, generator=gen)
    logits = torch.randn(k * b, d, generator=gen)
    out_l, out_h, out_w = torch.empty(k * b, d), torch.empty(k * b, h_dim), torch.empty(d, h_dim)

    def fwd() -> None:
        torch.mm(h, w.t(), out=out_l)

    def fwd_bwd() -> None:
        torch.mm(h, w.t(), out=out_l)
        torch.mm(logits, w, out=out_h)
        torch.mm(logits.t(), h, out=out_w)

    return {"matmuls/fwd": fwd, "matmuls/fwd_bwd": fwd_bwd}


def measure(size: tuple[int, ...] = CASES["target"].size, threads: int = 2, repeats: int = 10) -> dict[str, object]:
    """Ratios of the fused op against the reference, torch.compile of it and its matmuls alone."""
    result = ratios("bernoulli_head", size, threads=threads, repeats=repeats, extra=_matmul_calls(size))
    seconds, best = result["seconds"], result["best_seconds"]
    for m in MODES:
        result[f"fraction_of_matmul_time/{m}"] = seconds[f"matmuls/{m}"] / seconds[f"fused/{m}"]
        result[f"best_fraction_of_matmul_time/{m}"] = best[f"matmuls/{m}"] / best[f"fused/{m}"]
    return result


def main() -> None:
    parser = script_parser("bernoulli_head", __doc__.split("\n")[0])
    args = parser.parse_args()
    result = measure(tuple(args.size), args.threads, args.repeats)
    print_ratios(result)
    if not args.no_record:
        print("recorded in", append_record("bernoulli_head", result))


if __name__ == "__main__":
    main()
