"""Binarized MNIST with the fixed binarization of Larochelle & Murray: 50,000 / 10,000 /
10,000 from `binarized_mnist_{train,valid,test}.amat`.

References:
    The Neural Autoregressive Distribution Estimator, Larochelle, Murray, 2011, AISTATS.
    On the Quantitative Analysis of Deep Belief Networks, Salakhutdinov, Murray, 2008, ICML
    (the stochastic binarization the files hold).
"""

from __future__ import annotations

import torch

from .card import DatasetCard, FileSpec
from .download import ensure_files
from .formats import read_amat
from .registry import LoadContext, register_dataset
from .splits import DatasetSplits, TensorSplit

__all__ = ["CARD", "COUNTS", "FILES", "load_static_mnist"]

_BASE = "http://www.cs.toronto.edu/~larocheh/public/datasets/binarized_mnist/"
_SOURCE = "tensorflow_datasets url_checksums/binarized_mnist.txt"
# sha256 and sizes from tensorflow/datasets url_checksums/binarized_mnist.txt.
FILES = {
    "train": FileSpec(
        "binarized_mnist_train.amat",
        (_BASE + "binarized_mnist_train.amat",),
        sha256="ad693b29f94c14277b095f5238ddefbbdaaae0939789dd2f4f0205278cee3e4d",
        size=78400000,
        checksum_source=_SOURCE,
    ),
    "valid": FileSpec(
        "binarized_mnist_valid.amat",
        (_BASE + "binarized_mnist_valid.amat",),
        sha256="1de3d397c40fe8eeb33dafd4099a1f665ec01e96d9be234aaeeac8a34930e2e2",
        size=15680000,
        checksum_source=_SOURCE,
    ),
    "test": FileSpec(
        "binarized_mnist_test.amat",
        (_BASE + "binarized_mnist_test.amat",),
        sha256="e6687bfea3f820c174f33b7865140b2a2dd2930ef786f35d45795fc193b5ab2c",
        size=15680000,
        checksum_source=_SOURCE,
    ),
}
COUNTS = {"train": 50_000, "valid": 10_000, "test": 10_000}

CARD = DatasetCard(
    name="static_mnist",
    title="Binarized MNIST, fixed binarization (Larochelle & Murray 2011)",
    description="MNIST binarized once by sampling (Salakhutdinov & Murray 2008); the same bits for every run.",
    sizes=dict(COUNTS),
    split_protocol="the three published files as they are: 50,000 / 10,000 / 10,000 (the IWAE "
    "code concatenates train and valid and holds out the last 10,000 again: the same split)",
    preprocessing="none: the files hold the bits",
    likelihood="bernoulli",
    event_shape=(1, 28, 28),
    values="{0, 1} as float",
    files=tuple(FILES.values()),
    citation="Larochelle, Murray. The Neural Autoregressive Distribution Estimator. AISTATS "
    "2011; Salakhutdinov, Murray. On the Quantitative Analysis of Deep Belief Networks. "
    "ICML 2008",
    protocol_source="yburda/iwae, riannevdberg/sylvester-flows",
    notes=("Never compare with dynamic binarization: see 'mnist'.",),
)


@register_dataset(CARD)
def load_static_mnist(ctx: LoadContext) -> DatasetSplits:
    """Static binarized MNIST; items (1, 28, 28) in {0, 1}, identical in every run."""
    paths = ensure_files(CARD.name, ctx.folder(CARD.name), FILES.values(), download=ctx.download, opener=ctx.opener)
    splits = {}
    for split, spec in FILES.items():
        bits = read_amat(paths[spec.name], num_columns=28 * 28)
        if bits.shape[0] != COUNTS[split]:
            raise ValueError(f"{paths[spec.name]}: expected {COUNTS[split]:,} rows, found {bits.shape[0]:,}")
        splits[split] = TensorSplit(torch.from_numpy(bits).to(ctx.dtype).reshape(-1, 1, 28, 28))
    return DatasetSplits(CARD, splits["train"], splits["valid"], splits["test"])
