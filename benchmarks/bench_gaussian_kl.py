"""Speed of vaebench.ops.gaussian_kl: providers reference / compiled / fused, fwd and fwd+bwd.

    pytest benchmarks/bench_gaussian_kl.py --benchmark-only
    python benchmarks/bench_gaussian_kl.py [--size 4096 256] [--threads 2] [--prior]

The script prints the speedups (fused vs the reference and vs torch.compile of the reference)
and appends them to results/benchmarks/gaussian_kl.jsonl with the environment.
Target (2-core CPU, 2 threads, B=4096, D=256 fwd+bwd, standard normal prior): >= 2x eager.
"""

from __future__ import annotations

import argparse

import pytest
import torch
from common import PROVIDERS, append_record, ratios, setup

from vaebench.ops import gaussian_kl, gaussian_kl_reference


def make_inputs(size: tuple[int, ...], dtype: torch.dtype, device: torch.device):
    """Standard normal prior: mu, logvar (B, D)."""
    B, D = size
    mu, logvar = (torch.randn(B, D, dtype=dtype, device=device).requires_grad_() for _ in range(2))
    return gaussian_kl_reference, gaussian_kl, [mu, logvar]


def make_inputs_prior(size: tuple[int, ...], dtype: torch.dtype, device: torch.device):
    """A learned prior shared by the batch: mu, logvar (B, D); prior_mu, prior_logvar (D,)."""
    B, D = size
    mu, logvar = (torch.randn(B, D, dtype=dtype, device=device).requires_grad_() for _ in range(2))
    pm, pl = (torch.randn(D, dtype=dtype, device=device).requires_grad_() for _ in range(2))
    return gaussian_kl_reference, gaussian_kl, [mu, logvar, pm, pl]


# name -> (input factory, (B, D)).
CASES = {
    "target": (make_inputs, (4096, 256)),
    "train": (make_inputs, (256, 64)),
    "learned-prior": (make_inputs_prior, (4096, 256)),
}


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("mode", ["fwd", "fwd_bwd"])
@pytest.mark.parametrize("case", list(CASES))
def test_gaussian_kl(benchmark, provider: str, mode: str, case: str) -> None:
    torch.set_num_threads(2)
    factory, size = CASES[case]
    bench = setup(factory, provider, mode, size)
    benchmark.group = f"gaussian_kl {case} {mode}"
    benchmark.extra_info.update(size=size, threads=torch.get_num_threads(), nbytes=bench.nbytes)
    benchmark(bench.call)


def measure(
    size: tuple[int, int] = CASES["target"][1],
    threads: int = 2,
    repeats: int = 20,
    prior: bool = False,
) -> dict[str, object]:
    """Ratios of the fused op against the reference and torch.compile of it (see common.ratios)."""
    result = ratios(
        make_inputs_prior if prior else make_inputs,
        size,
        threads=threads,
        repeats=repeats,
    )
    result["prior"] = "shared" if prior else "standard normal"
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=int, nargs=2, default=CASES["target"][1], metavar=("B", "D"))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--prior", action="store_true", help="a learned prior shared by the batch")
    parser.add_argument("--no-record", action="store_true", help="do not append to results/benchmarks")
    args = parser.parse_args()
    result = measure(tuple(args.size), args.threads, args.repeats, args.prior)
    for k, v in result["seconds"].items():
        print(f"{k:28s} {v * 1e3:9.3f} ms  {result['gbps'][k]:6.2f} GB/s")
    for k, v in result.items():
        if k.startswith(("speedup", "best_speedup")) or k == "loadavg_1min":
            print(f"{k:40s} {v:6.2f}")
    if not args.no_record:
        print("recorded in", append_record("gaussian_kl", result))


if __name__ == "__main__":
    main()
