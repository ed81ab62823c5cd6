"""Damaged files for every format reader (truncated, wrong magic, wrong sizes, random bytes):
a ValueError naming the file, never another exception and never a silently wrong array."""

from __future__ import annotations

import gzip
import io
import pickle
import struct
import tempfile
from pathlib import Path

import numpy as np
import pytest
import scipy.io
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vaebench.datasets.formats import read_amat, read_cifar_batch, read_idx, read_mat
from vaebench.datasets.mnist import read_idx_gray

FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
_CODES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def idx_bytes(array: np.ndarray, code: int) -> bytes:
    return bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape) + array.tobytes()


@st.composite
def idx_files(draw: st.DrawFn) -> tuple[bytes, np.ndarray]:
    code = draw(st.sampled_from(sorted(_CODES)))
    shape = tuple(draw(st.lists(st.integers(0, 4), min_size=1, max_size=3)))
    array = np.arange(int(np.prod(shape)), dtype=np.int64).reshape(shape).astype(_CODES[code])
    return idx_bytes(array, code), array.astype(np.dtype(_CODES[code]).newbyteorder("="))


@st.composite
def damage(draw: st.DrawFn, data: bytes) -> bytes:
    kind = draw(st.sampled_from(["truncate", "append", "flip", "magic", "random"]))
    if kind == "truncate":
        return data[: draw(st.integers(0, max(len(data) - 1, 0)))]
    if kind == "append":
        return data + draw(st.binary(min_size=1, max_size=16))
    if kind == "flip" and data:
        i = draw(st.integers(0, len(data) - 1))
        return data[:i] + bytes([data[i] ^ draw(st.integers(1, 255))]) + data[i + 1 :]
    if kind == "magic":
        return draw(st.binary(min_size=4, max_size=4)) + data[4:]
    return draw(st.binary(max_size=64))


def write(data: bytes, name: str) -> Path:
    folder = Path(tempfile.mkdtemp(prefix="vaebench-fuzz-"))
    path = folder / name
    path.write_bytes(data)
    return path


def read_or_value_error(reader, path: Path):
    """The reader's result, or None after a ValueError that names the file; anything else fails."""
    try:
        return reader(path)
    except ValueError as exc:
        assert str(path) in str(exc), f"the error does not name the file: {exc}"
        return None


@FUZZ
@given(st.data(), idx_files(), st.booleans())
def test_idx_damaged_files(data: st.DataObject, file: tuple[bytes, np.ndarray], gz: bool) -> None:
    raw, array = file
    damaged = data.draw(damage(raw))
    blob = gzip.compress(damaged) if gz else damaged
    if gz and data.draw(st.booleans()):  # a torn download of the compressed file
        blob = blob[: data.draw(st.integers(0, len(blob) - 1))]
    got = read_or_value_error(read_idx, write(blob, "x-idx3-ubyte.gz"))
    if got is not None:  # accepted: then it is exactly what the (damaged) bytes say
        assert damaged[:4] == bytes(damaged[:4]) and got.size * got.itemsize == len(damaged) - 4 - 4 * damaged[3]
        if damaged == raw:
            np.testing.assert_array_equal(got, array)


@FUZZ
@given(st.data(), st.integers(1, 5))
def test_idx_gray_images_never_silently_wrong(data: st.DataObject, n: int) -> None:
    images = np.arange(n * 28 * 28, dtype=np.int64).reshape(n, 28, 28).astype(np.uint8)
    raw = idx_bytes(images, 0x08)
    damaged = data.draw(damage(raw))
    path = write(damaged, "x-images")
    try:
        got = read_idx_gray(path, n, torch.float32)
    except ValueError as exc:
        assert str(path) in str(exc)
        return
    # accepted: n images of 784 pixels each in [0, 1] (the header may have been bent, never the count)
    assert got.shape[:2] == (n, 1) and got.shape[2] * got.shape[3] == 784
    assert float(got.min()) >= 0 and float(got.max()) <= 1
    if damaged == raw:
        assert torch.equal(got, torch.from_numpy(images / 255.0).float().unsqueeze(1))


@FUZZ
@given(st.data(), st.integers(1, 4), st.integers(1, 6))
def test_amat_damaged_files(data: st.DataObject, n: int, d: int) -> None:
    rows = np.random.default_rng(n * 7 + d).integers(0, 2, (n, d))
    text = "\n".join(" ".join(map(str, r)) for r in rows).encode() + b"\n"
    damaged = data.draw(damage(text))
    got = read_or_value_error(lambda p: read_amat(p, num_columns=d), write(damaged, "x.amat"))
    if got is not None:
        assert got.dtype == np.uint8 and got.shape[1] == d and (got.size == 0 or got.max() <= 1)
        if damaged == text:
            np.testing.assert_array_equal(got, rows)


@FUZZ
@given(st.data())
def test_mat_damaged_files(data: st.DataObject) -> None:
    buf = io.BytesIO()
    scipy.io.savemat(buf, {"ff": np.arange(12, dtype=np.uint8).reshape(3, 4)})
    raw = buf.getvalue()
    damaged = data.draw(damage(raw))
    got = read_or_value_error(lambda p: read_mat(p, ["ff"]), write(damaged, "x.mat"))
    if got is not None and damaged == raw:
        np.testing.assert_array_equal(got["ff"], np.arange(12).reshape(3, 4))


@st.composite
def cifar_batches(draw: st.DrawFn) -> tuple[object, bool]:
    """A batch-like object, and whether it is a valid batch."""
    n = draw(st.integers(0, 3))
    n_labels = draw(st.sampled_from([n, n + 1, max(n - 1, 0)]))
    width = draw(st.sampled_from([3072, 3071]))
    top = draw(st.sampled_from([255, 256, -1]))
    data = np.full((n, width), top, dtype=np.int64)
    labels = draw(st.lists(st.integers(-1, 10), min_size=n_labels, max_size=n_labels))
    batch = {b"data": data, b"labels": labels}
    if draw(st.booleans()):
        batch.pop(draw(st.sampled_from([b"data", b"labels"])))
    valid = (
        len(batch) == 2
        and n_labels == n
        and width == 3072
        and (n == 0 or top == 255)
        and all(0 <= label <= 9 for label in labels)
    )
    return batch, valid


@FUZZ
@given(cifar_batches(), st.data())
def test_cifar_batches(batch_and_valid: tuple[object, bool], data: st.DataObject) -> None:
    batch, valid = batch_and_valid
    raw = pickle.dumps(batch)
    damaged = data.draw(st.one_of(st.just(raw), damage(raw)))
    got = read_or_value_error(read_cifar_batch, write(damaged, "data_batch_1"))
    if damaged == raw:
        assert (got is not None) == valid
    if got is not None:
        images, labels = got
        assert images.dtype == np.uint8 and images.shape[1:] == (3, 32, 32) and labels.shape == (images.shape[0],)
        assert labels.size == 0 or (labels.min() >= 0 and labels.max() <= 9)


def test_a_short_idx_header_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "short"
    path.write_bytes(bytes([0, 0, 8, 3, 0, 0]))  # says 3 dims, holds less than one size
    with pytest.raises(ValueError, match="header says 3 dims"):
        read_idx(path)
