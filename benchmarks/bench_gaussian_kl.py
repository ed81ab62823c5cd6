"""Speed of vaebench.ops.gaussian_kl: providers reference / compiled / fused, fwd and fwd+bwd.

    pytest benchmarks/bench_gaussian_kl.py --benchmark-only
    python benchmarks/bench_gaussian_kl.py [--size 4096 256] [--threads 2] [--prior]

The script prints the speedups (fused vs the reference and vs torch.compile of the reference)
and appends them to results/benchmarks/gaussian_kl.jsonl with the environment. Inputs and
cases: `vaebench.benchmarking.op_benchmark.gaussian_kl_inputs` and `OP_BENCHMARKS["gaussian_kl"]`.
Target (2-core CPU, 2 threads, B=4096, D=256 fwd+bwd, standard normal prior): >= 2x eager.
"""

from __future__ import annotations

import pytest
from common import append_record, benchmark_case, print_ratios, ratios, script_parser

from vaebench.benchmarking.op_benchmark import MODES, OP_BENCHMARKS, PROVIDERS

# name -> Case((B, D), options): "target", "train" and "learned-prior" (a prior shared by the batch).
CASES = OP_BENCHMARKS["gaussian_kl"].cases


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("case", list(CASES))
def test_gaussian_kl(benchmark, provider: str, mode: str, case: str) -> None:
    benchmark_case(benchmark, "gaussian_kl", provider, mode, case)


def measure(
    size: tuple[int, ...] = CASES["target"].size,
    threads: int = 2,
    repeats: int = 20,
    prior: bool = False,
) -> dict[str, object]:
    """Ratios of the fused op against the reference and torch.compile of it (see common.ratios)."""
    result = ratios("gaussian_kl", size, threads=threads, repeats=repeats, prior=prior)
    result["prior"] = "shared" if prior else "standard normal"
    return result


def main() -> None:
    parser = script_parser("gaussian_kl", __doc__.split("\n")[0])
    parser.add_argument("--prior", action="store_true", help="a learned prior shared by the batch")
    args = parser.parse_args()
    result = measure(tuple(args.size), args.threads, args.repeats, args.prior)
    print_ratios(result)
    if not args.no_record:
        print("recorded in", append_record("gaussian_kl", result))


if __name__ == "__main__":
    main()
