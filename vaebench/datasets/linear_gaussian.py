"""Synthetic data from a linear-Gaussian model (probabilistic PCA), whose log p(x) and
posterior are known in closed form: the ground truth for estimators and evaluation. The
closed forms are `vaebench.linear_gaussian`'s.

z ~ N(0, I_d),  x | z ~ N(W z + b, s^2 I_D)
p(x) = N(x; b, C),  C = W W^T + s^2 I_D
p(z | x) = N(M^-1 W^T (x - b), s^2 M^-1),  M = W^T W + s^2 I_d

References:
    Probabilistic Principal Component Analysis, Tipping, Bishop, 1999, JRSS B.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import torch
from torch import Tensor
from torch.distributions import MultivariateNormal

from .. import linear_gaussian as closed_form
from .card import DatasetCard
from .registry import LoadContext, register_dataset
from .splits import DatasetSplits, TensorSplit

__all__ = ["CARD", "LinearGaussian", "load_linear_gaussian"]


def _check_last_dim(t: Tensor, name: str, size: int, what: str) -> None:
    if t.ndim < 1 or t.shape[-1] != size:
        raise ValueError(f"{name} must be (..., {size}) ({what}), got {tuple(t.shape)}")


@dataclass(frozen=True)
class LinearGaussian:
    """The model z ~ N(0, I_d), x | z ~ N(W z + b, s^2 I_D) with its exact quantities.

    Attributes:
        W: (D, d) loading matrix.  b: (D,) offset.  s: observation noise std, > 0.
    All methods compute in W's dtype (float64 from `random`) and return that dtype.

    References:
        Probabilistic Principal Component Analysis, Tipping, Bishop, 1999, JRSS B.
    """

    W: Tensor
    b: Tensor
    s: float

    def __post_init__(self) -> None:
        if self.W.ndim != 2:
            raise ValueError(f"W must be (D, d), got {tuple(self.W.shape)}")
        if self.b.shape != (self.W.shape[0],):
            raise ValueError(f"b must be (D,) = ({self.W.shape[0]},) like W's rows, got {tuple(self.b.shape)}")
        if not (self.s > 0 and math.isfinite(self.s)):
            raise ValueError(f"s (noise std) must be a finite number > 0, got {self.s}")

    @classmethod
    def random(
        cls,
        obs_dim: int = 20,
        latent_dim: int = 5,
        noise_std: float = 0.5,
        seed: int = 0,
        dtype: torch.dtype = torch.float64,
    ) -> LinearGaussian:
        """A model with W, b ~ N(0, 1) entries drawn from a CPU generator seeded `seed`."""
        if obs_dim < 1 or latent_dim < 1:
            raise ValueError(f"obs_dim and latent_dim must be >= 1, got {obs_dim} and {latent_dim}")
        g = torch.Generator().manual_seed(seed)
        W = torch.randn(obs_dim, latent_dim, generator=g, dtype=torch.float64).to(dtype)
        b = torch.randn(obs_dim, generator=g, dtype=torch.float64).to(dtype)
        return cls(W, b, float(noise_std))

    @property
    def obs_dim(self) -> int:
        return self.W.shape[0]

    @property
    def latent_dim(self) -> int:
        return self.W.shape[1]

    def sample(self, n: int, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        """n draws (x: (n, D), z: (n, d)) from the model."""
        z = torch.randn(n, self.latent_dim, generator=generator, dtype=self.W.dtype)
        eps = torch.randn(n, self.obs_dim, generator=generator, dtype=self.W.dtype)
        return z @ self.W.T + self.b + self.s * eps, z

    def marginal(self) -> MultivariateNormal:
        """p(x) = N(b, W W^T + s^2 I_D)."""
        return MultivariateNormal(self.b, covariance_matrix=closed_form.marginal_covariance(self.W, self.s))

    def exact_log_px(self, x: Tensor) -> Tensor:
        """log p(x) = log N(x; b, W W^T + s^2 I). Shapes: x: (..., D) -> (...)."""
        _check_last_dim(x, "x", self.obs_dim, "D, the observed dimension")
        return closed_form.log_marginal(x, self.W, self.b, self.s)

    def posterior_params(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Mean M^-1 W^T (x - b) and covariance s^2 M^-1 of p(z | x), M = W^T W + s^2 I_d.

        Shapes: x: (..., D) -> mean (..., d), covariance (d, d) (the same for every x).
        """
        _check_last_dim(x, "x", self.obs_dim, "D, the observed dimension")
        return closed_form.posterior(x, self.W, self.b, self.s)

    def exact_posterior(self, x: Tensor) -> MultivariateNormal:
        """p(z | x) as a MultivariateNormal with batch shape x.shape[:-1], event (d,)."""
        mean, cov = self.posterior_params(x)
        return MultivariateNormal(mean, covariance_matrix=cov.expand(*mean.shape[:-1], -1, -1))

    def log_prior(self, z: Tensor) -> Tensor:
        """log N(z; 0, I_d). Shapes: z: (..., d) -> (...)."""
        _check_last_dim(z, "z", self.latent_dim, "d, the latent dimension")
        z = z.to(self.W.dtype)
        return -0.5 * (z.pow(2).sum(-1) + self.latent_dim * math.log(2 * math.pi))

    def log_likelihood(self, x: Tensor, z: Tensor) -> Tensor:
        """log N(x; W z + b, s^2 I_D). Shapes: x: (B, D), z: (K, B, d) -> (K, B) (broadcasts)."""
        _check_last_dim(x, "x", self.obs_dim, "D, the observed dimension")
        _check_last_dim(z, "z", self.latent_dim, "d, the latent dimension")
        r = x.to(self.W.dtype) - (z.to(self.W.dtype) @ self.W.T + self.b)
        return -0.5 * (r.pow(2).sum(-1) / self.s**2 + self.obs_dim * math.log(2 * math.pi * self.s**2))

    def log_joint(self, x: Tensor, z: Tensor) -> Tensor:
        """log p(x, z) = log p(z) + log p(x | z). Shapes: x: (B, D), z: (K, B, d) -> (K, B)."""
        return self.log_prior(z) + self.log_likelihood(x, z)

    def kl_to_posterior(self, x: Tensor, q_mean: Tensor, q_var: Tensor) -> Tensor:
        """KL(N(q_mean, diag q_var) || p(z | x)) = log p(x) - ELBO(q), in closed form.

        KL = 1/2 [tr(S^-1 V) + (m - mu)^T S^-1 (m - mu) - d + log|S| - log|V|] with
        p(z | x) = N(m, S), q = N(mu, V), S^-1 = M / s^2.
        Shapes: x: (B, D), q_mean, q_var: (B, d) -> (B,).
        """
        _check_last_dim(q_mean, "q_mean", self.latent_dim, "d, the latent dimension")
        if q_var.shape != q_mean.shape:
            raise ValueError(f"q_var must be shaped like q_mean {tuple(q_mean.shape)}, got {tuple(q_var.shape)}")
        if (q_var <= 0).any():
            raise ValueError("q_var must be > 0 (a variance, not a log-variance)")
        return closed_form.kl_to_posterior(x, self.W, self.b, self.s, q_mean, torch.diag_embed(q_var))


