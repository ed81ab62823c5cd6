"""digits8: scikit-learn's 1,797 real 8x8 handwritten digits (no download), dynamically
binarized; the smallest real-data set, for smoke tests and CPU-only runs.

References:
    Optical Recognition of Handwritten Digits, Alpaydin, Kaynak, 1998, UCI Machine Learning
    Repository (the data scikit-learn ships).
"""

from __future__ import annotations

import numpy as np
import torch

from .card import DatasetCard
from .registry import LoadContext, register_dataset
from .splits import DatasetSplits, dynamic_binary_splits

__all__ = ["CARD", "load_digits8"]

SIZES = (1_397, 200, 200)
SPLIT_SEED = 123
TEST_SEED = 123

CARD = DatasetCard(
    name="digits8",
    title="scikit-learn 8x8 digits (embedded, dynamic binarization)",
    description="1,797 8x8 digits with 17 gray levels (0..16) from the UCI handwritten "
    "digits set, shipped with scikit-learn (sklearn.datasets.load_digits).",
    sizes=dict(zip(("train", "valid", "test"), SIZES, strict=True)),
    split_protocol="the 1,797 images permuted by np.random.RandomState(123).permutation; the "
    "first 1,397 train, the next 200 valid, the last 200 test",
    preprocessing="gray = value / 16; train: x = 1[u < gray] resampled at every access "
    "(seeded by load(seed=)); valid and test binarized once with seed 123 (test_seed=)",
    likelihood="bernoulli",
    event_shape=(1, 8, 8),
    values="{0, 1} as float",
    citation="Alpaydin, Kaynak. Optical Recognition of Handwritten Digits. UCI Machine "
    "Learning Repository 1998; Pedregosa et al. Scikit-learn. JMLR 2011",
    source="embedded",
    protocol_source="vaebench (binarization as the IWAE protocol)",
)


@register_dataset(CARD)
def load_digits8(ctx: LoadContext, *, test_seed: int = TEST_SEED) -> DatasetSplits:
    """scikit-learn's digits; items (1, 8, 8) in {0, 1}."""
    from sklearn.datasets import load_digits  # lazy: scikit-learn is slow to import and only this dataset needs it

    images = load_digits().images  # (1797, 8, 8), values 0..16
    gray = torch.from_numpy(images / 16.0).to(ctx.dtype).unsqueeze(1)
    gray = gray[torch.from_numpy(np.random.RandomState(SPLIT_SEED).permutation(gray.shape[0]))]
    a, b, _ = SIZES
    return dynamic_binary_splits(CARD, gray[:a], gray[a : a + b], gray[a + b :], seed=ctx.seed, eval_seed=test_seed)
