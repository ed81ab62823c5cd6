"""Per-example bound terms over a data set: ELBO, reconstruction, KL, IWAE-K bound, bits/dim."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from ..ops import log_mean_exp
from .batching import Data, check_batch, iter_batches, num_examples
from .model_contract import event_num_dims, model_device, model_dtype, require, terms_of

__all__ = ["BoundResult", "bits_per_dim", "evaluate_bounds"]


def bits_per_dim(nll_nats: float | Tensor, num_dims: int) -> float | Tensor:
    """Bits per dimension of a negative log-likelihood in nats: NLL / (num_dims ln 2).

    Shapes: nll_nats: scalar or (N,) -> the same.
    """
    if num_dims < 1:
        raise ValueError(f"num_dims must be >= 1, got {num_dims}")
    return nll_nats / (num_dims * math.log(2.0))


@dataclass
class BoundResult:
    """Per-example terms of the variational bounds, each (N,), higher is better for the bounds.

    elbo = reconstruction - kl;  reconstruction = E_q[log p(x|z)];
    kl = KL(q(z|x) || p(z)) (analytic where the model gives it, else E_q[log q - log p(z)]);
    iwae = log (1/K) sum_k w_k (equals the ELBO's single-sample estimate for K = 1).
    """

    elbo: Tensor
    reconstruction: Tensor
    kl: Tensor
    iwae: Tensor
    num_samples: int
    kl_analytic: bool
    num_dims: int | None

    def to_dict(self) -> dict[str, Any]:
        """Means over examples (and the ELBO's standard error) as a flat record."""
        n = self.elbo.numel()
        out: dict[str, Any] = {
            "elbo": self.elbo.mean().item(),
            "elbo_stderr": self.elbo.std().item() / math.sqrt(n) if n > 1 else 0.0,
            "reconstruction": self.reconstruction.mean().item(),
            "kl": self.kl.mean().item(),
            f"iwae_{self.num_samples}": self.iwae.mean().item(),
            "num_samples": self.num_samples,
            "num_examples": n,
            "kl_analytic": self.kl_analytic,
        }
        out["elbo_bits_per_dim"] = None if self.num_dims is None else float(bits_per_dim(-out["elbo"], self.num_dims))
        return out


@torch.no_grad()
def evaluate_bounds(
    model: nn.Module,
    data: Data,
    *,
    num_samples: int = 1,
    batch_size: int = 100,
    seed: int = 0,
    device: torch.device | str | None = None,
    progress: bool = False,
) -> BoundResult:
    """ELBO, its reconstruction and KL terms and the IWAE-K bound for every example.

        ELBO(x)   = E_q[log p(x|z)] - KL(q(z|x) || p(z))          (K-sample average of the terms)
        IWAE_K(x) = log (1/K) sum_k p(x, z_k) / q(z_k|x)

    With `num_samples` = K the expectations are averages over K draws; the KL is the model's
    analytic one (`model.kl(x)`) when it returns one. Sampling uses its own RNG seeded with
    `seed`; the model runs in eval mode.

    Shapes: data: (N, *event) -> every field of the result: (N,).

    References:
        Auto-Encoding Variational Bayes, Kingma, Welling, 2013, arXiv:1312.6114.
        Importance Weighted Autoencoders, Burda, Grosse, Salakhutdinov, 2015, arXiv:1509.00519.
    """
    require(model, "log_weights", purpose="evaluate_bounds")
    if num_samples < 1:
        raise ValueError(f"num_samples (K) must be >= 1, got {num_samples}")
    device = torch.device(device) if device is not None else model_device(model)
    fields: dict[str, list[Tensor]] = {"elbo": [], "reconstruction": [], "kl": [], "iwae": []}
    analytic = True
    was_training = model.training
    model.eval()
    try:
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            torch.manual_seed(seed)
            bar = tqdm(total=num_examples(data), desc="bounds", unit="ex", disable=not progress)
            for x in iter_batches(data, batch_size, device=device, dtype=model_dtype(model)):
                check_batch(x, "data batch")
                t = terms_of(model, x, num_samples)
                # A model method: nn.Module.__getattr__ types attributes as Tensor | Module.
                kl = model.kl(x) if callable(getattr(model, "kl", None)) else None  # type: ignore[operator]
                if kl is None:
                    analytic = False
                    kl = (t.log_q - t.log_pz).mean(0)
                rec = t.log_px_z.mean(0)
                for name, v in (
                    ("elbo", rec - kl),
                    ("reconstruction", rec),
                    ("kl", kl),
                    ("iwae", log_mean_exp(t.log_w, 0)),
                ):
                    fields[name].append(v.double().cpu())
                bar.update(x.shape[0])
            bar.close()
    finally:
        model.train(was_training)
    if not fields["elbo"]:
        raise ValueError("data is empty: evaluate_bounds needs at least one example")
    return BoundResult(
        **{k: torch.cat(v) for k, v in fields.items()},
        num_samples=num_samples,
        kl_analytic=analytic,
        num_dims=event_num_dims(model),
    )
