"""Omniglot 28x28 as Burda et al. prepared it (`chardata.mat`): dynamic binarization, the
24,345 training images shuffled with seed 123 and the last 1,345 held out for validation.

References:
    Human-level concept learning through probabilistic program induction, Lake,
    Salakhutdinov, Tenenbaum, 2015, Science (the dataset).
    Importance Weighted Autoencoders, Burda, Grosse, Salakhutdinov, 2015, arXiv 1509.00519
    (the 28x28 version and the protocol).
"""

from __future__ import annotations

import numpy as np
import torch

from .card import DatasetCard, FileSpec
from .download import ensure_files
from .formats import fortran_images, read_mat
from .registry import LoadContext, register_dataset
from .splits import DatasetSplits, dynamic_binary_splits

__all__ = ["CARD", "FILE", "NUM_TRAIN", "load_omniglot"]

# No public checksum of chardata.mat could be found (not in torchvision, tfds or the IWAE
# repo); the loader checks its structure instead.
FILE = FileSpec(
    "chardata.mat",
    ("https://github.com/yburda/iwae/raw/master/datasets/OMNIGLOT/chardata.mat",),
)
NUM_TRAIN = 24_345  # columns of 'data' (yburda/iwae); checked on load
NUM_VALID = 1_345  # yburda/iwae datasets.py: n_validation=1345 after the shuffle
SHUFFLE_SEED = 123  # yburda/iwae: np.random.RandomState(seed=123).permutation
TEST_SEED = 123

CARD = DatasetCard(
    name="omniglot",
    title="Omniglot 28x28 (Burda et al.), dynamic binarization",
    description="Handwritten characters from 50 alphabets, downsampled to 28x28 gray.",
    sizes={"train": NUM_TRAIN - NUM_VALID, "valid": NUM_VALID, "test": 8_070},
    split_protocol="the 24,345 'data' images permuted by np.random.RandomState(123)"
    ".permutation; the last 1,345 are validation; the 'testdata' images are test",
    preprocessing="each column reshaped in Fortran (MATLAB) order to 28x28; train: x = 1[u < "
    "gray] resampled at every access; valid and test binarized once with seed 123 (test_seed=)",
    likelihood="bernoulli",
    event_shape=(1, 28, 28),
    values="{0, 1} as float",
    files=(FILE,),
    citation="Lake, Salakhutdinov, Tenenbaum. Human-level concept learning through "
    "probabilistic program induction. Science 2015. 28x28 version: Burda, Grosse, "
    "Salakhutdinov. Importance Weighted Autoencoders. arXiv 1509.00519",
    protocol_source="yburda/iwae datasets.py (binarized_shuffled_omniglot)",
    notes=(
        (
            "chardata.mat checksum unverified: no public source lists one; the loader checks "
            "the variables, the 24,345 training columns and the value range instead."
        ),
        "test size 8,070 is unverified against the paper (REFERENCES.md); it is not enforced.",
    ),
)


@register_dataset(CARD)
def load_omniglot(ctx: LoadContext, *, num_valid: int = NUM_VALID, test_seed: int = TEST_SEED) -> DatasetSplits:
    """Omniglot (IWAE protocol); items (1, 28, 28) in {0, 1}."""
    paths = ensure_files(CARD.name, ctx.folder(CARD.name), [FILE], download=ctx.download, opener=ctx.opener)
    mat = read_mat(paths[FILE.name], ["data", "testdata"])
    data, testdata = mat["data"], mat["testdata"]
    for key, arr in (("data", data), ("testdata", testdata)):
        if arr.ndim != 2 or arr.shape[0] != 28 * 28:
            raise ValueError(f"{paths[FILE.name]}: '{key}' must be (784, N), got {arr.shape}")
    if data.shape[1] != NUM_TRAIN:
        raise ValueError(f"{paths[FILE.name]}: expected {NUM_TRAIN:,} training images, found {data.shape[1]:,}")
    if not 0 < num_valid < data.shape[1]:
        raise ValueError(f"num_valid must be in [1, {data.shape[1] - 1}], got {num_valid}")

    def images(columns: np.ndarray) -> torch.Tensor:
        flat = fortran_images(columns.T.astype(np.float64), 28, 28)
        return torch.from_numpy(np.ascontiguousarray(flat)).to(ctx.dtype).reshape(-1, 1, 28, 28)

    train = images(data)[torch.from_numpy(np.random.RandomState(SHUFFLE_SEED).permutation(data.shape[1]))]
    return dynamic_binary_splits(
        CARD,
        train[:-num_valid],
        train[-num_valid:],
        images(testdata),
        seed=ctx.seed,
        eval_seed=test_seed,
    )
