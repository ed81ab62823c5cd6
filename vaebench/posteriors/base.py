"""The base class every posterior family shares, and the family registry."""

from __future__ import annotations

import math
from abc import ABC
from typing import ClassVar

import torch
from torch import Tensor, nn
from torch.distributions import Distribution

from ..estimators.base import supported_estimators
from ..finite import all_finite
from ..initialization import glorot_init
from ..registry import Registry

__all__ = ["POSTERIORS", "Posterior", "standard_normal_log_prob"]

_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)


def standard_normal_log_prob(eps: Tensor) -> Tensor:
    """log N(eps; 0, I) summed over the last dim: sum_D (-eps^2 / 2 - log(2 pi) / 2).

    Shapes: eps: (..., D) -> (...).
    """
    return (-0.5 * eps.square() - _HALF_LOG_2PI).sum(-1)


class Posterior(nn.Module, ABC):
    """An amortized posterior q(z | x), conditioned on encoder features h: (B, H).

    The family owns the layers that map h to its parameters. One method is required, in
    either of two spellings (distrax's pattern: one primitive, the rest derived):
    - `sample_from_noise(eps, h)`: the reparameterization z = T_h(eps), eps ~ N(0, I), with
      log q(z | h) = log N(eps; 0, I) - log|det dT_h/deps|. `rsample_and_log_prob` is then
      derived (draw eps, transform, and `path_gradient_log_prob` for `path_gradient=True`), and
      the contract test checks the log-determinant against autograd's Jacobian.
    - or `rsample_and_log_prob(h, num_samples)` directly, for a family without a noise transform.
    The diagonal Gaussian and the flows implement both: their `rsample_and_log_prob` overrides
    the derived one to draw through the fused `vaebench.ops.reparameterize` kernel.

    Optional, derived or defaulted:
    - `log_prob(z, h)` where the density of an arbitrary z is tractable (set `has_log_prob = True`);
      `log_prob_stopped(z, h)` (STL, DReG) is derived from it.
    - `kl_to_prior(h)` where an analytic KL exists (`has_analytic_kl()` says so).
    - `to_distribution(h)`: the equivalent `torch.distributions` object, where one exists.

    Args:
        feature_dim: H, the size of the encoder features.
        latent_dim: D, the size of z.
    """

    has_log_prob: ClassVar[bool] = False

    def __init__(self, feature_dim: int, latent_dim: int) -> None:
        super().__init__()
        for arg, value in (("feature_dim", feature_dim), ("latent_dim", latent_dim)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{type(self).__name__}: {arg} must be an int >= 1, got {value!r}")
        self.feature_dim = feature_dim
        self.latent_dim = latent_dim
        cls = type(self)
        derived = cls.rsample_and_log_prob is Posterior.rsample_and_log_prob
        if derived and cls.sample_from_noise is Posterior.sample_from_noise:
            raise TypeError(
                f"{cls.__name__} must implement sample_from_noise(eps, h) (rsample_and_log_prob is then "
                "derived) or rsample_and_log_prob(h, num_samples): a posterior family needs one of them"
            )

    def reset_parameters(self) -> None:
        """The protocol's init: Glorot-uniform weights and zero biases on every layer, the
        parameter heads included (Burda et al. 2015). A family whose parameters at that init
        would move q away from its base (a flow off the identity, a full covariance with
        random off-diagonals) overrides this to start at the base; every concrete family calls
        it at the end of its `__init__`. The contract test checks q at init against the base.
        """
        glorot_init(self)

    def rsample_and_log_prob(
        self, h: Tensor, num_samples: int = 1, *, path_gradient: bool = False
    ) -> tuple[Tensor, Tensor]:
        """K reparameterized samples and their log density; derived from `sample_from_noise`.

        With `path_gradient`, log_q reaches the variational parameters only through z (Roeder
        et al. 2017); families without `log_prob` raise for it (see `path_gradient_log_prob`).

        Shapes: h: (B, H) -> z: (K, B, D), log_q: (K, B).
        """
        self.check_num_samples(num_samples)
        self.check_features(h)
        eps = torch.randn((num_samples, h.shape[0], self.latent_dim), dtype=h.dtype, device=h.device)
        z, log_q = self.sample_from_noise(eps, h)
        if path_gradient:
            log_q = self.path_gradient_log_prob(z, h)
        return z, log_q

    def log_prob(self, z: Tensor, h: Tensor) -> Tensor:
        """log q(z | h). Shapes: z: (K, B, D), h: (B, H) -> (K, B)."""
        raise NotImplementedError(self._no_log_prob_message("log_prob(z, h)"))

    @classmethod
    def has_analytic_kl(cls) -> bool:
        """Whether the family has an analytic KL to the standard normal (overrides `kl_to_prior`)."""
        return cls.kl_to_prior is not Posterior.kl_to_prior

    @classmethod
    def supported_estimators(cls) -> list[str]:
        """The registered estimators this family supports, from its capabilities and the registry."""
        return supported_estimators(has_log_prob=cls.has_log_prob, has_analytic_kl=cls.has_analytic_kl())

    def require_log_prob(self, needed_by: str) -> None:
        """The one log-prob guard: raise a ValueError when this family has no tractable log_prob,
        naming `needed_by`, the family, the estimators it does support and the families with one."""
        if not self.has_log_prob:
            raise ValueError(self._no_log_prob_message(needed_by))

    def _no_log_prob_message(self, needed_by: str) -> str:
        estimators = ", ".join(f"'{name}'" for name in self.supported_estimators())
        families = ", ".join(n for n in POSTERIORS.names() if POSTERIORS.get(n).has_log_prob)
        return (
            f"{needed_by} needs log q(z | x) of an arbitrary z, and {type(self).__name__} has none (no "
            f"tractable log_prob: no cheap inverse); use an estimator this family supports ({estimators}), "
            f"or a family with log_prob ({families})"
        )

    def kl_to_prior(self, h: Tensor) -> Tensor | None:
        """Analytic KL(q(z | h) || N(0, I)) with shape (B,), or None where there is none."""
        return None

    def rsample_log_prob_and_kl(self, h: Tensor, num_samples: int = 1) -> tuple[Tensor, Tensor, Tensor | None]:
        """`rsample_and_log_prob(h, K)` and `kl_to_prior(h)` in one call (the analytic-KL ELBO's needs).

        The same values as the two calls; a family whose samples and KL share its parameters
        (the diagonal Gaussian's mu and logvar) overrides it to compute them, and check h, once.

        Shapes: h: (B, H) -> z: (K, B, D), log_q: (K, B), kl: (B,) or None.
        """
        z, log_q = self.rsample_and_log_prob(h, num_samples)
        return z, log_q, self.kl_to_prior(h)

    def path_gradient_through_z(self, like: Tensor) -> bool:
        """Whether, with `path_gradient=True`, log q's gradient reaches the parameters through
        the returned z in the autograd graph (so a hook on z scales it, as DReG's one-pass form
        needs). True for families that evaluate the stopped log q from z; a fused kernel that
        computes the path derivative internally (the diagonal Gaussian's) is not. `like`: a tensor
        with the dtype and device of the samples (the choice of kernel depends on them)."""
        return True

    def sample_from_noise(self, eps: Tensor, h: Tensor) -> tuple[Tensor, Tensor]:
        """z = T_h(eps) and log q(z | h) = log N(eps; 0, I) - log|det dT_h/deps|.

        Shapes: eps: (K, B, D), h: (B, H) -> z: (K, B, D), log_q: (K, B).
        """
        raise NotImplementedError(
            f"{type(self).__name__} does not implement sample_from_noise(eps, h); a "
            "registered family must, so that the contract test can check its log-determinant"
        )

    def to_distribution(self, h: Tensor) -> Distribution | None:
        """The equivalent `torch.distributions` object (batch shape (B,), event (D,)), or None."""
        return None

    def log_prob_stopped(self, z: Tensor, h: Tensor, *, stop_features: bool = True) -> Tensor:
        """log q(z | h) with the variational parameters stopped; gradients reach z (and h when
        `stop_features` is False) only.

        The one "stopped log q": the term STL (Roeder et al. 2017) and DReG (Tucker et al. 2018)
        evaluate, the family's own `log_prob` run through `torch.func.functional_call` with
        detached parameters. `stop_features=False` is for features computed from an earlier latent
        through stopped parameters (a hierarchy), whose path to z1 must stay open.

        Shapes: z: (K, B, D), h: (B, H) -> (K, B).
        """
        self.require_log_prob("log_prob_stopped")
        stopped = {f"posterior.{name}": p.detach() for name, p in self.named_parameters()}
        return torch.func.functional_call(_LogProbOf(self), stopped, (z, h.detach() if stop_features else h))

    def path_gradient_log_prob(self, z: Tensor, h: Tensor) -> Tensor:
        """log q(z | h) for `path_gradient=True`: `log_prob_stopped`, named for the error."""
        self.require_log_prob("rsample_and_log_prob(..., path_gradient=True)")
        return self.log_prob_stopped(z, h)

    # Input checks shared by the families: each names the argument, what was expected and
    # what came. They run once per call, not per layer.

    def family_name(self) -> str:
        """The registry name of this family (the class name if it is not registered)."""
        for entry in POSTERIORS:
            if entry.obj is type(self):
                return entry.name
        return type(self).__name__

    def check_features(self, h: Tensor) -> None:
        """h must be a finite floating (B, H) tensor on the parameters' device and dtype.

        The finiteness check is one reduction and one device-to-host sync per call (like
        torch.distributions' validate_args); it names the encoder as the source of a NaN
        before any posterior arithmetic can be blamed for it.
        """
        name = type(self).__name__
        if not isinstance(h, Tensor):
            raise TypeError(f"{name}: h must be a torch.Tensor (B, H), got {type(h).__name__}")
        if h.dim() != 2 or h.shape[1] != self.feature_dim:
            raise ValueError(
                f"{name}: h must be (B, H={self.feature_dim}), got {tuple(h.shape)}; "
                "flatten extra batch dimensions into B"
            )
        if h.shape[0] < 1:
            raise ValueError(f"{name}: h must hold at least one example, got {tuple(h.shape)}")
        self._check_like_parameters("h", h)
        if not all_finite(h):
            raise ValueError(
                f"{name}: h (the encoder features) holds NaN or inf; the encoder diverged upstream of the posterior"
            )

    def check_latent(self, arg: str, z: Tensor, h: Tensor) -> None:
        """z (or eps) must be a floating (K, B, D) tensor matching h's batch."""
        name = type(self).__name__
        if not isinstance(z, Tensor):
            raise TypeError(f"{name}: {arg} must be a torch.Tensor (K, B, D), got {type(z).__name__}")
        expected = (h.shape[0], self.latent_dim)
        if z.dim() != 3 or tuple(z.shape[1:]) != expected:
            raise ValueError(
                f"{name}: {arg} must be (K, B={expected[0]}, D={expected[1]}), got "
                f"{tuple(z.shape)}; add a leading sample dim with {arg}.unsqueeze(0)"
            )
        self._check_like_parameters(arg, z)

    @staticmethod
    def check_num_samples(num_samples: int) -> None:
        """num_samples (K) must be an int >= 1."""
        if isinstance(num_samples, bool) or not isinstance(num_samples, int) or num_samples < 1:
            raise ValueError(f"num_samples (K) must be an int >= 1, got {num_samples!r}")

    def _check_like_parameters(self, arg: str, x: Tensor) -> None:
        name = type(self).__name__
        if not x.is_floating_point():
            raise TypeError(f"{name}: {arg} must be a floating tensor, got {x.dtype}")
        p = next(self.parameters(), None)
        if p is not None and (x.dtype != p.dtype or x.device != p.device):
            raise TypeError(
                f"{name}: {arg} is {x.dtype} on {x.device} but the parameters are {p.dtype} "
                f"on {p.device}; move one with .to(...)"
            )


class _LogProbOf(nn.Module):
    """Makes `log_prob` the forward of a module, which `functional_call` needs."""

    def __init__(self, posterior: Posterior) -> None:
        super().__init__()
        self.posterior = posterior

    def forward(self, z: Tensor, h: Tensor) -> Tensor:
        return self.posterior.log_prob(z, h)


POSTERIORS: Registry[type[Posterior]] = Registry("posterior")
