"""Evaluation: NLL by importance sampling (K = 5000, streamed), bounds and bits/dim, active
units, gradient variance/SNR/ESS of estimators, throughput, the fused ops' benchmark setup
factory, and their plots."""

from .active_units import ActiveUnitsResult, active_units
from .batching import Data, iter_batches, num_examples, take_examples
from .gaps import GapsResult, inference_gaps
from .gradient_stats import (
    GradientStats,
    GroupGradientStats,
    SNRSlope,
    gradient_stats,
    gradient_stats_sweep,
    jackknife_se,
    snr_local_slopes,
    snr_slope,
)
from .likelihood import LikelihoodResult, estimate_log_likelihood
from .log_weight_accumulator import LogWeightAccumulator
from .metrics import BoundResult, bits_per_dim, evaluate_bounds
from .op_benchmark import OP_BENCHMARKS, Bench, Measurement, OpBenchmark, OpInputs, measure_op, setup_bench
from .plots import plot_gradient_stats
from .throughput import Throughput, evaluation_throughput, time_rounds, train_step_throughput

__all__ = [
    "OP_BENCHMARKS",
    "ActiveUnitsResult",
    "Bench",
    "BoundResult",
    "Data",
    "GapsResult",
    "GradientStats",
    "GroupGradientStats",
    "LikelihoodResult",
    "LogWeightAccumulator",
    "Measurement",
    "OpBenchmark",
    "OpInputs",
    "SNRSlope",
    "Throughput",
    "active_units",
    "bits_per_dim",
    "estimate_log_likelihood",
    "evaluate_bounds",
    "evaluation_throughput",
    "gradient_stats",
    "gradient_stats_sweep",
    "inference_gaps",
    "iter_batches",
    "jackknife_se",
    "measure_op",
    "num_examples",
    "plot_gradient_stats",
    "setup_bench",
    "snr_local_slopes",
    "snr_slope",
    "take_examples",
    "time_rounds",
    "train_step_throughput",
]
