"""Benchmark datasets: the field's standard VAE benchmarks read from their published files,
embedded real digits that need no download, and synthetic data with exact log p(x).

    splits = vaebench.datasets.load("mnist")        # DatasetSplits(train, valid, test)
    x = next(iter(splits.loader("train", 20)))       # (20, 1, 28, 28) in {0, 1}
    print(vaebench.datasets.card("mnist").render())

Every split's items are float tensors of shape `card.event_shape`; `card.likelihood` says
what they hold ("bernoulli": {0, 1}; "categorical256"/"discretized_logistic": 8-bit pixels
k = 0..255 scaled to x = k / 255, so k = round(255 x); "gaussian": reals). A dataset is one
module + `@register_dataset(CARD)`; the import below is its registry entry.
"""

import warnings

from . import (  # noqa: F401 - each import registers its dataset
    caltech101_silhouettes,
    cifar10,
    digits8,
    digits28,
    fashion_mnist,
    frey_faces,
    linear_gaussian,
    mnist,
    omniglot,
    static_mnist,
)
from .binarization import DynamicallyBinarized, binarize
from .card import DatasetCard, FileSpec, LikelihoodName
from .download import (
    ChecksumMismatch,
    DatasetNotFound,
    default_data_dir,
    download_file,
    ensure_files,
    resolve_data_dir,
    verify_file,
)
from .linear_gaussian import LinearGaussian
from .registry import DATASETS, DatasetSource, LoadContext, card, load, register_dataset
from .splits import DatasetSplits, ExactLogLikelihood, TensorSplit

__all__ = [
    "DATASETS",
    "ChecksumMismatch",
    "DatasetCard",
    "DatasetNotFound",
    "DatasetSource",
    "DatasetSplits",
    "DynamicallyBinarized",
    "ExactLogLikelihood",
    "FileSpec",
    "LikelihoodName",
    "LinearGaussian",
    "LoadContext",
    "TensorSplit",
    "binarize",
    "card",
    "default_data_dir",
    "download_file",
    "ensure_files",
    "load",
    "register_dataset",
    "resolve_data_dir",
    "verify_file",
]


def __getattr__(name: str) -> object:
    # The Literal of likelihood names was called `Likelihood`, the name of the class in
    # vaebench.models; the old import keeps working, with a warning naming the new one.
    if name == "Likelihood":
        warnings.warn(
            "vaebench.datasets.Likelihood is now vaebench.datasets.LikelihoodName (vaebench.models.Likelihood "
            "is the likelihood class)",
            DeprecationWarning,
            stacklevel=2,
        )
        return LikelihoodName
    raise AttributeError(f"module 'vaebench.datasets' has no attribute {name!r}")
