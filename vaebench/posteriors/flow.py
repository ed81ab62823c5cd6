"""The shared frame of the normalizing-flow posteriors: a diagonal Gaussian base, then layers."""

from __future__ import annotations

from abc import abstractmethod
from typing import Any

from torch import Tensor

from ..ops import reparameterize
from ..ops.reference import reparameterize_reference
from .base import Posterior
from .diagonal import DiagonalGaussian
from .nonfinite import check_finite

__all__ = ["AmortizedFlow"]


class AmortizedFlow(Posterior):
    """z0 ~ N(mu(h), diag exp(logvar(h))), then z_T = f_T o ... o f_1(z0) with layer parameters
    computed from h (amortized, as in the Sylvester-flow paper's setting).

        log q(z_T) = log q0(z0) - sum_t log|det df_t/dz_{t-1}|

    A family implements `flow_params(h)` (every layer's parameters from h, once per call) and
    `layer(t, z, params)` (one step and its log|det|); neither is called when num_flows = 0,
    so a family may skip building its layers then. The base sample goes through the fused
    `vaebench.ops.reparameterize`. Under `detect_nonfinite()` z and log|det| are checked
    after every layer. `num_flows = 0` is the diagonal Gaussian.

    Shapes: h: (B, H) -> z: (K, B, D), log_q: (K, B); a layer maps z: (K, B, D) to
    z: (K, B, D) and log_det: (K, B).

    References:
        Variational Inference with Normalizing Flows. Rezende, Mohamed, 2015. arXiv:1505.05770.
        Sylvester Normalizing Flows for Variational Inference. van den Berg, Hasenclever,
            Tomczak, Welling, 2018. arXiv:1803.05649.
    """

    def __init__(self, feature_dim: int, latent_dim: int, num_flows: int) -> None:
        super().__init__(feature_dim, latent_dim)
        if isinstance(num_flows, bool) or not isinstance(num_flows, int) or num_flows < 0:
            raise ValueError(f"{type(self).__name__}: num_flows must be an int >= 0, got {num_flows!r}")
        self.num_flows = num_flows
        self.base = DiagonalGaussian(feature_dim, latent_dim)

    @abstractmethod
    def flow_params(self, h: Tensor) -> Any:
        """Every layer's parameters from h: (B, H), in whatever structure `layer` reads."""

    @abstractmethod
    def layer(self, index: int, z: Tensor, params: Any) -> tuple[Tensor, Tensor]:
        """Layer `index`: z: (K, B, D) -> (f(z): (K, B, D), log|det df/dz|: (K, B))."""

    def transform(self, z0: Tensor, h: Tensor) -> tuple[Tensor, Tensor]:
        """All layers: z0: (K, B, D) -> (z_T: (K, B, D), sum_t log|det|: (K, B))."""
        log_det = z0.new_zeros(z0.shape[:-1])
        z = z0
        if self.num_flows == 0:
            return z, log_det
        params = self.flow_params(h)
        family = self.family_name()
        for t in range(self.num_flows):
            z, ld = self.layer(t, z, params)
            check_finite(z, family, t, "z")
            check_finite(ld, family, t, "log|det|")
            log_det = log_det + ld
        return z, log_det

    def rsample_and_log_prob(
        self, h: Tensor, num_samples: int = 1, *, path_gradient: bool = False
    ) -> tuple[Tensor, Tensor]:
        self.check_num_samples(num_samples)
        self.check_features(h)
        if path_gradient:
            self.require_log_prob("rsample_and_log_prob(..., path_gradient=True)")
        mu, logvar = self.base.params(h, self.family_name())
        z0, log_q0 = reparameterize(mu, logvar, num_samples)
        z, log_det = self.transform(z0, h)
        if path_gradient:
            return z, self.path_gradient_log_prob(z, h)
        return z, log_q0 - log_det

    def sample_from_noise(self, eps: Tensor, h: Tensor) -> tuple[Tensor, Tensor]:
        self.check_features(h)
        self.check_latent("eps", eps, h)
        mu, logvar = self.base.params(h, self.family_name())
        z0, log_q0 = reparameterize_reference(mu, logvar, eps)
        z, log_det = self.transform(z0, h)
        return z, log_q0 - log_det

    def extra_repr(self) -> str:
        return f"feature_dim={self.feature_dim}, latent_dim={self.latent_dim}, num_flows={self.num_flows}"
