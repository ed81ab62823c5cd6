import numpy as np
import pytest
import torch

from vaebench.datasets import frey_faces, load


@pytest.fixture
def frey_file(fake, tmp_path, monkeypatch):
    ff = np.random.default_rng(0).integers(0, 256, size=(560, 13), dtype=np.uint8)
    ff[0, 0], ff[1, 0] = 0, 255
    path = fake.mat(tmp_path / "server" / "frey_rawface.mat", ff=ff)
    monkeypatch.setattr(frey_faces, "FILE", fake.spec(path, checksum=None))
    monkeypatch.setattr(frey_faces, "NUM_IMAGES", 13)
    monkeypatch.setattr(frey_faces, "SIZES", (7, 3, 3))
    return ff


def test_frey_faces_random_split_and_8bit_values(frey_file, tmp_path):
    s = load("frey_faces", data_dir=tmp_path / "d", dtype=torch.float64)
    assert s.sizes() == {"train": 7, "valid": 3, "test": 3}
    assert s.event_shape == (1, 28, 20) and s.likelihood == "categorical256"
    images = frey_file.T.reshape(-1, 28, 20)  # each column is one row-major 28x20 image
    order = np.random.RandomState(123).permutation(13)
    # 8-bit pixels k arrive as x = k / 255 (vaebench.models.likelihoods' convention).
    np.testing.assert_array_equal(s.tensor("train")[:, 0].numpy(), images[order[:7]] / 255.0)
    np.testing.assert_array_equal(s.tensor("valid")[:, 0].numpy(), images[order[7:10]] / 255.0)
    np.testing.assert_array_equal(s.tensor("test")[:, 0].numpy(), images[order[10:]] / 255.0)
    x = torch.cat([s.tensor(k) for k in ("train", "valid", "test")])
    assert x.min() == 0 and x.max() == 1


def test_frey_faces_split_seed_changes_the_split(frey_file, tmp_path):
    a = load("frey_faces", data_dir=tmp_path / "d")
    b = load("frey_faces", data_dir=tmp_path / "d", split_seed=321, download=False)
    assert not torch.equal(a.tensor("test"), b.tensor("test"))


def test_frey_faces_rejects_wrong_shape_or_dtype(fake, tmp_path, monkeypatch):
    monkeypatch.setattr(frey_faces, "NUM_IMAGES", 13)
    path = fake.mat(tmp_path / "s1" / "frey_rawface.mat", ff=np.zeros((560, 12), np.uint8))
    monkeypatch.setattr(frey_faces, "FILE", fake.spec(path, checksum=None))
    with pytest.raises(ValueError, match=r"'ff' must be \(560, 13\), got \(560, 12\)"):
        load("frey_faces", data_dir=tmp_path / "d1")
    path = fake.mat(tmp_path / "s2" / "frey_rawface.mat", ff=np.full((560, 13), 0.5))
    monkeypatch.setattr(frey_faces, "FILE", fake.spec(path, checksum=None))
    with pytest.raises(ValueError, match="integer pixel values 0..255, got float64"):
        load("frey_faces", data_dir=tmp_path / "d2")
    path = fake.mat(tmp_path / "s3" / "frey_rawface.mat", ff=np.full((560, 13), 256.0))
    monkeypatch.setattr(frey_faces, "FILE", fake.spec(path, checksum=None))
    with pytest.raises(ValueError, match=r"in \[256.0, 256.0\]"):
        load("frey_faces", data_dir=tmp_path / "d3")


def test_frey_faces_accepts_pixels_stored_as_double(fake, tmp_path, monkeypatch):
    ff = np.random.default_rng(1).integers(0, 256, size=(560, 13)).astype(np.float64)
    path = fake.mat(tmp_path / "s" / "frey_rawface.mat", ff=ff)
    monkeypatch.setattr(frey_faces, "FILE", fake.spec(path, checksum=None))
    monkeypatch.setattr(frey_faces, "NUM_IMAGES", 13)
    monkeypatch.setattr(frey_faces, "SIZES", (7, 3, 3))
    s = load("frey_faces", data_dir=tmp_path / "d", dtype=torch.float64)
    x = torch.cat([s.tensor(k) for k in ("train", "valid", "test")])
    assert torch.equal((x * 255).round().sum(), torch.tensor(ff.sum()))
