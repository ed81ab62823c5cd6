"""The inference gaps of a VAE on test points: the ELBO gap and its split into the
approximation and amortization gaps (Cremer, Li, Duvenaud 2018).

    ELBO gap          = log p(x) - L[q_phi]          (what the bound leaves on the table)
    approximation gap = log p(x) - L[q*]             (the family cannot reach p(z | x))
    amortization gap  = L[q*] - L[q_phi]             (the encoder does not find the best q)

with q_phi the amortized posterior, q* the best member of the same family for this x
(found by optimizing the family's own parameters for this one point, the decoder fixed)
and log p(x) the importance-sampled estimate (the test NLL's).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from ..results import Metric

__all__ = ["GapsResult", "inference_gaps"]


@dataclass
class GapsResult:
    """Per test point (N,): log_px, elbo (L[q_phi]), elbo_local (L[q*]) and the three gaps."""

    log_px: Tensor
    elbo: Tensor
    elbo_local: Tensor

    @property
    def elbo_gap(self) -> Tensor:
        return self.log_px - self.elbo

    @property
    def approximation_gap(self) -> Tensor:
        return self.log_px - self.elbo_local

    @property
    def amortization_gap(self) -> Tensor:
        return self.elbo_local - self.elbo

    def metrics(self) -> dict[str, Metric]:
        """Mean +- standard error over the points, named as in the record."""
        return {
            "elbo_gap": Metric.of(self.elbo_gap.tolist()),
            "approximation_gap": Metric.of(self.approximation_gap.tolist()),
            "amortization_gap": Metric.of(self.amortization_gap.tolist()),
        }


def _log_w(model: Any, x: Tensor, num_samples: int) -> Tensor:
    """(K, B) log-weights of a VAE (duck-typed, see _elbo)."""
    return model.log_weights(x, num_samples).log_w


def _elbo(model: Any, x: Tensor, num_samples: int, chunk: int = 500) -> Tensor:
    """The Monte Carlo ELBO mean_k log w_k of each row of x: (B,), in float64.

    `model` is a VAE (typed Any: its methods are duck-typed, and nn.Module's __getattr__ would
    type them as Tensor | Module)."""
    total = torch.zeros(x.shape[0], dtype=torch.float64, device=x.device)
    done = 0
    while done < num_samples:
        k = min(chunk, num_samples - done)
        total += model.log_weights(x, k).log_w.double().sum(0)
        done += k
    return total / num_samples


def inference_gaps(
    model: nn.Module,
    x: Tensor,
    log_px: Tensor,
    *,
    num_steps: int = 300,
    lr: float = 1e-3,
    train_samples: int = 8,
    eval_samples: int = 1000,
    seed: int = 0,
) -> GapsResult:
    """The ELBO, approximation and amortization gaps of `model` on the points x.

    For each point, a copy of the posterior family (all of its parameter heads, h from the
    fixed encoder) is optimized alone for that point: Adam(lr) for `num_steps` steps on
    the ELBO with `train_samples` draws; since every head has a free bias, the copy can take
    any parameter value of the family, so its optimum is q* of Cremer et al. Both bounds are
    then estimated with `eval_samples` draws, and q* is the better of the start (q_phi) and
    the optimized copy by that estimate (Adam on one point's noisy bound can overshoot; the
    search starts at q_phi, so q* is never worse). A finite optimization leaves L[q*] a
    little low, so the amortization gap reported is, if anything, an underestimate.

    Shapes: x: (N, *event), log_px: (N,) -> GapsResult of (N,) tensors.

    References:
        Inference Suboptimality in Variational Autoencoders, Cremer, Li, Duvenaud, 2018,
        arXiv:1801.03558.
    """
    if log_px.shape != (x.shape[0],):
        raise ValueError(
            f"inference_gaps: log_px must be (N,) = ({x.shape[0]},) like x's rows, got {tuple(log_px.shape)}"
        )
    if hasattr(model, "posterior1"):
        raise ValueError(
            "inference_gaps: one stochastic layer only; the two-layer model's q has no single family to optimize"
        )
    if num_steps < 1 or train_samples < 1 or eval_samples < 1:
        raise ValueError(
            f"inference_gaps: num_steps, train_samples, eval_samples must be >= 1, got "
            f"{num_steps}, {train_samples}, {eval_samples}"
        )
    was_training = model.training
    model.eval()
    original: nn.Module = model.posterior  # type: ignore[assignment]  # a VAE's posterior is a Module
    frozen = [(p, p.requires_grad) for p in model.parameters()]
    elbo, elbo_local = [], []
    try:
        for p, _ in frozen:
            p.requires_grad_(False)
        with torch.random.fork_rng(devices=[x.device] if x.device.type == "cuda" else []):
            torch.manual_seed(seed)
            for i in range(x.shape[0]):
                xi = x[i : i + 1]
                with torch.no_grad():
                    elbo.append(_elbo(model, xi, eval_samples))
                local = copy.deepcopy(original)
                for p in local.parameters():
                    p.requires_grad_(True)
                model.posterior = local
                # fused: one pass per parameter (torch's default on a CPU loops over them in Python)
                opt = torch.optim.Adam(local.parameters(), lr=lr, fused=True)
                for _ in range(num_steps):
                    loss = -_log_w(model, xi, train_samples).mean()
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    opt.step()
                with torch.no_grad():
                    elbo_local.append(torch.maximum(_elbo(model, xi, eval_samples), elbo[-1]))
                model.posterior = original
    finally:
        model.posterior = original
        for p, flag in frozen:
            p.requires_grad_(flag)
        model.train(was_training)
    return GapsResult(log_px.double().cpu(), torch.cat(elbo).cpu(), torch.cat(elbo_local).cpu())
