"""Evaluation: NLL by importance sampling (K = 5000, streamed), bounds and bits/dim, active
units, gradient variance/SNR/ESS of estimators, and their plots. (Speed measurements are
vaebench.benchmarking's.)"""

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
from .plots import plot_gradient_stats

__all__ = [
    "ActiveUnitsResult",
    "BoundResult",
    "Data",
    "GapsResult",
    "GradientStats",
    "GroupGradientStats",
    "LikelihoodResult",
    "LogWeightAccumulator",
    "SNRSlope",
    "active_units",
    "bits_per_dim",
    "estimate_log_likelihood",
    "evaluate_bounds",
    "gradient_stats",
    "gradient_stats_sweep",
    "inference_gaps",
    "iter_batches",
    "jackknife_se",
    "num_examples",
    "plot_gradient_stats",
    "snr_local_slopes",
    "snr_slope",
    "take_examples",
]
