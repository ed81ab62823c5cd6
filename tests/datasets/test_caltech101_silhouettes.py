import numpy as np
import pytest
import torch

from vaebench.datasets import caltech101_silhouettes, load

COUNTS = {"train": 6, "valid": 4, "test": 3}
KEYS = {"train": "train_data", "valid": "val_data", "test": "test_data"}


@pytest.fixture
def caltech_file(fake, tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    arrays = {KEYS[k]: rng.integers(0, 2, size=(n, 784)).astype(np.uint8) for k, n in COUNTS.items()}
    path = fake.mat(tmp_path / "server" / "caltech101_silhouettes_28_split1.mat", **arrays)
    monkeypatch.setattr(caltech101_silhouettes, "FILE", fake.spec(path, checksum=None))
    monkeypatch.setattr(caltech101_silhouettes, "COUNTS", COUNTS)
    return arrays


def test_caltech_fortran_order_inverted_as_sylvester_flows(caltech_file, tmp_path):
    s = load("caltech101_silhouettes", data_dir=tmp_path / "d", dtype=torch.float64)
    assert s.sizes() == COUNTS
    for split, key in KEYS.items():
        ref = 1.0 - caltech_file[key].reshape((-1, 28, 28)).reshape((-1, 784), order="F")
        np.testing.assert_array_equal(s.tensor(split).reshape(-1, 784).numpy(), ref)
    assert torch.equal(s.train[0], s.train[0])  # already binary: no resampling


def test_caltech_rejects_non_binary(fake, tmp_path, monkeypatch):
    arrays = {KEYS[k]: np.full((n, 784), 2, np.uint8) for k, n in COUNTS.items()}
    path = fake.mat(tmp_path / "server" / "caltech101_silhouettes_28_split1.mat", **arrays)
    monkeypatch.setattr(caltech101_silhouettes, "FILE", fake.spec(path, checksum=None))
    monkeypatch.setattr(caltech101_silhouettes, "COUNTS", COUNTS)
    with pytest.raises(ValueError, match="0/1 pixels"):
        load("caltech101_silhouettes", data_dir=tmp_path / "d")


def test_caltech_rejects_wrong_split_size(caltech_file, tmp_path, monkeypatch):
    monkeypatch.setattr(caltech101_silhouettes, "COUNTS", {**COUNTS, "test": 2307})
    with pytest.raises(ValueError, match=r"'test_data' must be \(2307, 784\), got \(3, 784\)"):
        load("caltech101_silhouettes", data_dir=tmp_path / "d")
