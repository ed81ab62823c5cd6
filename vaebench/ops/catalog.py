"""`OPS`: every fused op and its named parts, the one list the rest derives from.

An op is a feature with the same parts everywhere (STYLE.md "Ops"): its schema lines in
`csrc/schemas.cpp`, a CPU kernel in `csrc/<op>.cpp` and a CUDA kernel in `csrc/cuda/<op>.cu`
(both `TORCH_LIBRARY_IMPL`), the typed wrapper with its fake kernels and autograd in
`vaebench/ops/<op>.py`, `<function>_reference` in `vaebench/ops/reference.py`, the tests in
`tests/ops/test_<op>.py` and the benchmark in `benchmarks/bench_<op>.py`.

CI's kernel check (`.ci/run`), `tests/ops/test_backend.py`, the kernels suite's default op list
(`vaebench.config`) and the speed gate's thresholds are checked against or built from this list;
`tests/ops/test_catalog.py` proves that every op has every part. Adding an op adds one entry here.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

__all__ = ["OPS", "OpParts", "op_names"]


@dataclass(frozen=True)
class OpParts:
    """One fused op and the names of its parts.

    Attributes:
        name: the op's name: its files are `csrc/<name>.cpp`, `csrc/cuda/<name>.cu`,
            `vaebench/ops/<name>.py`, `tests/ops/test_<name>.py`, `benchmarks/bench_<name>.py`.
        kernels: the dispatcher ops (`torch.ops.vaebench.<kernel>`) with a CPU and a CUDA kernel
            and a fake kernel, forward and backward.
        functions: the public Python functions in `vaebench.ops`, each with a
            `<function>_reference` in `vaebench.ops.reference`.
    """

    name: str
    kernels: tuple[str, ...]
    functions: tuple[str, ...]

    def files(self, root: Path) -> dict[str, Path]:
        """The op's source files under a checkout `root`, by part."""
        return {
            "cpu kernel": root / "csrc" / f"{self.name}.cpp",
            "cuda kernel": root / "csrc" / "cuda" / f"{self.name}.cu",
            "wrapper": root / "vaebench" / "ops" / f"{self.name}.py",
            "test": root / "tests" / "ops" / f"test_{self.name}.py",
            "benchmark": root / "benchmarks" / f"bench_{self.name}.py",
        }


OPS: tuple[OpParts, ...] = (
    OpParts("reparameterize", ("reparameterize", "reparameterize_backward"), ("reparameterize",)),
    OpParts("gaussian_kl", ("gaussian_kl", "gaussian_kl_backward"), ("gaussian_kl",)),
    OpParts(
        "log_mean_exp",
        ("log_mean_exp", "log_mean_exp_backward", "importance_weights"),
        ("log_mean_exp", "importance_weights"),
    ),
    OpParts("bernoulli_head", ("bernoulli_head", "bernoulli_head_backward"), ("bernoulli_head",)),
)


def op_names() -> list[str]:
    """The ops' names in `OPS` order (the kernels suite's default `ops`)."""
    return [op.name for op in OPS]
