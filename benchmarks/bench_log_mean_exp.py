"""Speed of vaebench.ops.log_mean_exp: providers reference / compiled / fused, fwd and fwd+bwd.

    pytest benchmarks/bench_log_mean_exp.py --benchmark-only
    python benchmarks/bench_log_mean_exp.py [--size 5000 1024] [--threads 2]

The script prints the speedups (fused vs the reference, vs torch.compile of the reference and
vs plain torch.logsumexp) and the fraction of a same-run tensor copy's memory bandwidth, and
appends them to results/benchmarks/log_mean_exp.jsonl with the environment. Bandwidth is
compared with a copy into a preallocated tensor and with a clone (fresh allocation, like the
gradient the backward returns). Inputs and cases: `vaebench.benchmarking.op_benchmark`
(`log_mean_exp_inputs`, `OP_BENCHMARKS["log_mean_exp"]`).
Target (2-core CPU, 2 threads, K=5000, B=1024 fwd+bwd): >= 3x eager, >= 1.5x compiled, >= 50%
of the copy's bandwidth. Bandwidth is the bytes the op must move over time: fwd+bwd moves three
times log_w's size (the forward reads it, the backward reads it again and writes w); records before
2026-11-25 counted two (no "bytes_model" key), which understated it by a third. Since 2026-12-02
the fused backward reads log_w twice (each slice's max and sum, then the weights from them; issue
13), so it moves four times log_w's size while the model still counts the three the op needs.
"""

from __future__ import annotations

import math

import pytest
import torch
from common import append_record, benchmark_case, print_ratios, ratios, script_parser

from vaebench.benchmarking.op_benchmark import MODES, OP_BENCHMARKS, PROVIDERS, log_mean_exp_inputs

# name -> Case((K, B)): the target size, an IWAE training step, a K=5000 evaluation batch.
CASES = OP_BENCHMARKS["log_mean_exp"].cases


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("case", list(CASES))
def test_log_mean_exp(benchmark, provider: str, mode: str, case: str) -> None:
    benchmark_case(benchmark, "log_mean_exp", provider, mode, case)


def measure(size: tuple[int, ...] = CASES["target"].size, threads: int = 2, repeats: int = 20) -> dict[str, object]:
    """Ratios of the fused op against the providers, plain logsumexp and a same-size copy."""
    torch.set_num_threads(threads)
    K, B = size
    (x,) = log_mean_exp_inputs(size, torch.float32, torch.device("cpu")).inputs
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
    result = ratios("log_mean_exp", size, threads=threads, repeats=repeats, extra=extra)
    s, b = result["seconds"], result["best_seconds"]
    result["speedup_vs_logsumexp/fwd_bwd"] = s["torch.logsumexp/fwd_bwd"] / s["fused/fwd_bwd"]
    result["best_speedup_vs_logsumexp/fwd_bwd"] = b["torch.logsumexp/fwd_bwd"] / b["fused/fwd_bwd"]
    # Bandwidth: bytes moved (vaebench.benchmarking.op_benchmark: fwd reads log_w; fwd+bwd reads it
    # twice and writes w, three times log_w's size) over time, as a fraction of the copy's
    # (reads and writes log_w's size once each).
    copy_bytes, nbytes = 2 * x.numel() * x.element_size(), result["nbytes"]
    result["copy_gbps"] = copy_bytes / s["copy"] / 1e9
    for m in ("fwd", "fwd_bwd"):
        op_bytes = nbytes[f"fused/{m}"]
        result[f"fraction_of_copy_bandwidth/{m}"] = (op_bytes / s[f"fused/{m}"]) / (copy_bytes / s["copy"])
        result[f"best_fraction_of_copy_bandwidth/{m}"] = (op_bytes / b[f"fused/{m}"]) / (copy_bytes / b["copy"])
    result["best_fraction_of_clone_bandwidth/fwd_bwd"] = (nbytes["fused/fwd_bwd"] / b["fused/fwd_bwd"]) / (
        copy_bytes / b["clone"]
    )
    # The plain time ratio too: a copy's time over fwd+bwd's (1 would be fwd+bwd as fast as one copy).
    result["copy_time_over_fwd_bwd_time"] = s["copy"] / s["fused/fwd_bwd"]
    result["bytes_model"] = "fwd: inputs + outputs; fwd_bwd: 2 x (inputs + outputs) + gradients"
    return result


def main() -> None:
    args = script_parser("log_mean_exp", __doc__.split("\n")[0]).parse_args()
    result = measure(tuple(args.size), args.threads, args.repeats)
    print_ratios(result)
    if not args.no_record:
        print("recorded in", append_record("log_mean_exp", result))


if __name__ == "__main__":
    main()
