"""Readers for the original published file formats: IDX (MNIST, Fashion-MNIST), `.amat`
(Larochelle & Murray's binarized MNIST), MATLAB `.mat` (Omniglot, Frey Faces, Caltech 101
Silhouettes) and CIFAR-10's python pickle batches inside their `.tar.gz`.

Each reader checks the structure it relies on and raises a ValueError naming the file and
what was found, so a wrong or damaged file fails loudly instead of loading garbage.
"""

from __future__ import annotations

import gzip
import os
import pickle
import struct
import tarfile
import tempfile
import zlib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "extract_tar",
    "fortran_images",
    "read_amat",
    "read_cifar_batch",
    "read_idx",
    "read_mat",
]

# IDX type codes (third magic byte) to big-endian numpy dtypes; from the MNIST page's spec.
_IDX_DTYPES: dict[int, np.dtype[Any]] = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


def _read_bytes(path: Path) -> bytes:
    with open(path, "rb") as f:
        head = f.read(2)
    if head != b"\x1f\x8b":
        return path.read_bytes()
    try:
        with gzip.open(path, "rb") as f:
            return f.read()
    except (EOFError, gzip.BadGzipFile, zlib.error) as e:  # a torn download or a damaged archive
        raise ValueError(f"{path} is a damaged gzip file ({e}): delete it and download it again") from e


def read_idx(path: Path) -> np.ndarray:
    """An IDX file (gzip-compressed or not) as an array of its stored dtype and shape.

    Format: 2 zero bytes, a type code byte, the number of dims n, n big-endian uint32 sizes,
    then the values in C order.
    """
    raw = _read_bytes(path)
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
        raise ValueError(f"{path} is not an IDX file: bad magic number {raw[:4]!r}")
    dtype, ndim = _IDX_DTYPES[raw[2]], raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(
            f"{path}: IDX header says {ndim} dims ({header} header bytes), the file has {len(raw)} bytes: "
            "it is truncated or corrupted"
        )
    shape = struct.unpack(f">{ndim}I", raw[4:header])
    expected = int(np.prod(shape)) * dtype.itemsize
    if len(raw) - header != expected:
        raise ValueError(
            f"{path}: IDX header says shape {shape} ({expected:,} bytes of data), "
            f"found {len(raw) - header:,} bytes: the file is truncated or corrupted"
        )
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))


def read_amat(path: Path, num_columns: int = 784) -> np.ndarray:
    """A binary `.amat` file (one example per line, 0/1 separated by spaces) as uint8 (N, D)."""
    try:
        values = np.loadtxt(path, dtype=np.uint8, ndmin=2)
    except ValueError as e:
        raise ValueError(f"{path} is not a binary .amat file: {e}") from e
    if values.shape[1] != num_columns:
        raise ValueError(f"{path}: expected {num_columns} values per line, found {values.shape[1]}")
    if values.size and values.max() > 1:
        raise ValueError(f"{path} is not a binary .amat file: found the value {values.max()}")
    return values


def read_mat(path: Path, keys: Iterable[str]) -> dict[str, np.ndarray]:
    """The named variables of a MATLAB `.mat` file (v5 format, via scipy.io.loadmat)."""
    # Imported here, not at the top: scipy.io costs 0.2-0.5 s, and this module is on the path of
    # every `vaebench run` (the dataset registry), including a config error that must print fast.
    import scipy.io

    try:
        mat = scipy.io.loadmat(path)
    except Exception as e:  # scipy raises several types for non-.mat input
        raise ValueError(f"{path} is not a readable .mat file: {e}") from e
    keys = list(keys)
    missing = [k for k in keys if k not in mat]
    if missing:
        found = sorted(k for k in mat if not k.startswith("__"))
        raise ValueError(f"{path} lacks variables {missing}; it has {found}")
    return {k: np.asarray(mat[k]) for k in keys}


def fortran_images(flat: np.ndarray, height: int, width: int) -> np.ndarray:
    """Rows stored column-major (MATLAB order) turned into row-major (N, height * width).

    Equal to `flat.reshape(-1, height, width).reshape(-1, height * width, order="F")` as the
    IWAE code writes it for Omniglot; that call transposes each image, which is what this
    does without copying the whole array in Fortran order.
    """
    n = flat.shape[0]
    return flat.reshape(n, height, width).transpose(0, 2, 1).reshape(n, height * width)


def read_cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """A CIFAR python batch as uint8 images (N, 3, 32, 32) and int64 labels (N,).

    The batches are pickles: call this only on files whose checksum passed.
    """
    with open(path, "rb") as f:
        try:
            batch: dict[Any, Any] = pickle.load(f, encoding="bytes")
        except Exception as e:
            raise ValueError(f"{path} is not a CIFAR python batch: {e}") from e
    if not isinstance(batch, dict) or b"data" not in batch or b"labels" not in batch:
        raise ValueError(f"{path} is not a CIFAR-10 python batch (no b'data'/b'labels' keys)")
    try:  # no silent casts: pixels are bytes 0..255 and labels the classes 0..9
        data, labels = np.asarray(batch[b"data"]), np.asarray(batch[b"labels"])
    except (TypeError, ValueError) as e:
        raise ValueError(f"{path}: b'data'/b'labels' are not arrays ({e})") from e
    if data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
        raise ValueError(f"{path}: b'data' must be (N, 3072), got {data.shape}")
    if data.size and (data.dtype.kind not in "iu" or data.min() < 0 or data.max() > 255):
        raise ValueError(f"{path}: b'data' must hold 8-bit pixels 0..255, got {data.dtype} values")
    if labels.shape != (data.shape[0],):
        raise ValueError(f"{path}: b'labels' must be ({data.shape[0]},), one per image, got {labels.shape}")
    if labels.size and (labels.dtype.kind not in "iu" or labels.min() < 0 or labels.max() > 9):
        raise ValueError(f"{path}: b'labels' must be classes 0..9, got {labels.dtype} values")
    return data.astype(np.uint8).reshape(-1, 3, 32, 32), labels.astype(np.int64)


def extract_tar(archive: Path, dest: Path, members: Iterable[str]) -> None:
    """Extract the named members of a tar archive into `dest`, refusing unsafe paths.

    Members are extracted into a temporary folder inside `dest` and each is renamed into
    place when complete, so an interrupted extraction never leaves a partial file.
    """
    wanted = set(members)
    dest.mkdir(parents=True, exist_ok=True)
    with tarfile.open(archive) as tar:
        chosen = [m for m in tar.getmembers() if m.name in wanted]
        absent = wanted - {m.name for m in chosen}
        if absent:
            raise ValueError(f"{archive} lacks members {sorted(absent)}")
        for m in chosen:
            if not m.isfile() or m.name.startswith("/") or ".." in Path(m.name).parts:
                raise ValueError(f"{archive}: refusing to extract unsafe member {m.name!r}")
        with tempfile.TemporaryDirectory(dir=dest, prefix=".extract.") as tmp:
            if hasattr(tarfile, "data_filter"):  # Python >= 3.10.12 / 3.11.4: also sanitize
                tar.extractall(tmp, members=chosen, filter="data")
            else:  # pragma: no cover - older Pythons; members were checked above
                tar.extractall(tmp, members=chosen)
            for m in chosen:
                target = dest / m.name
                target.parent.mkdir(parents=True, exist_ok=True)
                os.replace(Path(tmp) / m.name, target)
