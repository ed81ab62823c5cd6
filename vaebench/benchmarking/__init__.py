"""Benchmarking: the fused ops' one benchmark setup factory (op_benchmark.py: inputs, providers,
modes, bytes moved) and the timing of training steps and of the K = 5000 evaluation
(throughput.py, with `time_rounds`, the one timing loop every speed measurement uses).

Shared by the kernels suite (vaebench.runner.tasks.kernels), benchmarks/ (pytest-benchmark,
the speed gate, asv) and tests/benchmarking/; it measures, it computes no metric of a model.
"""

from .op_benchmark import (
    MODES,
    OP_BENCHMARKS,
    PROVIDERS,
    Bench,
    Case,
    Measurement,
    Mode,
    OpBenchmark,
    OpInputs,
    Provider,
    measure_op,
    setup_bench,
)
from .throughput import Throughput, evaluation_throughput, time_calls, time_rounds, train_step_throughput

__all__ = [
    "MODES",
    "OP_BENCHMARKS",
    "PROVIDERS",
    "Bench",
    "Case",
    "Measurement",
    "Mode",
    "OpBenchmark",
    "OpInputs",
    "Provider",
    "Throughput",
    "evaluation_throughput",
    "measure_op",
    "setup_bench",
    "time_calls",
    "time_rounds",
    "train_step_throughput",
]
