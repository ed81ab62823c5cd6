"""What evaluation needs from a model, checked once with errors that say what is missing.

The evaluation functions are written against the `vaebench.models.vae.VAE` contract
(`log_weights`, `kl`, `posterior_mean`, `encoder_parameters`, `decoder_parameters`,
`latent_dim`, `event_shape`, `likelihood`), duck-typed so that any module honouring it works.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor, nn

from ..log_weights import TERMS

__all__ = ["checked_log_weights", "event_num_dims", "model_device", "model_dtype", "require", "terms_of"]


def require(model: Any, *methods: str, purpose: str) -> None:
    """Raise a TypeError naming the methods `model` lacks for `purpose`."""
    missing = [m for m in methods if not callable(getattr(model, m, None))]
    if missing:
        raise TypeError(
            f"{purpose} needs a model with {', '.join(methods)} (the vaebench.models.vae.VAE contract); "
            f"{type(model).__name__} has no {', '.join(missing)}"
        )


def terms_of(model: nn.Module, x: Tensor, num_samples: int) -> Any:
    """model.log_weights(x, K) with its log_w checked to be (K, B) and free of NaN and +inf.

    -inf is allowed (a zero weight). NaN or +inf raise a FloatingPointError naming the term
    (log p(x|z), log p(z) or log q) where it first shows, and the batch rows.
    """
    # A model method (the VAE contract): nn.Module.__getattr__ types attributes as Tensor | Module.
    out = model.log_weights(x, num_samples)  # type: ignore[operator]
    log_w = getattr(out, "log_w", out)
    if not isinstance(log_w, Tensor) or log_w.shape != (num_samples, x.shape[0]):
        got = tuple(log_w.shape) if isinstance(log_w, Tensor) else type(log_w).__name__
        raise ValueError(
            f"{type(model).__name__}.log_weights(x, {num_samples}).log_w must be (K, B) = "
            f"({num_samples}, {x.shape[0]}), got {got}"
        )
    bad = torch.isnan(log_w) | torch.isposinf(log_w)
    if bad.any():
        rows = bad.any(0).nonzero().flatten()[:5].tolist()
        culprits = [
            name
            for name in TERMS
            if isinstance(getattr(out, name, None), Tensor) and not torch.isfinite(getattr(out, name)).all()
        ]
        where = f" (non-finite in: {', '.join(culprits)})" if culprits else ""
        raise FloatingPointError(
            f"{type(model).__name__}.log_weights gave NaN or +inf log weights at batch rows {rows}{where}; "
            "check the model's parameters and the data"
        )
    return out


def checked_log_weights(model: nn.Module, x: Tensor, num_samples: int) -> Tensor:
    """The (K, B) log weights log p(x, z_k) - log q(z_k | x), checked as in `terms_of`."""
    out = terms_of(model, x, num_samples)
    return getattr(out, "log_w", out)


def event_num_dims(model: Any) -> int | None:
    """The number of data dimensions bits/dim divides by, or None where it does not apply.

    Taken from `model.likelihood.num_dims` when the likelihood states it, else from
    `model.event_shape`. A likelihood over continuous data (`discrete = False`, e.g. a
    Gaussian) gives a density, not a probability, so no bits/dim: None.
    """
    likelihood = getattr(model, "likelihood", None)
    if likelihood is not None and getattr(likelihood, "discrete", True) is False:
        return None
    if likelihood is not None and hasattr(likelihood, "num_dims"):
        n = likelihood.num_dims
        n = n(model.event_shape) if callable(n) else n
        return None if n is None else int(n)
    shape = getattr(model, "event_shape", None)
    return None if shape is None else int(math.prod(shape))


def model_device(model: nn.Module) -> torch.device:
    """The device of the model's first parameter (CPU for a parameter-free model)."""
    p = next(model.parameters(), None)
    return p.device if p is not None else torch.device("cpu")


def model_dtype(model: nn.Module) -> torch.dtype | None:
    """The floating dtype of the model's first parameter; data batches are cast to it."""
    p = next(model.parameters(), None)
    return p.dtype if p is not None and p.is_floating_point() else None
