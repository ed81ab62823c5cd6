"""Stochastic binarization of gray values in [0, 1]: fixed by a seed (evaluation sets), or
resampled at every access (dynamic binarization for training).

x = 1[u < gray], u ~ U[0, 1): P(x = 1) = gray; the IWAE protocol (yburda/iwae).

References:
    Importance Weighted Autoencoders, Burda, Grosse, Salakhutdinov, 2015, arXiv 1509.00519.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.utils.data import Dataset, get_worker_info

__all__ = ["DynamicallyBinarized", "binarize"]

# Mixes the dataset seed with a DataLoader worker's seed into one 63-bit generator seed.
_MIX = 0x9E3779B97F4A7C15
_MASK = (1 << 63) - 1


def _check_gray(gray: Tensor, name: str) -> None:
    if not gray.is_floating_point():
        raise TypeError(f"{name} must be a floating tensor of gray values in [0, 1], got {gray.dtype}")
    if gray.numel() and (torch.isnan(gray).any() or gray.min() < 0 or gray.max() > 1):
        raise ValueError(
            f"{name} must hold gray values in [0, 1] (divide 8-bit pixels by 255), got range "
            f"[{gray.min().item()}, {gray.max().item()}]"
        )


def binarize(gray: Tensor, seed: int) -> Tensor:
    """One fixed binarization x = 1[u < gray] with u drawn from a CPU generator seeded `seed`.

    The same (gray, seed) always gives the same x, on any machine: this is how the IWAE
    protocol fixes the test set (seed 123). Shapes: gray: (N, *event) -> (N, *event).
    """
    _check_gray(gray, "gray")
    g = torch.Generator(device="cpu").manual_seed(seed)
    u = torch.rand(gray.shape, generator=g, dtype=torch.float64)
    return (u < gray.detach().cpu().double()).to(gray.dtype)


class DynamicallyBinarized(Dataset[Tensor]):
    """Gray images whose every access draws a fresh binarization x = 1[u < gray].

    Each epoch therefore sees a new binarization (the "dynamic" protocol). Draws come from
    a torch.Generator seeded with `seed`, so a single-process run is reproducible; inside a
    DataLoader worker the generator is re-seeded from (seed, the worker's seed), so workers
    never repeat each other's noise.

    Shapes: gray: (N, *event) -> items (*event) in {0, 1} with gray's dtype.
    """

    def __init__(self, gray: Tensor, seed: int = 0) -> None:
        _check_gray(gray, "gray")
        self.gray = gray
        self.seed = seed
        self._generator: torch.Generator | None = None
        self._owner: int | None = None  # the worker seed the generator was made for

    def _rng(self) -> torch.Generator:
        info = get_worker_info()
        owner = None if info is None else info.seed
        if self._generator is None or owner != self._owner:
            seed = self.seed if owner is None else ((self.seed * _MIX) ^ owner) & _MASK
            self._generator = torch.Generator(device="cpu").manual_seed(seed)
            self._owner = owner
        return self._generator

    def __getstate__(self) -> dict[str, object]:
        # A copy sent to a worker process starts its own stream (see _rng), not this one's.
        state = dict(self.__dict__)
        state["_generator"], state["_owner"] = None, None
        return state

    def state_dict(self) -> dict[str, object]:
        """The position of this process's binarization stream, so an interrupted training
        run resumes with the draws it would have made (the trainer checkpoints it)."""
        return {"seed": self.seed, "generator": self._rng().get_state()}

    def load_state_dict(self, state: dict[str, object]) -> None:
        if state.get("seed") != self.seed:
            raise ValueError(
                f"DynamicallyBinarized.load_state_dict: state was saved with seed "
                f"{state.get('seed')}, this dataset has seed {self.seed}"
            )
        self._rng().set_state(state["generator"])  # type: ignore[arg-type]

    def sample(self, index: Tensor | slice | int) -> Tensor:
        """A fresh binarization of gray[index] (index: an int, a slice or a 1-D LongTensor)."""
        gray = self.gray.index_select(0, index) if isinstance(index, Tensor) else self.gray[index]
        u = torch.rand(gray.shape, generator=self._rng(), dtype=gray.dtype, device="cpu")
        return (u.to(gray.device) < gray).to(gray.dtype)

    def __len__(self) -> int:
        return self.gray.shape[0]

    def __getitem__(self, index: int) -> Tensor:
        return self.sample(index)

    def __getitems__(self, indices: list[int]) -> list[Tensor]:
        # One draw for the whole minibatch: the DataLoader's batched fetch path.
        return list(self.sample(torch.as_tensor(indices)).unbind(0))

    def mean(self) -> Tensor:
        """The expected value of an example, E[x] = mean of gray over the N examples."""
        return self.gray.mean(0)
