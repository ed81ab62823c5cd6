"""MNIST with dynamic binarization, the IWAE protocol: 59,600 train, the last 400 training
images as validation, 10,000 test binarized once with seed 123.

References:
    Gradient-Based Learning Applied to Document Recognition, LeCun, Bottou, Bengio,
    Haffner, 1998 (the dataset).
    Importance Weighted Autoencoders, Burda, Grosse, Salakhutdinov, 2015, arXiv 1509.00519
    (the protocol).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from .card import DatasetCard, FileSpec
from .download import ensure_files
from .formats import read_idx
from .registry import LoadContext, register_dataset
from .splits import DatasetSplits, dynamic_binary_splits

__all__ = ["CARD", "COUNTS", "FILES", "load_idx_dynamic", "load_mnist", "read_idx_gray"]

# Mirrors in the order torchvision tries them; yann.lecun.com now often refuses downloads.
_MIRRORS = ("https://ossci-datasets.s3.amazonaws.com/mnist/", "http://yann.lecun.com/exdb/mnist/")
# sha256 and sizes: tensorflow/datasets url_checksums/mnist.txt; md5: torchvision MNIST.resources.
FILES = {
    "train": FileSpec(
        "train-images-idx3-ubyte.gz",
        tuple(m + "train-images-idx3-ubyte.gz" for m in _MIRRORS),
        sha256="440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
        md5="f68b3c2dcbeaaa9fbdd348bbdeb94873",
        size=9912422,
        checksum_source="tensorflow_datasets url_checksums/mnist.txt; torchvision MNIST",
    ),
    "test": FileSpec(
        "t10k-images-idx3-ubyte.gz",
        tuple(m + "t10k-images-idx3-ubyte.gz" for m in _MIRRORS),
        sha256="8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
        md5="9fb629c4189551a2d022fa330f9573f3",
        size=1648877,
        checksum_source="tensorflow_datasets url_checksums/mnist.txt; torchvision MNIST",
    ),
}
COUNTS = (60_000, 10_000)  # images in the train and test files; checked on load
NUM_VALID = 400  # yburda/iwae datasets.py: n_validation=400, taken from the end, no shuffle
TEST_SEED = 123  # the IWAE protocol's fixed test binarization (REFERENCES.md)

CARD = DatasetCard(
    name="mnist",
    title="MNIST, dynamic binarization (IWAE protocol)",
    description="70,000 handwritten digits, 28x28 gray; binarized stochastically.",
    sizes={"train": 59_600, "valid": 400, "test": 10_000},
    split_protocol="the 60,000 training images in file order; the last 400 are validation "
    "(num_valid=); the 10,000 test images",
    preprocessing="gray = pixel / 255; train: x = 1[u < gray] resampled at every access "
    "(seeded by load(seed=)); valid and test binarized once with seed 123 (test_seed=)",
    likelihood="bernoulli",
    event_shape=(1, 28, 28),
    values="{0, 1} as float",
    files=tuple(FILES.values()),
    citation="LeCun, Bottou, Bengio, Haffner. Gradient-Based Learning Applied to Document "
    "Recognition. Proc. IEEE 1998. Protocol: Burda, Grosse, Salakhutdinov. Importance "
    "Weighted Autoencoders. ICLR 2016, arXiv 1509.00519",
    protocol_source="yburda/iwae datasets.py (binarized_mnist)",
    notes=("Never compare with static (Larochelle & Murray) binarization: see 'static_mnist'.",),
)


def read_idx_gray(path: Path, num: int | None, dtype: torch.dtype) -> Tensor:
    """8-bit IDX images as gray values pixel / 255 with shape (N, 1, H, W)."""
    images = read_idx(path)
    if images.dtype != np.uint8 or images.ndim != 3:
        raise ValueError(f"{path}: expected uint8 images (N, H, W), got {images.dtype} {images.shape}")
    if num is not None and images.shape[0] != num:
        raise ValueError(f"{path}: expected {num:,} images, found {images.shape[0]:,}")
    return torch.from_numpy(images.astype(np.float64) / 255.0).to(dtype).unsqueeze(1)


def load_idx_dynamic(
    ctx: LoadContext,
    card: DatasetCard,
    files: dict[str, FileSpec],
    *,
    num_valid: int,
    test_seed: int,
    counts: tuple[int, int],
) -> DatasetSplits:
    """An IDX image dataset under the dynamic-binarization protocol (last num_valid = valid)."""
    paths = ensure_files(card.name, ctx.folder(card.name), files.values(), download=ctx.download, opener=ctx.opener)
    train = read_idx_gray(paths[files["train"].name], counts[0], ctx.dtype)
    test = read_idx_gray(paths[files["test"].name], counts[1], ctx.dtype)
    if not 0 < num_valid < train.shape[0]:
        raise ValueError(f"num_valid must be in [1, {train.shape[0] - 1}], got {num_valid}")
    return dynamic_binary_splits(card, train[:-num_valid], train[-num_valid:], test, seed=ctx.seed, eval_seed=test_seed)


@register_dataset(CARD)
def load_mnist(ctx: LoadContext, *, num_valid: int = NUM_VALID, test_seed: int = TEST_SEED) -> DatasetSplits:
    """MNIST under the IWAE dynamic-binarization protocol; items (1, 28, 28) in {0, 1}."""
    return load_idx_dynamic(ctx, CARD, FILES, num_valid=num_valid, test_seed=test_seed, counts=COUNTS)
