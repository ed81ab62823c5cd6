"""The base class every posterior family shares, and the family registry."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

from torch import Tensor, nn

from ..registry import Registry

__all__ = ["POSTERIORS", "Posterior"]


class Posterior(nn.Module, ABC):
    """An amortized posterior q(z | x), conditioned on encoder features h: (B, H).

    The family owns the layers that map h to its parameters. One method is required:
    `rsample_and_log_prob`. `log_prob` is implemented where the density of an arbitrary z is
    tractable (set `has_log_prob = True`); `kl_to_prior` where an analytic KL exists.

    Args:
        feature_dim: H, the size of the encoder features.
        latent_dim: D, the size of z.
    """

    has_log_prob: ClassVar[bool] = False

    def __init__(self, feature_dim: int, latent_dim: int) -> None:
        super().__init__()
        if feature_dim < 1 or latent_dim < 1:
            raise ValueError(
                f"{type(self).__name__}: feature_dim and latent_dim must be >= 1, "
                f"got {feature_dim} and {latent_dim}"
            )
        self.feature_dim = feature_dim
        self.latent_dim = latent_dim

    @abstractmethod
    def rsample_and_log_prob(self, h: Tensor, num_samples: int = 1) -> tuple[Tensor, Tensor]:
        """K reparameterized samples and their log density.

        Shapes: h: (B, H) -> z: (K, B, D), log_q: (K, B).
        """

    def log_prob(self, z: Tensor, h: Tensor) -> Tensor:
        """log q(z | h). Shapes: z: (K, B, D), h: (B, H) -> (K, B)."""
        raise NotImplementedError(
            f"{type(self).__name__} has no tractable log_prob(z); estimators that need it "
            "(stl, dreg) cannot use this family: use 'elbo' or 'iwae'"
        )

    def kl_to_prior(self, h: Tensor) -> Tensor | None:
        """Analytic KL(q(z | h) || N(0, I)) with shape (B,), or None where there is none."""
        return None


POSTERIORS: Registry[type[Posterior]] = Registry("posterior")
