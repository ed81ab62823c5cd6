import numpy as np
import pytest
import torch

from vaebench.datasets import fashion_mnist, load


@pytest.fixture
def fashion_files(fake, tmp_path, monkeypatch):
    server = tmp_path / "server"
    train, test = fake.gray_images(20, seed=3), fake.gray_images(6, seed=4)
    files = {
        "train": fake.spec(fake.idx(server / "train-images-idx3-ubyte.gz", train), checksum="md5"),
        "test": fake.spec(fake.idx(server / "t10k-images-idx3-ubyte.gz", test), checksum="md5"),
    }
    monkeypatch.setattr(fashion_mnist, "FILES", files)
    monkeypatch.setattr(fashion_mnist, "COUNTS", (20, 6))
    return train, test


def test_fashion_mnist_dynamic_protocol(fashion_files, tmp_path):
    train, _ = fashion_files
    s = load("fashion_mnist", data_dir=tmp_path / "d", num_valid=5, dtype=torch.float64)
    assert s.sizes() == {"train": 15, "valid": 5, "test": 6}
    np.testing.assert_allclose(s.train.gray[:, 0].numpy(), train[:15] / 255.0)
    assert not torch.equal(s.tensor("train"), s.tensor("train"))  # resampled per access
    again = load("fashion_mnist", data_dir=tmp_path / "d", num_valid=5, dtype=torch.float64, download=False)
    assert torch.equal(s.tensor("test"), again.tensor("test"))
    assert (tmp_path / "d" / "fashion_mnist" / "t10k-images-idx3-ubyte.gz").is_file()


def test_fashion_mnist_files_are_not_mnist_files():
    from vaebench.datasets import mnist

    assert fashion_mnist.FILES["train"].sha256 != mnist.FILES["train"].sha256
    assert fashion_mnist.FILES["train"].md5 == "8d4fb7e6c68d591d4c3dfef9ec88bf0d"
