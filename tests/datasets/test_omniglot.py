import numpy as np
import pytest
import torch

from vaebench.datasets import DatasetNotFound, load, omniglot

N_TRAIN, N_TEST = 25, 7


@pytest.fixture
def chardata(fake, tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    # MATLAB layout: one image per column, each stored column-major.
    data = rng.uniform(size=(784, N_TRAIN))
    testdata = rng.uniform(size=(784, N_TEST))
    path = fake.mat(tmp_path / "server" / "chardata.mat", data=data, testdata=testdata)
    monkeypatch.setattr(omniglot, "FILE", fake.spec(path, checksum=None))
    monkeypatch.setattr(omniglot, "NUM_TRAIN", N_TRAIN)
    return data, testdata


def _iwae_reference(data, n_valid):
    """The IWAE code's preparation, written out with numpy's own order='F' reshape."""
    x = data.T.reshape((-1, 28, 28)).reshape((-1, 784), order="F")
    x = x[np.random.RandomState(seed=123).permutation(x.shape[0])]
    return x[:-n_valid], x[-n_valid:]


def test_omniglot_matches_the_iwae_preparation(chardata, tmp_path):
    data, testdata = chardata
    s = load("omniglot", data_dir=tmp_path / "d", num_valid=6, dtype=torch.float64)
    assert s.sizes() == {"train": N_TRAIN - 6, "valid": 6, "test": N_TEST}
    train_ref, valid_ref = _iwae_reference(data, 6)
    np.testing.assert_allclose(s.train.gray.reshape(-1, 784).numpy(), train_ref)
    # valid/test are binarized: a bit is 1 only with positive probability under its gray.
    test_ref = testdata.T.reshape((-1, 28, 28)).reshape((-1, 784), order="F")
    assert set(s.tensor("test").unique().tolist()) == {0.0, 1.0}
    assert torch.equal(
        s.tensor("valid").reshape(-1, 784),
        (
            torch.rand(6, 784, generator=torch.Generator().manual_seed(123), dtype=torch.float64)
            < torch.from_numpy(valid_ref)
        ).double(),
    )
    assert torch.equal(
        s.tensor("test").reshape(-1, 784),
        (
            torch.rand(N_TEST, 784, generator=torch.Generator().manual_seed(123), dtype=torch.float64)
            < torch.from_numpy(test_ref)
        ).double(),
    )


def test_omniglot_wrong_shape_and_missing_variable(fake, tmp_path, monkeypatch):
    path = fake.mat(tmp_path / "server" / "chardata.mat", data=np.zeros((784, 24)), testdata=np.zeros((784, 3)))
    monkeypatch.setattr(omniglot, "FILE", fake.spec(path, checksum=None))
    with pytest.raises(ValueError, match="expected 24,345 training images, found 24"):
        load("omniglot", data_dir=tmp_path / "d")
    path = fake.mat(tmp_path / "server2" / "chardata.mat", data=np.zeros((784, 24)))
    monkeypatch.setattr(omniglot, "FILE", fake.spec(path, checksum=None))
    with pytest.raises(ValueError, match="lacks variables"):
        load("omniglot", data_dir=tmp_path / "d2")


def test_omniglot_missing_points_to_the_iwae_repo(tmp_path):
    with pytest.raises(DatasetNotFound, match="yburda/iwae.*chardata.mat"):
        load("omniglot", data_dir=tmp_path / "none", download=False)


def test_omniglot_card_says_checksum_unverified():
    assert omniglot.FILE.sha256 is None and omniglot.FILE.md5 is None
    assert any("unverified" in n for n in omniglot.CARD.notes)
    assert "unverified" in omniglot.CARD.render()
