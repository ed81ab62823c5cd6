"""Writers for small files in each published format, written here independently of the
readers under test (struct/gzip/scipy/pickle/tarfile), plus float64-on-CPU defaults."""

from __future__ import annotations

import gzip
import hashlib
import io
import pickle
import struct
import tarfile
from pathlib import Path

import numpy as np
import pytest
import scipy.io

from vaebench.datasets import FileSpec


@pytest.fixture(autouse=True)
def _float64(float64_and_seed: None) -> None:
    """Every test here runs in float64 from a fixed seed (the root conftest's fixture)."""


@pytest.fixture(autouse=True)
def no_data_dir_env(monkeypatch):
    # A developer's VAEBENCH_DATA_DIR must not leak into tests.
    monkeypatch.delenv("VAEBENCH_DATA_DIR", raising=False)


_IDX_CODES = {
    np.dtype(np.uint8): 0x08,
    np.dtype(np.int8): 0x09,
    np.dtype(">i2"): 0x0B,
    np.dtype(">i4"): 0x0C,
    np.dtype(">f4"): 0x0D,
    np.dtype(">f8"): 0x0E,
}


class Fake:
    """Writers of small published-format files and FileSpecs pointing at them."""

    @staticmethod
    def sha256(path: Path) -> str:
        return hashlib.sha256(path.read_bytes()).hexdigest()

    @staticmethod
    def md5(path: Path) -> str:
        return hashlib.md5(path.read_bytes()).hexdigest()

    @staticmethod
    def spec(path: Path, *, checksum: str = "sha256", urls: tuple[str, ...] | None = None) -> FileSpec:
        """A FileSpec with the file's true checksum, served from its own file:// URL."""
        urls = urls if urls is not None else (path.resolve().as_uri(),)
        if checksum == "sha256":
            return FileSpec(path.name, urls, sha256=Fake.sha256(path), size=path.stat().st_size)
        if checksum == "md5":
            return FileSpec(path.name, urls, md5=Fake.md5(path))
        return FileSpec(path.name, urls)

    @staticmethod
    def idx(path: Path, array: np.ndarray, *, gz: bool = True) -> Path:
        array = np.asarray(array)
        big = array.dtype.newbyteorder(">") if array.dtype.itemsize > 1 else array.dtype
        code = _IDX_CODES[np.dtype(big)]
        payload = bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
        payload += array.astype(big).tobytes()
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(gzip.compress(payload) if gz else payload)
        return path

    @staticmethod
    def amat(path: Path, bits: np.ndarray) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(" ".join(str(int(v)) for v in row) + "\n" for row in bits))
        return path

    @staticmethod
    def mat(path: Path, **arrays: np.ndarray) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        scipy.io.savemat(path, arrays)
        return path

    @staticmethod
    def cifar_batch(images: np.ndarray, labels: np.ndarray) -> bytes:
        """A CIFAR python batch: a pickled dict with bytes keys, data (N, 3072) uint8."""
        batch = {
            b"batch_label": b"fake",
            b"labels": [int(v) for v in labels],
            b"data": images.reshape(len(images), -1).astype(np.uint8),
            b"filenames": [],
        }
        return pickle.dumps(batch, protocol=2)

    @staticmethod
    def tar_gz(path: Path, members: dict[str, bytes]) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tarfile.open(path, "w:gz") as tar:
            for name, data in members.items():
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
        return path

    @staticmethod
    def gray_images(n: int, h: int = 28, w: int = 28, seed: int = 0) -> np.ndarray:
        """uint8 images with every level 0..255 represented, (n, h, w)."""
        rng = np.random.default_rng(seed)
        return rng.integers(0, 256, size=(n, h, w), dtype=np.uint8)


@pytest.fixture
def fake() -> type[Fake]:
    return Fake
