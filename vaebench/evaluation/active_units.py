"""Active latent units: those whose posterior mean varies with the data."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from .batching import Data, check_batch, take_examples
from .model_contract import model_device, model_dtype, require

__all__ = ["ActiveUnitsResult", "active_units"]

# Burda et al. 2015, section 5.2: a unit is active when Var_x(E_q[u|x]) exceeds 10^-2,
# measured on the first 500 training examples.
DEFAULT_THRESHOLD = 0.01
DEFAULT_NUM_EXAMPLES = 500


@dataclass
class ActiveUnitsResult:
    """variances: (D,) Var_x(E_q[u|x]) per unit; active: (D,) bool, variances > threshold."""

    variances: Tensor
    active: Tensor
    threshold: float
    num_examples: int

    @property
    def num_active(self) -> int:
        return int(self.active.sum().item())

    def to_dict(self) -> dict[str, Any]:
        return {
            "active_units": self.num_active,
            "latent_dim": self.active.numel(),
            "active_threshold": self.threshold,
            "active_num_examples": self.num_examples,
            "unit_variances": self.variances.tolist(),
        }


@torch.no_grad()
def active_units(
    model: nn.Module,
    data: Data,
    *,
    threshold: float = DEFAULT_THRESHOLD,
    num_examples: int = DEFAULT_NUM_EXAMPLES,
    num_samples: int = 100,
    batch_size: int = 100,
    seed: int = 0,
) -> ActiveUnitsResult:
    """Count the latent units u with A_u = Var_x(E_{q(z|x)}[u]) > threshold.

        A_u = 1/N sum_n (m_nu - mean_n m_nu)^2,   m_n = E_q[z | x_n]  (population variance)

    over the first `num_examples` examples of `data` (the training set in the protocol).
    E_q[z|x] is `model.posterior_mean(x, num_samples=...)`: analytic for Gaussians, a
    `num_samples` Monte Carlo average for flows (seeded with `seed`).

    Shapes: data: (N, *event) -> variances, active: (D,).

    References:
        Importance Weighted Autoencoders, Burda, Grosse, Salakhutdinov, 2015, arXiv:1509.00519.
    """
    require(model, "posterior_mean", purpose="active_units")
    if not threshold >= 0:
        raise ValueError(f"threshold must be >= 0, got {threshold}")
    device = model_device(model)
    x_all = take_examples(data, num_examples, device=device).to(model_dtype(model) or torch.float32)
    if x_all.shape[0] < 2:
        raise ValueError(f"active_units needs at least 2 examples to measure a variance, got {x_all.shape[0]}")
    was_training = model.training
    model.eval()
    means = []
    try:
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            torch.manual_seed(seed)
            for start in range(0, x_all.shape[0], batch_size):
                x = check_batch(x_all[start : start + batch_size], "data batch")
                # A model method: nn.Module.__getattr__ types attributes as Tensor | Module.
                m = model.posterior_mean(x, num_samples=num_samples)  # type: ignore[operator]
                if m.dim() != 2 or m.shape[0] != x.shape[0]:
                    raise ValueError(
                        f"{type(model).__name__}.posterior_mean must return (B, D) with B = {x.shape[0]}, "
                        f"got {tuple(m.shape)}"
                    )
                means.append(m.double().cpu())
    finally:
        model.train(was_training)
    variances = torch.cat(means).var(dim=0, unbiased=False)
    return ActiveUnitsResult(
        variances=variances, active=variances > threshold, threshold=threshold, num_examples=x_all.shape[0]
    )
