"""The base class every gradient estimator shares, and the estimator registry."""

from __future__ import annotations

import inspect
import math
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import torch
from torch import Tensor

from ..errors import NonFiniteError, NonFiniteEstimateError
from ..log_weights import TERMS
from ..registry import Registry

if TYPE_CHECKING:
    from ..log_weights import LogWeights
    from ..models.vae import VAE

__all__ = [
    "ESTIMATORS",
    "Estimate",
    "Estimator",
    "NonFiniteError",
    "NonFiniteEstimateError",
    "build_estimator",
    "check_finite",
    "supported_estimators",
    "surrogate_with_value",
]


@dataclass
class Estimate:
    """What an estimator returns for a batch.

    bound: (B,) the per-example value of the bound (for reporting; higher is better).
    surrogate: () a scalar loss whose gradient is the estimator's gradient of -mean(bound)
        (call `.backward()` on it).
    log_w: (K, B) log importance weights log p(x, z_k) - log q(z_k | x), when computed.
    components: the named terms the bound was built from (e.g. "log_px_z", "log_pz",
        "log_q", "kl"), so that a non-finite bound can be traced to the term that broke.
    """

    bound: Tensor
    surrogate: Tensor
    log_w: Tensor | None = None
    components: dict[str, Tensor] = field(default_factory=dict)


class Estimator(ABC):
    """A configured gradient estimator (`num_samples` and friends set in the constructor).

    Calling one runs three steps, the seam every estimator shares (the pyro.infer pattern):

        log_weights(model, x) -> LogWeights         K draws and their terms (overridable)
        objective(model, x, lw) -> (bound, obj)    the one required method
        Estimate(bound, surrogate_with_value(-mean(obj), bound), log_w, components)

    `obj` is the per-example quantity whose gradient is the estimator's (the bound itself for a
    reparameterized bound, a surrogate for DReG or the score function). A new estimator is one
    module with `objective`; `stop_q_params = True` evaluates log q with the variational
    parameters stopped (STL, DReG); the score function overrides `log_weights` (no
    reparameterization).
    """

    name: ClassVar[str]
    # True when log q is evaluated with the variational parameters stopped (STL, DReG).
    stop_q_params: ClassVar[bool] = False
    # True when the estimator needs log q(z) with the variational parameters stopped
    # (STL, DReG): only families with `has_log_prob` (or the diagonal Gaussian) support it.
    needs_log_prob: ClassVar[bool] = False
    # True when the estimator needs the analytic KL(q || p) (the 'elbo'): only families with
    # `kl_to_prior` (`Posterior.has_analytic_kl()`) support it.
    needs_analytic_kl: ClassVar[bool] = False

    def __init__(self, num_samples: int = 1) -> None:
        if isinstance(num_samples, bool) or not isinstance(num_samples, int) or num_samples < 1:
            raise ValueError(
                f"{type(self).__name__}: num_samples must be an int >= 1 (K, draws per example), got {num_samples!r}"
            )
        self.num_samples = num_samples

    def __call__(self, model: VAE, x: Tensor) -> Estimate:
        """Estimate the bound for a batch x: (B, *event) under `model`.

        Shapes: x: (B, *event) -> bound: (B,), surrogate: (), log_w: (K, B).
        """
        self.require_log_prob(model)
        lw = self.log_weights(model, x)
        bound, objective = self.objective(model, x, lw)
        grad_term = -objective.mean()
        return Estimate(
            bound=bound.detach(),
            # A reparameterized bound is its own objective: -mean(bound) already has the value
            # surrogate_with_value would give it (bit for bit), without its two extra graph nodes.
            surrogate=grad_term if objective is bound else surrogate_with_value(grad_term, bound),
            log_w=lw.log_w.detach(),
            components=lw.components(),
        )

    def log_weights(self, model: VAE, x: Tensor) -> LogWeights:
        """K reparameterized draws per example and their terms (`model.log_weights`).

        Shapes: x: (B, *event) -> LogWeights with log_w etc. (K, B).
        """
        return model.log_weights(x, self.num_samples, stop_q_params=self.stop_q_params)

    @abstractmethod
    def objective(self, model: VAE, x: Tensor, lw: LogWeights) -> tuple[Tensor, Tensor]:
        """(bound, objective), each (B,): the bound to report and the per-example quantity whose
        gradient (through `surrogate_with_value`) is this estimator's gradient of the bound."""

    def require_log_prob(self, model: VAE) -> None:
        """Raise a ValueError naming the estimator, the family and the estimators it supports when
        this estimator needs log q(z) of an arbitrary z and a posterior of the model has none."""
        if not self.needs_log_prob or model.has_log_prob:
            return
        # The posteriors are found by their class flag (duck-typed: the estimators do not import
        # the posteriors package, which imports this module for `supported_estimators`).
        for module in model.modules():
            if getattr(type(module), "has_log_prob", None) is False:
                # A Posterior (the posteriors package imports this module, so not its type here); mypy reads
                # nn.Module.__getattr__'s Tensor | Module.
                module.require_log_prob(f"estimator '{self.name}'")  # type: ignore[operator]
        raise ValueError(
            f"estimator '{self.name}' needs log q(z | x) of an arbitrary z, which {type(model).__name__} has not; "
            f"use one of {', '.join(supported_estimators(has_log_prob=False, has_analytic_kl=False))}"
        )

    def __repr__(self) -> str:
        options = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not k.startswith("_"))
        return f"{type(self).__name__}({options})"


