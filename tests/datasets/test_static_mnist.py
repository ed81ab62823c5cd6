import numpy as np
import pytest
import torch

from vaebench.datasets import ChecksumMismatch, TensorSplit, load, static_mnist

COUNTS = {"train": 12, "valid": 5, "test": 4}


@pytest.fixture
def amat_files(fake, tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    bits = {k: rng.integers(0, 2, size=(n, 784)).astype(np.uint8) for k, n in COUNTS.items()}
    files = {k: fake.spec(fake.amat(tmp_path / "server" / f"binarized_mnist_{k}.amat", b)) for k, b in bits.items()}
    monkeypatch.setattr(static_mnist, "FILES", files)
    monkeypatch.setattr(static_mnist, "COUNTS", COUNTS)
    return bits


def test_static_mnist_reads_the_fixed_bits(amat_files, tmp_path):
    s = load("static_mnist", data_dir=tmp_path / "d", dtype=torch.float64)
    assert s.sizes() == COUNTS
    for split in ("train", "valid", "test"):
        assert isinstance(s[split], TensorSplit)
        np.testing.assert_array_equal(s.tensor(split).reshape(-1, 784).numpy(), amat_files[split])
    # Static: the same bits on every access and every load, whatever the seed.
    again = load("static_mnist", data_dir=tmp_path / "d", seed=7, download=False, dtype=torch.float64)
    assert torch.equal(s.train[3], s.train[3])
    assert torch.equal(s.tensor("train"), again.tensor("train"))
    assert s.event_shape == (1, 28, 28) and s["validation"] is s.valid


def test_static_mnist_row_count_checked(amat_files, tmp_path, monkeypatch):
    monkeypatch.setattr(static_mnist, "COUNTS", {**COUNTS, "valid": 6})
    with pytest.raises(ValueError, match="expected 6 rows, found 5"):
        load("static_mnist", data_dir=tmp_path / "d")


def test_static_mnist_corrupted_file(amat_files, tmp_path):
    load("static_mnist", data_dir=tmp_path / "d")
    path = tmp_path / "d" / "static_mnist" / "binarized_mnist_test.amat"
    text = path.read_text()
    path.write_text(("1" if text[0] == "0" else "0") + text[1:])
    with pytest.raises(ChecksumMismatch, match="binarized_mnist_test.amat has sha256"):
        load("static_mnist", data_dir=tmp_path / "d")


def test_static_mnist_published_checksums_recorded():
    assert static_mnist.FILES["train"].size == 78_400_000
    assert all(len(f.sha256) == 64 for f in static_mnist.FILES.values())
