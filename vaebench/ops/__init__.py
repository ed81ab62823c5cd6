"""Fused VAE ops (CPU and CUDA kernels registered as torch custom ops) and their references.

Each op falls back to its pure-PyTorch reference when the compiled library is missing;
`backend()` says which path is live; `FUSED_DTYPES` which dtypes have kernels on which device.
"""

from .bernoulli_head import bernoulli_head
from .catalog import OPS, OpParts, op_names
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
from .support import FUSED_DTYPES, allocation_limit

__all__ = [
    "FUSED_DTYPES",
    "OPS",
    "OpParts",
    "allocation_limit",
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
    "op_names",
    "reparameterize",
    "reparameterize_reference",
]
