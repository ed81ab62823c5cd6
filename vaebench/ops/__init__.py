"""Fused VAE ops (CPU and CUDA kernels registered as torch custom ops) and their references.

Each op falls back to its pure-PyTorch reference when the compiled library is missing;
`backend()` says which path is live.
"""

from .bernoulli_head import bernoulli_head
from .gaussian_kl import gaussian_kl
from .library import backend, build_info, fused_available, load_error
from .log_mean_exp import importance_weights, log_mean_exp
from .reference import (
    bernoulli_head_reference,
    gaussian_kl_reference,
    importance_weights_reference,
    log_mean_exp_reference,
    reparameterize_reference,
)
from .reparameterize import reparameterize

__all__ = [
    "backend",
    "bernoulli_head",
    "bernoulli_head_reference",
    "build_info",
    "fused_available",
    "gaussian_kl",
    "gaussian_kl_reference",
    "importance_weights",
    "importance_weights_reference",
    "load_error",
    "log_mean_exp",
    "log_mean_exp_reference",
    "reparameterize",
    "reparameterize_reference",
]
