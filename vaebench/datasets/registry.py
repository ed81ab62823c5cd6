"""The dataset registry, and `load`/`card`: how a dataset becomes selectable by name.

A dataset is one module defining its DatasetCard and a loader decorated with
`@register_dataset(CARD)`; the loader receives a LoadContext plus its own options.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..registry import Registry
from .card import DatasetCard
from .download import Opener, resolve_data_dir
from .splits import DatasetSplits

__all__ = ["DATASETS", "DatasetSource", "LoadContext", "card", "load", "register_dataset"]


@dataclass(frozen=True)
class LoadContext:
    """What every loader gets: where the files are and how to produce the tensors.

    Attributes:
        data_dir: the data directory; a dataset reads data_dir / card.name.
        download: whether missing files may be downloaded.
        dtype: floating dtype of the returned tensors.
        seed: seeds what the protocol leaves random (dynamic binarization stream, random
            splits where the protocol has no seed of its own).
        opener: URL opener for downloads (None: urllib.request.urlopen).
    """

    data_dir: Path
    download: bool = True
    dtype: torch.dtype = torch.float32
    seed: int = 0
    opener: Opener | None = None

    def folder(self, name: str) -> Path:
        return self.data_dir / name


Loader = Callable[..., DatasetSplits]


@dataclass(frozen=True)
class DatasetSource:
    """A registered dataset: its card and its loader `(ctx, **options) -> DatasetSplits`."""

    card: DatasetCard
    loader: Loader

    def options(self) -> list[str]:
        """The loader's own keyword options (beyond the LoadContext)."""
        params = list(inspect.signature(self.loader).parameters.values())[1:]
        return [p.name for p in params if p.kind is inspect.Parameter.KEYWORD_ONLY]


DATASETS: Registry[DatasetSource] = Registry("dataset")


def register_dataset(card: DatasetCard) -> Callable[[Loader], Loader]:
    """Register a loader under `card.name`, with the card's title as its description."""

    def decorate(loader: Loader) -> Loader:
        DATASETS.register(card.name, card.title)(DatasetSource(card, loader))
        return loader

    return decorate


def card(name: str) -> DatasetCard:
    """The card of a registered dataset; unknown names raise listing the known ones."""
    return DATASETS.get(name).card


def load(
    name: str,
    *,
    data_dir: str | os.PathLike[str] | None = None,
    download: bool = True,
    dtype: torch.dtype = torch.float32,
    seed: int = 0,
    opener: Opener | None = None,
    **options: Any,
) -> DatasetSplits:
    """Load a benchmark dataset's train/valid/test splits as its protocol prescribes.

    Args:
        name: a registered name (`DATASETS.names()`).
        data_dir: folder holding `<name>/<files>`; default $VAEBENCH_DATA_DIR, then
            ~/.cache/vaebench. Ignored by embedded and synthetic datasets.
        download: fetch missing files from the original source (atomic, checksummed).
        dtype: floating dtype of the tensors (float32 default; float64 for exact tests).
        seed: seed for what the protocol leaves random (see each card).
        opener: URL opener used for downloads (tests pass a mock or use file:// URLs).
        **options: dataset-specific options, listed by `DATASETS.get(name).options()`.

    Raises:
        UnknownNameError: `name` is not registered.
        DatasetNotFound: the files are missing and could not be downloaded.
        ChecksumMismatch: a file is present but corrupted or a different version.
    """
    source = DATASETS.get(name)
    if not dtype.is_floating_point:
        raise TypeError(f"dtype must be a floating dtype (torch.float32/float64), got {dtype}")
    unknown = sorted(set(options) - set(source.options()))
    if unknown:
        known = ", ".join(source.options()) or "none"
        raise TypeError(f"dataset '{name}' has no option(s) {unknown}; its options: {known}")
    ctx = LoadContext(resolve_data_dir(data_dir), download, dtype, seed, opener)
    return source.loader(ctx, **options)
