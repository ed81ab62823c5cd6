"""The base class every gradient estimator shares, and the estimator registry."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from torch import Tensor

from ..registry import Registry

if TYPE_CHECKING:
    from ..models.vae import VAE

__all__ = ["ESTIMATORS", "Estimate", "Estimator"]


@dataclass
class Estimate:
    """What an estimator returns for a batch.

    bound: (B,) the per-example value of the bound (for reporting; higher is better).
    surrogate: () a scalar loss whose gradient is the estimator's gradient of -mean(bound)
        (call `.backward()` on it).
    log_w: (K, B) log importance weights log p(x, z_k) - log q(z_k | x), when computed.
    """

    bound: Tensor
    surrogate: Tensor
    log_w: Tensor | None = None


class Estimator(ABC):
    """A configured gradient estimator (`num_samples` and friends set in the constructor)."""

    name: ClassVar[str]
    # True when the estimator needs log q(z) with the variational parameters stopped
    # (STL, DReG): only families with `has_log_prob` (or the diagonal Gaussian) support it.
    needs_log_prob: ClassVar[bool] = False

    def __init__(self, num_samples: int = 1) -> None:
        if num_samples < 1:
            raise ValueError(f"{type(self).__name__}: num_samples must be >= 1, got {num_samples}")
        self.num_samples = num_samples

    @abstractmethod
    def __call__(self, model: VAE, x: Tensor) -> Estimate:
        """Estimate the bound for a batch x: (B, *event) under `model`."""


ESTIMATORS: Registry[type[Estimator]] = Registry("estimator")
