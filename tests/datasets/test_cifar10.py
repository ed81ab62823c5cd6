import numpy as np
import pytest
import torch

from vaebench.datasets import ChecksumMismatch, DatasetNotFound, FileSpec, cifar10, load

PER_BATCH = 4


@pytest.fixture
def cifar_archive(fake, tmp_path, monkeypatch):
    """A cifar-10-python.tar.gz with six small pickle batches, served from file://."""
    rng = np.random.default_rng(0)
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    images = {n: rng.integers(0, 256, size=(PER_BATCH, 3, 32, 32), dtype=np.uint8) for n in names}
    blobs = {n: fake.cifar_batch(images[n], np.arange(PER_BATCH)) for n in names}
    archive = fake.tar_gz(
        tmp_path / "server" / "cifar-10-python.tar.gz",
        {f"cifar-10-batches-py/{n}": b for n, b in blobs.items()},
    )
    import hashlib

    monkeypatch.setattr(cifar10, "ARCHIVE", fake.spec(archive, checksum="md5"))
    monkeypatch.setattr(cifar10, "BATCHES", {n: hashlib.md5(b).hexdigest() for n, b in blobs.items()})
    monkeypatch.setattr(cifar10, "COUNTS", (5 * PER_BATCH, PER_BATCH))
    return images


def test_cifar10_downloads_extracts_and_keeps_8bit(cifar_archive, tmp_path):
    s = load("cifar10", data_dir=tmp_path / "d", dtype=torch.float64)
    assert s.sizes() == {"train": 20, "valid": 0, "test": 4}
    assert s.event_shape == (3, 32, 32) and s.likelihood == "discretized_logistic"
    train = np.concatenate([cifar_archive[f"data_batch_{i}"] for i in range(1, 6)])
    # 8-bit pixels k arrive as x = k / 255 (vaebench.models.likelihoods' convention).
    np.testing.assert_array_equal(s.tensor("train").numpy(), train / 255.0)
    np.testing.assert_array_equal(s.tensor("test").numpy(), cifar_archive["test_batch"] / 255.0)
    assert (tmp_path / "d" / "cifar10" / "cifar-10-batches-py" / "test_batch").is_file()


def test_cifar10_num_valid_holds_out_the_last_training_images(cifar_archive, tmp_path):
    s = load("cifar10", data_dir=tmp_path / "d", num_valid=3)
    assert s.sizes() == {"train": 17, "valid": 3, "test": 4}
    # In float32 too, k = round(255 x) recovers every pixel exactly.
    assert s.tensor("valid").dtype == torch.float32
    valid_k = (s.tensor("valid") * 255).round().to(torch.uint8).numpy()
    np.testing.assert_array_equal(valid_k, cifar_archive["data_batch_5"][-3:])


def test_cifar10_reads_batches_without_the_archive(cifar_archive, tmp_path, monkeypatch):
    load("cifar10", data_dir=tmp_path / "d")
    (tmp_path / "d" / "cifar10" / "cifar-10-python.tar.gz").unlink()
    monkeypatch.setattr(cifar10, "ARCHIVE", FileSpec("cifar-10-python.tar.gz", ("file:///nonexistent",)))
    assert load("cifar10", data_dir=tmp_path / "d", download=False).sizes()["train"] == 20


def test_cifar10_rejects_a_tampered_batch_before_unpickling(cifar_archive, tmp_path):
    load("cifar10", data_dir=tmp_path / "d")
    batch = tmp_path / "d" / "cifar10" / "cifar-10-batches-py" / "data_batch_3"
    data = bytearray(batch.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one pixel changed: still a valid pickle
    batch.write_bytes(bytes(data))
    with pytest.raises(ChecksumMismatch, match="data_batch_3 has md5"):
        load("cifar10", data_dir=tmp_path / "d")


def test_cifar10_missing_names_the_archive(tmp_path):
    with pytest.raises(DatasetNotFound, match="cifar-10-python.tar.gz.*kriz"):
        load("cifar10", data_dir=tmp_path / "none", download=False)


def test_cifar10_published_md5s_recorded():
    assert cifar10.ARCHIVE.md5 == "c58f30108f718f92721af3b95e74349a"
    assert len(cifar10.BATCHES) == 6 and all(len(v) == 32 for v in cifar10.BATCHES.values())
