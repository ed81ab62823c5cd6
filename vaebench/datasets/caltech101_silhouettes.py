"""Caltech 101 Silhouettes 28x28 (split 1 of Marlin et al.): 4,100 / 2,264 / 2,307 binary
silhouettes of objects from the 101 Caltech categories, used as they are (already binary).

References:
    Inductive Principles for Restricted Boltzmann Machine Learning, Marlin, Swersky, Chen,
    de Freitas, 2010, AISTATS.
"""

from __future__ import annotations

import numpy as np
import torch

from .card import DatasetCard, FileSpec
from .download import ensure_files
from .formats import fortran_images, read_mat
from .registry import LoadContext, register_dataset
from .splits import DatasetSplits, TensorSplit

__all__ = ["CARD", "COUNTS", "FILE", "load_caltech101_silhouettes"]

# No public checksum of this file could be found; the loader checks its structure instead.
FILE = FileSpec(
    "caltech101_silhouettes_28_split1.mat",
    ("https://people.cs.umass.edu/~marlin/data/caltech101_silhouettes_28_split1.mat",),
)
_KEYS = {"train": "train_data", "valid": "val_data", "test": "test_data"}
COUNTS = {"train": 4_100, "valid": 2_264, "test": 2_307}

CARD = DatasetCard(
    name="caltech101_silhouettes",
    title="Caltech 101 Silhouettes 28x28 (split 1)",
    description="Binary 28x28 silhouettes of the objects in Caltech 101 (Marlin et al. 2010).",
    sizes=dict(COUNTS),
    split_protocol="the file's own split: train_data / val_data / test_data",
    preprocessing="each row reshaped in Fortran (MATLAB) order to 28x28 and inverted, x = 1 - "
    "pixel, so the silhouette is 1 (as sylvester-flows does); no binarization needed",
    likelihood="bernoulli",
    event_shape=(1, 28, 28),
    values="{0, 1} as float",
    files=(FILE,),
    citation="Marlin, Swersky, Chen, de Freitas. Inductive Principles for Restricted "
    "Boltzmann Machine Learning. AISTATS 2010",
    protocol_source="riannevdberg/sylvester-flows utils/load_data.py (load_caltech101silhouettes)",
    notes=(
        (
            "caltech101_silhouettes_28_split1.mat checksum unverified: no public source lists "
            "one; the loader checks the variables, their sizes and that the values are 0/1."
        ),
    ),
)


@register_dataset(CARD)
def load_caltech101_silhouettes(ctx: LoadContext) -> DatasetSplits:
    """Caltech 101 Silhouettes; items (1, 28, 28) in {0, 1}, identical in every run."""
    paths = ensure_files(CARD.name, ctx.folder(CARD.name), [FILE], download=ctx.download, opener=ctx.opener)
    path = paths[FILE.name]
    mat = read_mat(path, _KEYS.values())
    splits = {}
    for split, key in _KEYS.items():
        arr = mat[key]
        if arr.shape != (COUNTS[split], 28 * 28):
            raise ValueError(f"{path}: '{key}' must be ({COUNTS[split]}, 784), got {arr.shape}")
        if not np.isin(arr, (0, 1)).all():
            raise ValueError(f"{path}: '{key}' must hold 0/1 pixels, found other values")
        bits = 1.0 - fortran_images(arr.astype(np.float64), 28, 28)
        splits[split] = TensorSplit(torch.from_numpy(np.ascontiguousarray(bits)).to(ctx.dtype).reshape(-1, 1, 28, 28))
    return DatasetSplits(CARD, splits["train"], splits["valid"], splits["test"])
