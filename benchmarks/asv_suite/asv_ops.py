"""asv benchmarks of the fused ops: time and peak memory, forward and forward+backward.

Each op's inputs and its "reference" / "compiled" / "fused" calls come from its benchmark file
(`bench_<op>.make_inputs`, `bench_<op>.CASES`) through the benchmarks' one setup factory
(`common.setup`), with warm-up and compilation in `setup`, outside the timed region. An op
whose benchmark file is not there yet has no asv class.

    asv run -E existing --bench asv_ops
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import torch

# The benchmark files (one folder up) are scripts that import their helpers as `common`.
_BENCHMARKS = str(Path(__file__).resolve().parent.parent)
if _BENCHMARKS not in sys.path:
    sys.path.insert(0, _BENCHMARKS)

import common

OPS = ("reparameterize", "gaussian_kl", "log_mean_exp")
THREADS = 2  # the kernels' CPU targets are stated for 2 threads


def _factory(bench: object, case: str) -> tuple[object, tuple[int, ...]]:
    """A CASES entry is a size, or (make_inputs, size) for a case with its own inputs."""
    value = bench.CASES[case]  # type: ignore[attr-defined]
    if isinstance(value, tuple) and value and callable(value[0]):
        return value[0], tuple(value[1])
    return bench.make_inputs, tuple(value)  # type: ignore[attr-defined]


class _Op:
    """One op: params are (provider, mode, case name from the op's CASES)."""

    op = ""
    param_names = ["provider", "mode", "case"]  # noqa: RUF012 - asv reads class attributes
    timeout = 300  # torch.compile compiles inside setup

    def setup(self, provider: str, mode: str, case: str) -> None:
        torch.set_num_threads(THREADS)
        make_inputs, size = _factory(importlib.import_module(f"bench_{self.op}"), case)
        self.bench = common.setup(make_inputs, provider, mode, size)

    def time_op(self, provider: str, mode: str, case: str) -> None:
        self.bench.call()

    def peakmem_op(self, provider: str, mode: str, case: str) -> None:
        self.bench.call()


def _class_name(op: str) -> str:
    return "".join(part.capitalize() for part in op.split("_"))


for _op in OPS:
    try:
        _bench = importlib.import_module(f"bench_{_op}")
    except ModuleNotFoundError:
        continue
    globals()[_class_name(_op)] = type(_class_name(_op), (_Op,), {
        "op": _op,
        "params": (list(common.PROVIDERS), ["fwd", "fwd_bwd"], list(_bench.CASES)),
    })
