"""`LogWeights`: the terms of the log importance weights, the contract between the models (which
compute them) and the estimators (which combine them into bounds). Its own module so that both
import it without importing each other."""

from __future__ import annotations

from dataclasses import dataclass, field

from torch import Tensor

__all__ = ["TERMS", "LogWeights"]

#: The terms every log weight is built from, in the order the bound is built: the one list of
#: term names (finiteness checks, the trainer's non-finite diagnosis and the model contract use it).
TERMS: tuple[str, ...] = ("log_px_z", "log_pz", "log_q")


@dataclass
class LogWeights:
    """The terms of log w_k = log p(x | z_k) + log p(z_k) - log q(z_k | x) for K draws z_k ~ q.

    log_w, log_px_z, log_pz, log_q: (K, B). For hierarchical models log_pz sums the priors of
        all layers (the learned conditionals included) and log_q all posterior layers.
    z: (K, B, D) the top-level latent (the one with the N(0, I) prior).
    latents: every stochastic layer's sample, bottom (nearest x) first; (z,) for one layer.
    """

    log_w: Tensor
    log_px_z: Tensor
    log_pz: Tensor
    log_q: Tensor
    z: Tensor
    latents: tuple[Tensor, ...] = field(default=())

    def components(self) -> dict[str, Tensor]:
        """The named terms, for finiteness checks that say which one broke."""
        return {**{term: getattr(self, term) for term in TERMS}, "log_w": self.log_w}