def check_finite(estimate: Estimate, step: int | None = None) -> None:
    """Raise `NonFiniteEstimateError` (a `NonFiniteError`) naming the first term of `estimate` that
    holds a NaN or +-inf.

    The components are checked first (the most specific), then log_w, bound and surrogate.
    A -inf log weight (a zero weight) inside a finite bound is allowed. Costs one reduction
    and one device sync per term.
    """
    terms: list[tuple[str, Tensor | None]] = [*estimate.components.items()]
    terms += [("log_w", estimate.log_w), ("bound", estimate.bound), ("surrogate", estimate.surrogate)]
    for name, value in terms:
        if value is None:
            continue
        value = value.detach()
        allowed_neg_inf = name == "log_w" or name in TERMS  # a zero density, not a broken one
        bad = torch.isnan(value) | torch.isposinf(value)
        if not allowed_neg_inf:
            bad = bad | torch.isneginf(value)
        if bool(bad.any()):
            raise NonFiniteEstimateError(name, step, f"{int(bad.sum())} of {value.numel()} entries are NaN or inf")


def surrogate_with_value(grad_term: Tensor, bound: Tensor) -> Tensor:
    """A scalar with the gradient of `grad_term` and the value -mean(bound).

        surrogate = grad_term - stopgrad(grad_term) - stopgrad(mean(bound))

    so `loss.item()` always reads as the negative bound whatever the estimator's gradient
    trick. Shapes: grad_term: (), bound: (B,) -> ().
    """
    return grad_term - grad_term.detach() - bound.detach().mean()


def supported_estimators(*, has_log_prob: bool, has_analytic_kl: bool) -> list[str]:
    """The registered estimators that a posterior family with these capabilities supports, by name.

    An estimator is supported unless it needs log q(z) of an arbitrary z (`needs_log_prob`) and
    the family has none, or needs the analytic KL (`needs_analytic_kl`) and the family has none.
    """
    return [
        entry.name
        for entry in ESTIMATORS
        if (has_log_prob or not entry.obj.needs_log_prob) and (has_analytic_kl or not entry.obj.needs_analytic_kl)
    ]


def build_estimator(name: str, **options: Any) -> Estimator:
    """The estimator registered as `name`, configured with `options` (num_samples, alpha, ...).

    Unknown names raise an error listing the known ones; unknown options name the option.
    """
    cls = ESTIMATORS.get(name)
    params = inspect.signature(cls.__init__).parameters
    known = sorted(p for p in params if p != "self")
    for key in options:
        if key not in params:
            raise ValueError(f"estimator '{name}': unknown option {key!r}; known options: {', '.join(known)}")
    return cls(**options)


def _finite_float(value: float, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{what} must be a finite number, got {value!r}")
    return float(value)


ESTIMATORS: Registry[type[Estimator]] = Registry("estimator")
