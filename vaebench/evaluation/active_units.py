"""Active latent units: those whose posterior mean varies with the data."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from ..models.vae import analytic_posterior_mean
from .batching import Data, check_batch, take_examples
from .model_contract import model_device, model_dtype, require

__all__ = ["ActiveUnitsResult", "LayerActiveUnits", "active_units"]

# Burda et al. 2015, section 5.2: a unit is active when Var_x(E_q[u|x]) exceeds 10^-2,
# measured on the first 500 training examples.
DEFAULT_THRESHOLD = 0.01
DEFAULT_NUM_EXAMPLES = 500
# Monte Carlo draws of E_q[z|x] for families without an analytic mean. The draws' variance
# Var_q[u|x] / S adds to A_u; it is estimated and subtracted, and with S = 2000 and
# Var_q <= 1 (a collapsed unit is the prior) it is <= 5e-4, a twentieth of the threshold
# before the correction (100 draws put it at 0.01, the threshold itself: issue 10).
DEFAULT_MC_SAMPLES = 2000


@dataclass
class LayerActiveUnits:
    """One stochastic layer. variances: (D,) A_u = Var_x(E_q[u|x]); active: (D,) bool;
    eigenvalues: (D,) of Cov_x(E_q[z|x]), descending (rotation invariant: a flow that rotates
    q moves variance between units but not between eigenvalues); mc_samples: 0 where the mean
    is analytic; mc_bias: (D,) the estimated Monte Carlo inflation of A_u that was subtracted,
    b_u = mean_x Var_q[u|x] / S (zeros when analytic); mc_std: (D,) the standard deviation
    left after the subtraction, sqrt((4 A_u b_u + 2 b_u^2) / N) (the cross term of the mean's
    noise with its spread over x, and the noise's own variance)."""

    name: str
    variances: Tensor
    active: Tensor
    eigenvalues: Tensor
    mc_samples: int
    mc_bias: Tensor
    mc_std: Tensor

    @property
    def num_active(self) -> int:
        return int(self.active.sum().item())

    def num_active_eigen(self, threshold: float) -> int:
        return int((self.eigenvalues > threshold).sum().item())


@dataclass
class ActiveUnitsResult:
    """Per stochastic layer (z1 first), plus the totals. variances/active: the top layer's
    (the one-layer model's only layer), kept for callers of the one-layer API."""

    variances: Tensor
    active: Tensor
    threshold: float
    num_examples: int
    layers: list[LayerActiveUnits] = field(default_factory=list)

    @property
    def num_active(self) -> int:
        """Active units over every stochastic layer (Burda et al. count each layer)."""
        return sum(layer.num_active for layer in self.layers) if self.layers else int(self.active.sum().item())

    @property
    def num_active_eigen(self) -> int:
        """Eigenvalues of Cov_x(E_q[z|x]) above the threshold, summed over layers."""
        return sum(layer.num_active_eigen(self.threshold) for layer in self.layers)

    @property
    def mc_error(self) -> float:
        """The Monte Carlo error (standard deviation) left in A_u after the correction for a unit
        at the threshold, sqrt((4 t b + 2 b^2) / N) with the largest b_u (0 when every mean is
        analytic): how far the draws' noise could move a unit across the threshold. Units far
        above it have a larger error (`LayerActiveUnits.mc_std`) that cannot change the count."""
        t, n = self.threshold, self.num_examples
        return max(
            (float(((4 * t * la.mc_bias + 2 * la.mc_bias.square()) / n).sqrt().max()) for la in self.layers),
            default=0.0,
        )

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "active_units": self.num_active,
            "active_units_eigen": self.num_active_eigen,
            "latent_dim": sum(layer.active.numel() for layer in self.layers) or self.active.numel(),
            "active_threshold": self.threshold,
            "active_num_examples": self.num_examples,
            "active_mc_error": self.mc_error,
            "unit_variances": self.variances.tolist(),
        }
        for layer in self.layers:
            out[f"active_units_{layer.name}"] = layer.num_active
        return out


def _mean_of(posterior: Any, h: Tensor, mc_samples: int, chunk: int = 250) -> tuple[Tensor, Tensor, int]:
    """E_q[z|h]: (B, D), the Monte Carlo inflation Var_q[z|h] / S: (B, D) and S (0: analytic)."""
    mean = analytic_posterior_mean(posterior, h)
    if mean is not None:
        return mean, torch.zeros_like(mean), 0
    total = sq = None
    for start in range(0, mc_samples, chunk):
        z, _ = posterior.rsample_and_log_prob(h, min(chunk, mc_samples - start))
        z = z.double()
        total = z.sum(0) if total is None else total + z.sum(0)
        sq = z.square().sum(0) if sq is None else sq + z.square().sum(0)
    assert total is not None and sq is not None
    mean = total / mc_samples
    var = (sq / mc_samples - mean.square()).clamp_min(0) * mc_samples / max(mc_samples - 1, 1)
    return mean, var / mc_samples, mc_samples


