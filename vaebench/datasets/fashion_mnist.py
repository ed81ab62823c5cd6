"""Fashion-MNIST with dynamic binarization, split like dynamic MNIST (IWAE protocol): the
last 400 of the 60,000 training images are validation, 10,000 test binarized with seed 123.

References:
    Fashion-MNIST: a Novel Image Dataset for Benchmarking Machine Learning Algorithms,
    Xiao, Rasul, Vollgraf, 2017, arXiv 1708.07747.
"""

from __future__ import annotations

from .card import DatasetCard, FileSpec
from .mnist import NUM_VALID, TEST_SEED, load_idx_dynamic
from .registry import LoadContext, register_dataset
from .splits import DatasetSplits

__all__ = ["CARD", "COUNTS", "FILES", "load_fashion_mnist"]

_MIRROR = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
_SOURCE = "tensorflow_datasets url_checksums/fashion_mnist.txt; torchvision FashionMNIST"
# sha256 and sizes: tensorflow/datasets url_checksums/fashion_mnist.txt;
# md5: torchvision FashionMNIST.resources.
FILES = {
    "train": FileSpec(
        "train-images-idx3-ubyte.gz",
        (_MIRROR + "train-images-idx3-ubyte.gz",),
        sha256="3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
        md5="8d4fb7e6c68d591d4c3dfef9ec88bf0d",
        size=26421880,
        checksum_source=_SOURCE,
    ),
    "test": FileSpec(
        "t10k-images-idx3-ubyte.gz",
        (_MIRROR + "t10k-images-idx3-ubyte.gz",),
        sha256="346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
        md5="bef4ecab320f06d8554ea6380940ec79",
        size=4422102,
        checksum_source=_SOURCE,
    ),
}
COUNTS = (60_000, 10_000)

CARD = DatasetCard(
    name="fashion_mnist",
    title="Fashion-MNIST, dynamic binarization",
    description="70,000 28x28 gray images of clothing (Zalando), a harder drop-in for MNIST.",
    sizes={"train": 59_600, "valid": 400, "test": 10_000},
    split_protocol="as dynamic MNIST (no published VAE protocol): the 60,000 training images "
    "in file order, the last 400 are validation (num_valid=); the 10,000 test images",
    preprocessing="gray = pixel / 255; train: x = 1[u < gray] resampled at every access "
    "(seeded by load(seed=)); valid and test binarized once with seed 123 (test_seed=)",
    likelihood="bernoulli",
    event_shape=(1, 28, 28),
    values="{0, 1} as float",
    files=tuple(FILES.values()),
    citation="Xiao, Rasul, Vollgraf. Fashion-MNIST: a Novel Image Dataset for Benchmarking "
    "Machine Learning Algorithms. arXiv 1708.07747, 2017",
    protocol_source="vaebench's choice, mirroring yburda/iwae's MNIST split",
)


@register_dataset(CARD)
def load_fashion_mnist(ctx: LoadContext, *, num_valid: int = NUM_VALID, test_seed: int = TEST_SEED) -> DatasetSplits:
    """Fashion-MNIST with dynamic binarization; items (1, 28, 28) in {0, 1}."""
    return load_idx_dynamic(ctx, CARD, FILES, num_valid=num_valid, test_seed=test_seed, counts=COUNTS)
