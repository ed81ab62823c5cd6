"""Frey Faces: 1,965 28x20 8-bit images of one face, split at random 1,565 / 200 / 200 and
modelled with a 256-way categorical likelihood per pixel (reported in bits/dim).

References:
    Mixtures of Local Linear Subspaces for Face Recognition, Frey, Colmenarez, Huang, 1998,
    CVPR (the data, distributed by Roweis as frey_rawface.mat).
    Sylvester Normalizing Flows for Variational Inference, van den Berg, Hasenclever,
    Tomczak, Welling, 2018, arXiv 1803.05649 (the split and likelihood).
"""

from __future__ import annotations

import numpy as np
import torch

from .card import DatasetCard, FileSpec
from .download import ensure_files
from .formats import read_mat
from .registry import LoadContext, register_dataset
from .splits import DatasetSplits, TensorSplit

__all__ = ["CARD", "FILE", "NUM_IMAGES", "load_frey_faces"]

# No public checksum of frey_rawface.mat could be found; the loader checks its structure.
FILE = FileSpec("frey_rawface.mat", ("https://cs.nyu.edu/~roweis/data/frey_rawface.mat",))
NUM_IMAGES = 1_965  # columns of 'ff'; checked on load
SIZES = (1_565, 200, 200)  # riannevdberg/sylvester-flows load_freyfaces: TRAIN, VAL, TEST
SPLIT_SEED = 123  # sylvester-flows --freyseed default; its paper averages seeds 123, 321, 231

CARD = DatasetCard(
    name="frey_faces",
    title="Frey Faces (28x20, 8-bit, 256-way categorical)",
    description="1,965 gray 28x20 video frames of Brendan Frey's face.",
    sizes=dict(zip(("train", "valid", "test"), SIZES, strict=True)),
    split_protocol="images permuted by np.random.RandomState(123).permutation (split_seed=); "
    "the first 1,565 train, the next 200 valid, the last 200 test",
    preprocessing="each column of 'ff' reshaped row-major to 28x20; pixels k scaled to "
    "x = k / 255 (k = round(255 x) is the class of the 256-way categorical likelihood)",
    likelihood="categorical256",
    event_shape=(1, 28, 20),
    values="k / 255 for the 8-bit pixel values k = 0..255",
    files=(FILE,),
    citation="Frey, Colmenarez, Huang. Mixtures of Local Linear Subspaces for Face "
    "Recognition. CVPR 1998. Protocol: van den Berg, Hasenclever, Tomczak, Welling. "
    "Sylvester Normalizing Flows for Variational Inference. UAI 2018, arXiv 1803.05649",
    protocol_source="riannevdberg/sylvester-flows utils/load_data.py (load_freyfaces)",
    notes=(
        (
            "frey_rawface.mat checksum unverified: no public source lists one; the loader checks "
            "the variable 'ff', its 560 x 1,965 shape and integer values 0..255 instead."
        ),
        (
            "sylvester-flows reads a pickle (freyfaces.pkl) of the same images; that its row "
            "order equals frey_rawface.mat's, and so that seed 123 gives its exact split, is "
            "unverified."
        ),
        "The split is random: report the split seed with every number.",
    ),
)


@register_dataset(CARD)
def load_frey_faces(ctx: LoadContext, *, split_seed: int = SPLIT_SEED) -> DatasetSplits:
    """Frey Faces; items (1, 28, 20) holding k / 255 for the pixel values k = 0..255."""
    paths = ensure_files(CARD.name, ctx.folder(CARD.name), [FILE], download=ctx.download, opener=ctx.opener)
    ff = read_mat(paths[FILE.name], ["ff"])["ff"]
    if ff.shape != (28 * 20, NUM_IMAGES):
        raise ValueError(f"{paths[FILE.name]}: 'ff' must be (560, {NUM_IMAGES}), got {ff.shape}")
    # Checked by value, not dtype: what matters is 8-bit pixel values, however stored.
    if (
        not np.issubdtype(ff.dtype, np.number)
        or ff.min() < 0
        or ff.max() > 255
        or (np.issubdtype(ff.dtype, np.floating) and not np.array_equal(ff, np.round(ff)))
    ):
        raise ValueError(
            f"{paths[FILE.name]}: 'ff' must hold integer pixel values 0..255, got {ff.dtype} "
            f"in [{ff.min()}, {ff.max()}]"
        )
    pixels = np.ascontiguousarray(ff.T).astype(np.float64)
    images = torch.from_numpy(pixels / 255.0).to(ctx.dtype).reshape(-1, 1, 28, 20)
    images = images[torch.from_numpy(np.random.RandomState(split_seed).permutation(NUM_IMAGES))]
    n_train, n_valid, n_test = SIZES
    if n_train + n_valid + n_test > NUM_IMAGES:
        raise ValueError(f"split sizes {SIZES} exceed the {NUM_IMAGES} images")
    return DatasetSplits(
        CARD,
        TensorSplit(images[:n_train]),
        TensorSplit(images[n_train : n_train + n_valid]),
        TensorSplit(images[n_train + n_valid : n_train + n_valid + n_test]),
    )
