"""Iterate a data set in fixed-size minibatches, whatever container holds it.

Evaluation and training accept a tensor `(N, *event)`, a map-style `torch.utils.data.Dataset`
(items `x` or `(x, label, ...)`) or a `DataLoader`/iterable of batches; this module is the one
place that turns any of those into `(B, *event)` tensors.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sized

import torch
from torch import Tensor
from torch.utils.data import Dataset

__all__ = ["Data", "check_batch", "iter_batches", "num_examples", "take_examples"]

Data = Tensor | Dataset | Iterable
"""A tensor (N, *event), a map-style Dataset, or an iterable of batches (B, *event)."""


def _first(item: object) -> Tensor:
    # Datasets commonly yield (x, label); the label plays no part in a VAE's likelihood.
    if isinstance(item, (tuple, list)):
        item = item[0]
    if not isinstance(item, Tensor):
        raise TypeError(f"data items must be tensors or (tensor, ...) tuples, got {type(item).__name__}")
    return item


def num_examples(data: Data) -> int | None:
    """N for a tensor or a sized Dataset; None for an iterable of unknown length."""
    if isinstance(data, Tensor):
        return data.shape[0]
    if isinstance(data, Dataset) and isinstance(data, Sized):
        return len(data)
    dataset = getattr(data, "dataset", None)  # a DataLoader knows its dataset's size
    if isinstance(dataset, Sized):
        return len(dataset)
    return None


def check_batch(x: Tensor, name: str = "x") -> Tensor:
    """Raise a ValueError naming `name` when x is not a floating (B, *event) tensor of finite values."""
    if not isinstance(x, Tensor):
        raise TypeError(f"{name} must be a Tensor (B, *event), got {type(x).__name__}")
    if x.dim() < 2:
        raise ValueError(f"{name} must be (B, *event) with a batch dim, got shape {tuple(x.shape)}")
    if not x.is_floating_point():
        raise ValueError(f"{name} must be a floating tensor, got {x.dtype}: convert with x.float()")
    if not torch.isfinite(x).all():
        bad = (~torch.isfinite(x)).flatten(1).any(1).nonzero().flatten()[:5].tolist()
        raise ValueError(f"{name} holds non-finite values (first examples at batch rows {bad}); clean the data")
    return x


def iter_batches(
    data: Data,
    batch_size: int,
    *,
    indices: Tensor | None = None,
    device: torch.device | str | None = None,
    dtype: torch.dtype | None = None,
) -> Iterator[Tensor]:
    """Yield (B, *event) batches of `data` in order (or in the order of `indices`).

    A tensor or Dataset is cut into batches of `batch_size` (the last may be smaller); an
    iterable of batches is passed through as is (its own batch size wins, `indices` is refused).
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")

    def finish(x: Tensor) -> Tensor:
        return x.to(device=device if device is not None else x.device, dtype=dtype or x.dtype)

    if isinstance(data, Tensor):
        if data.dim() < 2:
            raise ValueError(f"data must be (N, *event), got shape {tuple(data.shape)}")
        order = indices if indices is not None else None
        n = data.shape[0] if order is None else order.numel()
        for start in range(0, n, batch_size):
            sl = slice(start, start + batch_size)
            yield finish(data[sl] if order is None else data[order[sl].to(data.device)])
    elif isinstance(data, Dataset) and isinstance(data, Sized):
        order = indices if indices is not None else torch.arange(len(data))
        # A batched fetch (torch's __getitems__ protocol) when the dataset offers one: one
        # random draw per minibatch for dynamically binarized data instead of one per item.
        getitems = getattr(data, "__getitems__", None)
        for start in range(0, order.numel(), batch_size):
            idx = order[start : start + batch_size].tolist()
            items = getitems(idx) if callable(getitems) else [data[i] for i in idx]
            yield finish(torch.stack([_first(item) for item in items]))
    elif isinstance(data, Iterable):
        if indices is not None:
            raise ValueError("indices needs a tensor or a map-style Dataset, got an iterable of batches")
        for item in data:
            yield finish(_first(item))
    else:
        raise TypeError(
            f"data must be a Tensor (N, *event), a Dataset or an iterable of batches, got {type(data).__name__}"
        )


def take_examples(data: Data, n: int, *, device: torch.device | str | None = None) -> Tensor:
    """The first n examples of `data` as one (n, *event) tensor (fewer if data is shorter)."""
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    if isinstance(data, Tensor):
        return data[:n].to(device=device or data.device)
    chunks, have = [], 0
    for x in iter_batches(data, min(n, 500), device=device):
        chunks.append(x[: n - have])
        have += chunks[-1].shape[0]
        if have >= n:
            break
    if not chunks:
        raise ValueError("data is empty")
    return torch.cat(chunks)
