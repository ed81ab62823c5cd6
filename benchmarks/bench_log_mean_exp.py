"""Speed of vaebench.ops.log_mean_exp: providers reference / compiled / fused, fwd and fwd+bwd.

    pytest benchmarks/bench_log_mean_exp.py --benchmark-only
    python benchmarks/bench_log_mean_exp.py [--size 5000 1024] [--threads 2]

The script prints the speedups (fused vs the reference, vs torch.compile of the reference and
vs plain torch.logsumexp) and the fraction of a same-run tensor copy's memory bandwidth, and
appends them to results/benchmarks/log_mean_exp.jsonl with the environment. Bandwidth is
compared with a copy into a preallocated tensor and with a clone (fresh allocation, like the
gradient the backward returns).
Target (2-core CPU, 2 threads, K=5000, B=1024 fwd+bwd): >= 3x eager, >= 1.5x compiled, >= 50%
of the copy's bandwidth.
"""

from __future__ import annotations

import argparse
import math

import pytest
import torch
from common import PROVIDERS, append_record, ratios, setup

from vaebench.ops import log_mean_exp, log_mean_exp_reference

# name -> (K, B): the target size, an IWAE training step, a K=5000 evaluation batch.
CASES = {"target": (5000, 1024), "train": (64, 256), "eval": (5000, 100)}


def make_inputs(size: tuple[int, ...], dtype: torch.dtype, device: torch.device):
    K, B = size
    log_w = (10 * torch.randn(K, B, dtype=dtype, device=device)).requires_grad_()
    return (
        (lambda x: log_mean_exp_reference(x, 0)),
        (lambda x: log_mean_exp(x, 0)),
        [log_w],
    )


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("mode", ["fwd", "fwd_bwd"])
@pytest.mark.parametrize("case", list(CASES))
def test_log_mean_exp(benchmark, provider: str, mode: str, case: str) -> None:
    torch.set_num_threads(2)
    bench = setup(make_inputs, provider, mode, CASES[case])
    benchmark.group = f"log_mean_exp {case} {mode}"
    benchmark.extra_info.update(size=CASES[case], threads=torch.get_num_threads(), nbytes=bench.nbytes)
    benchmark(bench.call)


def measure(size: tuple[int, int] = CASES["target"], threads: int = 2, repeats: int = 20) -> dict[str, object]:
    """Ratios of the fused op against the providers, plain logsumexp and a same-size copy."""
    torch.set_num_threads(threads)
    K, B = size
    x = (10 * torch.randn(K, B)).requires_grad_()
    dst = torch.empty(K, B)
    ones = torch.ones(B)

    def logsumexp_fwd_bwd() -> object:
        return torch.autograd.grad(torch.logsumexp(x, 0) - math.log(K), x, ones)

    def copy() -> object:
        return dst.copy_(x.detach())

    def clone() -> object:
        return x.detach().clone()

    # copy: into a preallocated tensor (pure bandwidth); clone: a fresh tensor, paying the
    # allocation and first-touch page faults that any out-of-place op (the gradient) pays too.
    extra = {"torch.logsumexp/fwd_bwd": logsumexp_fwd_bwd, "copy": copy, "clone": clone}
    result = ratios(make_inputs, size, threads=threads, repeats=repeats, extra=extra)
    s = result["seconds"]
    result["speedup_vs_logsumexp/fwd_bwd"] = s["torch.logsumexp/fwd_bwd"] / s["fused/fwd_bwd"]
    copy_gbps = 2 * K * B * 4 / s["copy"] / 1e9
    result["copy_gbps"] = copy_gbps
    result["fraction_of_copy_bandwidth/fwd_bwd"] = result["gbps"]["fused/fwd_bwd"] / copy_gbps
    result["fraction_of_copy_bandwidth/fwd"] = result["gbps"]["fused/fwd"] / copy_gbps
    b = result["best_seconds"]
    result["best_speedup_vs_logsumexp/fwd_bwd"] = b["torch.logsumexp/fwd_bwd"] / b["fused/fwd_bwd"]
    # fwd+bwd must read log_w and write its gradient, as many bytes as the copy moves.
    result["best_fraction_of_copy_bandwidth/fwd_bwd"] = b["copy"] / b["fused/fwd_bwd"]
    result["best_fraction_of_clone_bandwidth/fwd_bwd"] = b["clone"] / b["fused/fwd_bwd"]
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=int, nargs=2, default=CASES["target"], metavar=("K", "B"))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--no-record", action="store_true", help="do not append to results/benchmarks")
    args = parser.parse_args()
    result = measure(tuple(args.size), args.threads, args.repeats)
    for k, v in result["seconds"].items():
        print(f"{k:28s} {v * 1e3:9.3f} ms  {result['gbps'].get(k, float('nan')):6.2f} GB/s")
    for k, v in result.items():
        if k.startswith(("speedup", "best_speedup", "fraction", "best_fraction")) or k in ("copy_gbps", "loadavg_1min"):
            print(f"{k:40s} {v:6.2f}")
    if not args.no_record:
        print("recorded in", append_record("log_mean_exp", result))


if __name__ == "__main__":
    main()
