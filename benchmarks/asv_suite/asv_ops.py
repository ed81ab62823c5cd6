"""asv benchmarks of the fused ops: time and peak memory, forward and forward+backward.

Each op's inputs, cases and its "reference" / "compiled" / "fused" calls come from the fused
ops' one setup factory (`vaebench.benchmarking.op_benchmark`: `OP_BENCHMARKS`, `setup_bench`),
with warm-up and compilation in `setup`, outside the timed region. One class per op in
`OP_BENCHMARKS` (`Reparameterize`, `GaussianKl`, `LogMeanExp`, `BernoulliHead`).

    asv run -E existing --bench asv_ops
"""

from __future__ import annotations

import torch

from vaebench.benchmarking.op_benchmark import MODES, OP_BENCHMARKS, PROVIDERS, setup_bench

THREADS = 2  # the kernels' CPU targets are stated for 2 threads


class _Op:
    """One op: params are (provider, mode, case name from the op's cases)."""

    op = ""
    param_names = ["provider", "mode", "case"]  # noqa: RUF012 - asv reads class attributes
    timeout = 300  # torch.compile compiles inside setup

    def setup(self, provider: str, mode: str, case: str) -> None:
        torch.set_num_threads(THREADS)
        c = OP_BENCHMARKS[self.op].cases[case]
        self.bench = setup_bench(self.op, provider, mode, c.size, **c.options)  # type: ignore[arg-type]

    def time_op(self, provider: str, mode: str, case: str) -> None:
        self.bench.call()

    def peakmem_op(self, provider: str, mode: str, case: str) -> None:
        self.bench.call()


def _class_name(op: str) -> str:
    return "".join(part.capitalize() for part in op.split("_"))


for _op, _bench in OP_BENCHMARKS.items():
    globals()[_class_name(_op)] = type(
        _class_name(_op),
        (_Op,),
        {
            "op": _op,
            "params": (list(PROVIDERS), list(MODES), list(_bench.cases)),
        },
    )
