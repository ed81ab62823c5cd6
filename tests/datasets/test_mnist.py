import numpy as np
import pytest
import torch

from vaebench.datasets import (
    ChecksumMismatch,
    DatasetNotFound,
    DynamicallyBinarized,
    TensorSplit,
    load,
    mnist,
)

N_TRAIN, N_TEST = 30, 12


@pytest.fixture
def mnist_files(fake, tmp_path, monkeypatch):
    """Small IDX files on a file:// 'server', registered as MNIST's published files."""
    server = tmp_path / "server"
    train = fake.gray_images(N_TRAIN, seed=1)
    test = fake.gray_images(N_TEST, seed=2)
    files = {
        "train": fake.spec(fake.idx(server / "train-images-idx3-ubyte.gz", train)),
        "test": fake.spec(fake.idx(server / "t10k-images-idx3-ubyte.gz", test)),
    }
    monkeypatch.setattr(mnist, "FILES", files)
    monkeypatch.setattr(mnist, "COUNTS", (N_TRAIN, N_TEST))
    return train, test


def test_downloads_then_loads_the_iwae_protocol(mnist_files, tmp_path):
    train, _test = mnist_files
    data_dir = tmp_path / "data"
    s = load("mnist", data_dir=data_dir, num_valid=4, dtype=torch.float64)
    assert sorted(p.name for p in (data_dir / "mnist").iterdir()) == [
        "t10k-images-idx3-ubyte.gz",
        "train-images-idx3-ubyte.gz",
    ]
    assert s.sizes() == {"train": N_TRAIN - 4, "valid": 4, "test": N_TEST}
    assert s.event_shape == (1, 28, 28) and s.likelihood == "bernoulli"
    assert isinstance(s.train, DynamicallyBinarized) and isinstance(s.test, TensorSplit)
    # Train keeps the first images in file order, validation is the last 4 (no shuffle).
    np.testing.assert_allclose(s.train.gray[:, 0].numpy(), train[:-4] / 255.0)
    gray_valid = torch.from_numpy(train[-4:] / 255.0)
    assert ((s.valid.data[:, 0] == 1) <= (gray_valid > 0)).all()  # bit 1 only where gray > 0
    assert ((s.valid.data[:, 0] == 0) <= (gray_valid < 1)).all()
    assert set(s.test.data.unique().tolist()) == {0.0, 1.0}
    assert s.train[0].dtype == torch.float64


def test_test_binarization_fixed_by_seed_123_across_loads(mnist_files, tmp_path):
    a = load("mnist", data_dir=tmp_path / "d", num_valid=4, seed=0)
    b = load("mnist", data_dir=tmp_path / "d", num_valid=4, seed=99, download=False)
    c = load("mnist", data_dir=tmp_path / "d", num_valid=4, test_seed=5, download=False)
    assert torch.equal(a.tensor("test"), b.tensor("test"))
    assert torch.equal(a.tensor("valid"), b.tensor("valid"))
    assert not torch.equal(a.tensor("test"), c.tensor("test"))
    # The training stream depends on load(seed=) and changes between epochs.
    assert not torch.equal(a.tensor("train"), b.tensor("train"))
    assert not torch.equal(a.tensor("train"), a.tensor("train"))


def test_loader_batches_and_train_mean(mnist_files, tmp_path):
    s = load("mnist", data_dir=tmp_path / "d", num_valid=4)
    batch = next(iter(s.loader("train", batch_size=5)))
    assert batch.shape == (5, 1, 28, 28) and batch.dtype == torch.float32
    assert len(list(s.loader("test", batch_size=5))) == 3
    torch.testing.assert_close(s.train_mean(), s.train.gray.mean(0))


def test_missing_files_without_download(mnist_files, tmp_path):
    with pytest.raises(DatasetNotFound, match="train-images-idx3-ubyte.gz"):
        load("mnist", data_dir=tmp_path / "empty", download=False)


def test_corrupted_file_is_rejected(mnist_files, tmp_path):
    load("mnist", data_dir=tmp_path / "d", num_valid=4)
    path = tmp_path / "d" / "mnist" / "t10k-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:-3] + b"abc")
    with pytest.raises(ChecksumMismatch, match="t10k-images-idx3-ubyte.gz"):
        load("mnist", data_dir=tmp_path / "d", num_valid=4)


def test_wrong_image_count_is_rejected(mnist_files, tmp_path, monkeypatch):
    monkeypatch.setattr(mnist, "COUNTS", (N_TRAIN + 1, N_TEST))
    with pytest.raises(ValueError, match="expected 31 images, found 30"):
        load("mnist", data_dir=tmp_path / "d", num_valid=4)


@pytest.mark.parametrize("num_valid", [0, N_TRAIN])
def test_num_valid_out_of_range(mnist_files, tmp_path, num_valid):
    with pytest.raises(ValueError, match="num_valid must be in"):
        load("mnist", data_dir=tmp_path / "d", num_valid=num_valid)


def test_env_var_data_dir(mnist_files, tmp_path, monkeypatch):
    monkeypatch.setenv("VAEBENCH_DATA_DIR", str(tmp_path / "envdir"))
    load("mnist", num_valid=4)
    assert (tmp_path / "envdir" / "mnist" / "train-images-idx3-ubyte.gz").is_file()


def test_published_checksums_are_recorded():
    # The real files' checksums are in the module (tfds sha256 + size, torchvision md5).
    assert all(f.sha256 and f.md5 and f.size for f in mnist.FILES.values())
    assert mnist.FILES["train"].md5 == "f68b3c2dcbeaaa9fbdd348bbdeb94873"


def test_card_on_the_splits_reports_the_loaded_sizes(mnist_files, tmp_path):
    s = load("mnist", data_dir=tmp_path / "d", num_valid=4)
    assert dict(s.card.sizes) == {"train": N_TRAIN - 4, "valid": 4, "test": N_TEST}
    assert mnist.CARD.sizes["valid"] == 400  # the registry's card keeps the protocol's sizes