def _layer_means(model: Any, x: Tensor, mc_samples: int) -> list[tuple[str, Tensor, Tensor, int]]:
    """(name, E_q[z|x], MC inflation, S) per stochastic layer. Two layers (Burda et al.): z1
    from the mean of q(z1 | x), z2 from the mean of q(z2 | z1) at z1 = E[z1 | x]. A model
    without an encoder and posterior family (e.g. the linear-Gaussian model) gives its own
    `posterior_mean`, taken as exact. `model` is typed Any: its methods are duck-typed, and
    nn.Module's __getattr__ would type them as Tensor | Module."""
    if not (callable(getattr(model, "encode", None)) and isinstance(getattr(model, "posterior", None), nn.Module)):
        m = model.posterior_mean(x)
        return [("z", m, torch.zeros_like(m), 0)]
    h = model.encode(x)
    if hasattr(model, "posterior1") and hasattr(model, "encoder2"):
        m1, b1, s1 = _mean_of(model.posterior1, h, mc_samples)
        m2, b2, s2 = _mean_of(model.posterior, model.encoder2(m1.to(h.dtype)), mc_samples)
        return [("z1", m1, b1, s1), ("z2", m2, b2, s2)]
    m, b, s = _mean_of(model.posterior, h, mc_samples)
    return [("z", m, b, s)]


@torch.no_grad()
def active_units(
    model: nn.Module,
    data: Data,
    *,
    threshold: float = DEFAULT_THRESHOLD,
    num_examples: int = DEFAULT_NUM_EXAMPLES,
    num_samples: int = DEFAULT_MC_SAMPLES,
    batch_size: int = 100,
    seed: int = 0,
) -> ActiveUnitsResult:
    """Count the latent units u with A_u = Var_x(E_{q(z|x)}[u]) > threshold, per layer.

        A_u = 1/N sum_n (m_nu - mean_n m_nu)^2,   m_n = E_q[z | x_n]  (population variance)

    over the first `num_examples` examples of `data` (the training set in the protocol).
    E_q[z|x] is analytic where the family has one (diagonal, full covariance, Householder:
    its torch distribution's mean); otherwise the mean of `num_samples` draws, whose noise
    adds mean_n Var_q[u|x_n] / S to A_u in expectation: that inflation is estimated from the
    same draws and subtracted (reported as `mc_bias`). For the two-layer model each layer is
    counted from the mean of its own conditional (z2's at z1 = E[z1|x]). Also returned: the
    eigenvalues of Cov_x(E_q[z|x]) (with the same correction on the diagonal), whose count
    above the threshold does not depend on how q is rotated, so flows can be compared.

    Shapes: data: (N, *event) -> variances, active: (D,) of the top layer.

    References:
        Importance Weighted Autoencoders, Burda, Grosse, Salakhutdinov, 2015, arXiv:1509.00519.
    """
    require(model, "posterior_mean", purpose="active_units")
    if not threshold >= 0:
        raise ValueError(f"active_units: threshold must be >= 0, got {threshold}")
    if num_samples < 2:
        raise ValueError(
            f"active_units: num_samples must be >= 2 (the draws' variance is estimated), got {num_samples}"
        )
    device = model_device(model)
    x_all = take_examples(data, num_examples, device=device).to(model_dtype(model) or torch.float32)
    if x_all.shape[0] < 2:
        raise ValueError(f"active_units needs at least 2 examples to measure a variance, got {x_all.shape[0]}")
    was_training = model.training
    model.eval()
    per_layer: dict[str, list[tuple[Tensor, Tensor, int]]] = {}
    try:
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            torch.manual_seed(seed)
            for start in range(0, x_all.shape[0], batch_size):
                x = check_batch(x_all[start : start + batch_size], "data batch")
                if hasattr(model, "check_input"):
                    model.check_input(x)  # type: ignore[operator]  # a model method (nn.Module.__getattr__ types it Tensor | Module)
                for name, m, bias, s in _layer_means(model, x, num_samples):
                    if m.dim() != 2 or m.shape[0] != x.shape[0]:
                        raise ValueError(
                            f"{type(model).__name__}: the posterior mean of layer {name} must be (B, D) with "
                            f"B = {x.shape[0]}, got {tuple(m.shape)}"
                        )
                    per_layer.setdefault(name, []).append((m.double().cpu(), bias.double().cpu(), s))
    finally:
        model.train(was_training)
    layers = []
    for name, parts in per_layer.items():
        means = torch.cat([p[0] for p in parts])
        mc_bias = torch.cat([p[1] for p in parts]).mean(0)  # (D,): E_n Var_q[u|x_n] / S
        variances = (means.var(dim=0, unbiased=False) - mc_bias).clamp_min(0)
        cov = torch.cov(means.T, correction=0).reshape(means.shape[1], means.shape[1]) - torch.diag(mc_bias)
        eigenvalues = torch.linalg.eigvalsh(cov).flip(0)
        n = means.shape[0]
        mc_std = ((4 * variances * mc_bias + 2 * mc_bias.square()) / n).sqrt()
        layers.append(
            LayerActiveUnits(name, variances, variances > threshold, eigenvalues, parts[0][2], mc_bias, mc_std)
        )
    top = layers[-1]
    return ActiveUnitsResult(
        variances=top.variances, active=top.active, threshold=threshold, num_examples=x_all.shape[0], layers=layers
    )
