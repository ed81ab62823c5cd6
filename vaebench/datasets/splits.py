"""The train/valid/test splits a loader returns, and the plain tensor-backed split."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any, Literal, Protocol, runtime_checkable

import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from .binarization import DynamicallyBinarized, binarize
from .card import DatasetCard, LikelihoodName

__all__ = [
    "DatasetSplits",
    "ExactLogLikelihood",
    "SplitName",
    "TensorSplit",
    "dynamic_binary_splits",
]

SplitName = Literal["train", "valid", "test"]
_ALIASES = {
    "train": "train",
    "valid": "valid",
    "validation": "valid",
    "val": "valid",
    "test": "test",
}


@runtime_checkable
class ExactLogLikelihood(Protocol):
    """A data-generating model whose log p(x) is known in closed form (ground truth)."""

    def exact_log_px(self, x: Tensor) -> Tensor: ...


class TensorSplit(Dataset[Tensor]):
    """A split held as one tensor; items are its rows. Shapes: data: (N, *event)."""

    def __init__(self, data: Tensor) -> None:
        self.data = data

    def __len__(self) -> int:
        return self.data.shape[0]

    def __getitem__(self, index: int) -> Tensor:
        return self.data[index]

    def __getitems__(self, indices: list[int]) -> list[Tensor]:
        return list(self.data.index_select(0, torch.as_tensor(indices)).unbind(0))

    def mean(self) -> Tensor:
        """The mean example over the N examples."""
        return self.data.mean(0)


@dataclass(frozen=True)
class DatasetSplits:
    """The three splits of a benchmark dataset with its card.

    Each split is a Dataset whose items are float tensors of shape `event_shape`:
    {0, 1} for "bernoulli" (the train split of a dynamically binarized dataset resamples at
    every access), 8-bit pixels as x = k / 255 for "categorical256"/"discretized_logistic",
    real values for "gaussian". `ground_truth` is the generating model of synthetic data
    (exact log p(x)); None for real data.
    """

    card: DatasetCard
    train: Dataset[Tensor]
    valid: Dataset[Tensor]
    test: Dataset[Tensor]
    ground_truth: ExactLogLikelihood | None = None

    def __post_init__(self) -> None:
        # Options such as num_valid change the split sizes: the card describes what was loaded.
        sizes = self.sizes()
        if dict(self.card.sizes) != sizes:
            object.__setattr__(self, "card", replace(self.card, sizes=sizes))

    @property
    def name(self) -> str:
        return self.card.name

    @property
    def event_shape(self) -> tuple[int, ...]:
        return self.card.event_shape

    @property
    def likelihood(self) -> LikelihoodName:
        return self.card.likelihood

    def __getitem__(self, split: str) -> Dataset[Tensor]:
        try:
            return getattr(self, _ALIASES[split])
        except KeyError:
            raise KeyError(f"unknown split '{split}'; use 'train', 'valid' or 'test'") from None

    def __iter__(self) -> Iterator[tuple[str, Dataset[Tensor]]]:
        yield from (("train", self.train), ("valid", self.valid), ("test", self.test))

    def sizes(self) -> dict[str, int]:
        return {name: len(ds) for name, ds in self}  # type: ignore[arg-type]

    def tensor(self, split: str) -> Tensor:
        """All of a split as one tensor (N, *event); a dynamic split draws a fresh sample."""
        ds = self[split]
        if isinstance(ds, TensorSplit):
            return ds.data
        if isinstance(ds, DynamicallyBinarized):
            return ds.sample(slice(None))
        raise TypeError(f"split '{split}' is a {type(ds).__name__}, not tensor-backed")

    def train_mean(self) -> Tensor:
        """E[x] over the training set (e.g. for the Bernoulli output bias logit(mean))."""
        train = self.train
        if isinstance(train, (TensorSplit, DynamicallyBinarized)):
            return train.mean()
        raise TypeError(f"train split is a {type(train).__name__}, not tensor-backed")

    def loader(
        self,
        split: str,
        batch_size: int,
        *,
        shuffle: bool | None = None,
        generator: torch.Generator | None = None,
        **kwargs: Any,
    ) -> DataLoader[Tensor]:
        """A DataLoader over a split; shuffled by default for "train" only."""
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        name = _ALIASES.get(split, split)
        shuffle = (name == "train") if shuffle is None else shuffle
        return DataLoader(self[split], batch_size=batch_size, shuffle=shuffle, generator=generator, **kwargs)


def dynamic_binary_splits(
    card: DatasetCard, train: Tensor, valid: Tensor, test: Tensor, *, seed: int, eval_seed: int
) -> DatasetSplits:
    """Splits for the dynamic-binarization protocol from gray values in [0, 1].

    train resamples x = 1[u < gray] at every access (stream seeded `seed`); valid and test
    are binarized once with `eval_seed` (123 in the IWAE protocol), so every run evaluates on
    the same bits. Shapes: each (N_split, *event).
    """
    return DatasetSplits(
        card,
        DynamicallyBinarized(train, seed=seed),
        TensorSplit(binarize(valid, eval_seed)),
        TensorSplit(binarize(test, eval_seed)),
    )
