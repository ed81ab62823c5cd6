"""Iterate a data set in fixed-size minibatches, whatever container holds it.

Evaluation and training accept a tensor `(N, *event)`, a map-style `torch.utils.data.Dataset`
(items `x` or `(x, label, ...)`) or a `DataLoader`/iterable of batches; this module is the one
place that turns any of those into `(B, *event)` tensors, and the one place that sizes a
streamed evaluation's passes (`pass_sizes`: importance samples x examples per model call).
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Iterator, Sized

import torch
from torch import Tensor
from torch.utils.data import Dataset

from ..finite import all_finite

__all__ = ["Data", "check_batch", "iter_batches", "num_examples", "pass_sizes", "take_examples"]

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


def check_batch(x: Tensor, name: str = "x", offset: int | None = None) -> Tensor:
    """Raise a ValueError naming `name` when x is not a floating (B, *event) tensor of finite values.

    `offset`, the index of the batch's first example in the data set, makes the error name the
    data set's examples rather than the batch's rows."""
    if not isinstance(x, Tensor):
        raise TypeError(f"{name} must be a Tensor (B, *event), got {type(x).__name__}")
    if x.dim() < 2:
        raise ValueError(f"{name} must be (B, *event) with a batch dim, got shape {tuple(x.shape)}")
    if not x.is_floating_point():
        raise ValueError(f"{name} must be a floating tensor, got {x.dtype}: convert with x.float()")
    if not all_finite(x):
        bad = (~torch.isfinite(x)).flatten(1).any(1).nonzero().flatten()[:5].tolist()
        where = f"batch rows {bad}" if offset is None else f"data set examples {[offset + i for i in bad]}"
        raise ValueError(f"{name} holds non-finite values (first examples at {where}); clean the data")
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


# Rows (samples x examples) per pass: at least this many, so that the decoder's matmuls have
# enough rows for the BLAS kernels' full speed, and at most MAX_PASS_ROWS (on a GPU, a few
# million rows already fill it).
MIN_PASS_ROWS = 2048
MAX_PASS_ROWS = 1 << 22
_DEFAULT_L2_BYTES = 1 << 20  # where the OS does not say


def _pass_budget_bytes(device: torch.device) -> int:
    """Bytes one pass's activations may take: on a CPU the L2 caches of the threads running it
    (the activations of a pass are then read back from cache by the next layer); on CUDA a
    quarter of the free memory."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return free // 4
    try:
        l2 = os.sysconf("SC_LEVEL2_CACHE_SIZE")
    except (ValueError, OSError, AttributeError):
        l2 = 0
    return (l2 if l2 > 0 else _DEFAULT_L2_BYTES) * torch.get_num_threads()


def pass_sizes(
    num_samples: int,
    num_examples: int | None,
    row_bytes: int,
    device: torch.device | str,
    *,
    chunk_size: int | None = None,
    batch_size: int | None = None,
) -> tuple[int, int]:
    """(chunk_size, batch_size) of a streamed importance-sampling evaluation: each model call
    takes batch_size examples x chunk_size samples, chunk_size x batch_size rows in all.

    The rows per pass fill the cache budget (`_pass_budget_bytes`: the L2 caches of the running
    threads on a CPU, a quarter of free memory on CUDA), given `row_bytes`, the activation bytes
    one row holds, within [MIN_PASS_ROWS, MAX_PASS_ROWS]. A size the caller gives is kept and
    the other fills the rest; with neither, a pass takes as many samples of one example as fit
    and the K samples are split into equal chunks (K = 5000 in 3 chunks of 1667, not 2 of 2048
    and one of 904). Different sizes draw different random streams: fix both to reproduce a
    number bit for bit on another machine.
    """
    for name, v in (("chunk_size", chunk_size), ("batch_size", batch_size)):
        if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 1):
            raise ValueError(f"{name} must be an int >= 1 or None (chosen for the caches), got {v!r}")
    if num_samples < 1:
        raise ValueError(f"num_samples (K) must be >= 1, got {num_samples}")
    if row_bytes < 1:
        raise ValueError(f"row_bytes must be >= 1, got {row_bytes}")
    rows = _pass_budget_bytes(torch.device(device)) // row_bytes
    rows = min(MAX_PASS_ROWS, max(MIN_PASS_ROWS, rows))
    if chunk_size is None:
        per_example = rows // (batch_size or 1)
        chunks = math.ceil(num_samples / max(1, min(num_samples, per_example)))
        chunk_size = math.ceil(num_samples / chunks)
    if batch_size is None:
        batch_size = max(1, rows // chunk_size)
        if num_examples is not None:
            batch_size = max(1, min(batch_size, num_examples))
    return chunk_size, batch_size
