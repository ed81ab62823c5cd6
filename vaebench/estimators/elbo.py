"""The ELBO with the analytic KL term: `elbo`."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import TYPE_CHECKING

from torch import Tensor

from ..log_weights import LogWeights
from .base import ESTIMATORS, Estimator, _finite_float

if TYPE_CHECKING:
    from ..models.vae import VAE

__all__ = ["ELBO"]


@ESTIMATORS.register("elbo", "ELBO with the analytic KL(q || p) (diagonal Gaussian q, N(0, I) prior)")
class ELBO(Estimator):
    """The evidence lower bound with a Monte Carlo reconstruction term and the analytic KL.

        ELBO(x) = 1/K sum_k log p(x | z_k) - KL(q(z | x) || p(z)),   z_k ~ q(z | x)

    Gradients are reparameterized. The KL is `VAE.kl`, computed from the same encoder pass (available for the diagonal Gaussian
    with the standard-normal prior); models without it raise and point to 'elbo_mc'.

    Args:
        num_samples: K draws for the reconstruction term.
        kl_weight: beta in E[log p(x | z)] - beta KL, for KL warm-up (the trainer may set
            `estimator.kl_weight` each step); `bound` always reports the beta = 1 ELBO.

    Shapes: x: (B, *event) -> bound: (B,), log_w: (K, B).

    References:
        Auto-Encoding Variational Bayes, Kingma, Welling, 2013, arXiv:1312.6114.
    """

    name = "elbo"
    needs_analytic_kl = True

    def __init__(self, num_samples: int = 1, kl_weight: float = 1.0) -> None:
        super().__init__(num_samples)
        self.kl_weight = _finite_float(kl_weight, "elbo: kl_weight")

    def log_weights(self, model: VAE, x: Tensor) -> LogWeightsAndKL:
        """The weights and the analytic KL from one encoder pass; raises, pointing to 'elbo_mc',
        where the model has no analytic KL. Shapes: x: (B, *event) -> (K, B) terms, kl: (B,)."""
        lw, kl = model.log_weights_and_kl(x, self.num_samples)
        if kl is None:
            raise ValueError(
                f"estimator 'elbo' needs an analytic KL(q || p), which {type(model).__name__} with the "
                f"{type(model.posterior).__name__} family does not have: use 'elbo_mc' (Monte Carlo KL)"
            )
        return LogWeightsAndKL(**{name: getattr(lw, name) for name in _LOG_WEIGHTS_FIELDS}, kl=kl)

    def objective(self, model: VAE, x: Tensor, lw: LogWeights) -> tuple[Tensor, Tensor]:
        assert isinstance(lw, LogWeightsAndKL) and lw.kl is not None  # from log_weights above
        reconstruction = lw.log_px_z.mean(0)
        bound = reconstruction - lw.kl
        if self.kl_weight == 1.0:  # the bound itself: no second copy of it in the graph
            return bound, bound
        return bound, reconstruction - self.kl_weight * lw.kl


@dataclass
class LogWeightsAndKL(LogWeights):
    """`LogWeights` with the analytic KL(q || p): (B,), reported as the component "kl"."""

    kl: Tensor | None = None

    def components(self) -> dict[str, Tensor]:
        assert self.kl is not None
        return {**super().components(), "kl": self.kl}


# Read once: dataclasses.fields walks the class on every call, once per training step here.
_LOG_WEIGHTS_FIELDS = tuple(f.name for f in fields(LogWeights))
