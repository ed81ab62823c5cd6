"""CIFAR-10 as an 8-bit density-estimation benchmark: 50,000 train / 10,000 test, pixels
x = k / 255 for a discretized logistic likelihood over the 256 levels, reported in bits/dim =
NLL / (3072 ln 2).

References:
    Learning Multiple Layers of Features from Tiny Images, Krizhevsky, 2009 (the dataset).
    Improved Variational Inference with Inverse Autoregressive Flow, Kingma, Salimans,
    Jozefowicz, Chen, Sutskever, Welling, 2016, arXiv 1606.04934 (the protocol).
"""

from __future__ import annotations

import numpy as np
import torch

from .card import DatasetCard, FileSpec
from .download import ensure_files, verify_file
from .formats import extract_tar, read_cifar_batch
from .registry import LoadContext, register_dataset
from .splits import DatasetSplits, TensorSplit

__all__ = ["ARCHIVE", "BATCHES", "CARD", "COUNTS", "load_cifar10"]

_FOLDER = "cifar-10-batches-py"
_SOURCE = "torchvision CIFAR10 (tgz_md5, train_list, test_list)"
# md5s from torchvision's CIFAR10; the archive's is also the one Krizhevsky's page states.
ARCHIVE = FileSpec(
    "cifar-10-python.tar.gz",
    ("https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",),
    md5="c58f30108f718f92721af3b95e74349a",
    checksum_source=_SOURCE,
)
BATCHES = {
    "data_batch_1": "c99cafc152244af753f735de768cd75f",
    "data_batch_2": "d4bba439e000b95fd0a9bffe97cbabec",
    "data_batch_3": "54ebc095f3ab1f0389bbae665268c751",
    "data_batch_4": "634d18415352ddfa80567beed471001a",
    "data_batch_5": "482c414d41f54cd18b22e5b47cb7c3cb",
    "test_batch": "40351d587109b95175f43aff81a1287e",
}
COUNTS = (50_000, 10_000)

CARD = DatasetCard(
    name="cifar10",
    title="CIFAR-10 (8-bit, discretized logistic, bits/dim)",
    description="60,000 32x32 colour images in 10 classes.",
    sizes={"train": 50_000, "valid": 0, "test": 10_000},
    split_protocol="data_batch_1..5 in order are train, test_batch is test; the protocol has "
    "no validation set (num_valid= holds out the last N training images)",
    preprocessing="8-bit pixels k scaled to x = k / 255 (k = round(255 x)), channels first; "
    "no dequantization (the likelihood is discrete)",
    likelihood="discretized_logistic",
    event_shape=(3, 32, 32),
    values="k / 255 for the 8-bit pixel values k = 0..255",
    files=(ARCHIVE,),
    citation="Krizhevsky. Learning Multiple Layers of Features from Tiny Images. Tech. report "
    "2009. Protocol: Kingma et al. Improved Variational Inference with Inverse "
    "Autoregressive Flow. NeurIPS 2016, arXiv 1606.04934",
    protocol_source="openai/iaf",
    notes=("bits/dim = NLL / (3072 ln 2); the published IAF number is 3.111 (10,000 samples).",),
)


def _batch_specs() -> list[FileSpec]:
    return [FileSpec(name, (ARCHIVE.urls[0],), md5=md5, checksum_source=_SOURCE) for name, md5 in BATCHES.items()]


def _scaled(pixels: np.ndarray, dtype: torch.dtype) -> torch.Tensor:
    """uint8 pixels k as x = k / 255, divided in float64 so each x is k / 255 rounded once."""
    return torch.from_numpy(pixels.astype(np.float64) / 255.0).to(dtype)


@register_dataset(CARD)
def load_cifar10(ctx: LoadContext, *, num_valid: int = 0) -> DatasetSplits:
    """CIFAR-10; items (3, 32, 32) holding k / 255 for the pixel values k = 0..255.

    Reads `cifar10/cifar-10-batches-py/<batch>`; when a batch is missing, extracts it from
    `cifar10/cifar-10-python.tar.gz` (downloaded when allowed). Every batch's md5 is checked
    before it is unpickled.
    """
    folder = ctx.folder(CARD.name)
    batch_dir = folder / _FOLDER
    specs = _batch_specs()
    if any(not (batch_dir / s.name).is_file() for s in specs):
        archive = ensure_files(CARD.name, folder, [ARCHIVE], download=ctx.download, opener=ctx.opener)
        extract_tar(archive[ARCHIVE.name], folder, [f"{_FOLDER}/{s.name}" for s in specs])
    arrays = {}
    for spec in specs:
        path = batch_dir / spec.name
        verify_file(path, spec)
        arrays[spec.name] = read_cifar_batch(path)[0]
    train = np.concatenate([arrays[f"data_batch_{i}"] for i in range(1, 6)])
    test = arrays["test_batch"]
    for what, arr, n in (("train", train, COUNTS[0]), ("test", test, COUNTS[1])):
        if arr.shape[0] != n:
            raise ValueError(f"{batch_dir}: expected {n:,} {what} images, found {arr.shape[0]:,}")
    if not 0 <= num_valid < train.shape[0]:
        raise ValueError(f"num_valid must be in [0, {train.shape[0] - 1}], got {num_valid}")
    train_t = _scaled(train, ctx.dtype)
    cut = train_t.shape[0] - num_valid
    return DatasetSplits(
        CARD,
        TensorSplit(train_t[:cut]),
        TensorSplit(train_t[cut:]),
        TensorSplit(_scaled(test, ctx.dtype)),
    )