SIZES = (10_000, 1_000, 1_000)

CARD = DatasetCard(
    name="linear_gaussian",
    title="Linear-Gaussian (probabilistic PCA) synthetic data with exact log p(x)",
    description="x = W z + b + s eps, z ~ N(0, I_d), eps ~ N(0, I_D), W and b with N(0, 1) "
    "entries; defaults D = 20, d = 5, s = 0.5. The model (DatasetSplits.ground_truth, a "
    "LinearGaussian) gives exact log p(x) and p(z | x).",
    sizes=dict(zip(("train", "valid", "test"), SIZES, strict=True)),
    split_protocol="independent draws: train, valid and test from one generator seeded "
    "load(seed=) in that order; the model from model_seed= (default 0)",
    preprocessing="none",
    likelihood="gaussian",
    event_shape=(20,),
    values="real",
    citation="Tipping, Bishop. Probabilistic Principal Component Analysis. JRSS B 1999",
    source="synthetic",
    protocol_source="REFERENCES.md 'Ground truth with exact log p(x)'",
    notes=("obs_dim=, latent_dim=, noise_std= change the model; the card shows the defaults.",),
)


@register_dataset(CARD)
def load_linear_gaussian(
    ctx: LoadContext,
    *,
    obs_dim: int = 20,
    latent_dim: int = 5,
    noise_std: float = 0.5,
    model_seed: int = 0,
    sizes: tuple[int, int, int] = SIZES,
) -> DatasetSplits:
    """Draws from a LinearGaussian model; items (obs_dim,); `ground_truth` is the model."""
    counts = tuple(sizes)
    if len(counts) != 3 or any(not isinstance(n, int) or n < 1 for n in counts):
        raise ValueError(f"sizes must be three ints >= 1 (train, valid, test), got {sizes}")
    model = LinearGaussian.random(obs_dim, latent_dim, noise_std, seed=model_seed)
    g = torch.Generator().manual_seed(ctx.seed)
    train, valid, test = (TensorSplit(model.sample(n, g)[0].to(ctx.dtype)) for n in counts)
    # The card describes this draw: its event shape follows obs_dim (sizes: DatasetSplits).
    card = replace(CARD, event_shape=(obs_dim,))
    return DatasetSplits(card, train, valid, test, ground_truth=model)
