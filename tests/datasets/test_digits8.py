import numpy as np
import torch

from vaebench.datasets import DynamicallyBinarized, load


def test_digits8_embedded_split_and_binarization():
    s = load("digits8", data_dir="/nonexistent", download=False, dtype=torch.float64)
    assert s.sizes() == {"train": 1397, "valid": 200, "test": 200}
    assert s.event_shape == (1, 8, 8) and s.card.source == "embedded"
    assert isinstance(s.train, DynamicallyBinarized)
    gray = s.train.gray
    assert gray.min() == 0 and gray.max() == 1
    # Gray levels are value / 16 for the 17 levels 0..16 that sklearn's digits have.
    assert torch.equal(gray * 16, (gray * 16).round())
    assert set(s.tensor("test").unique().tolist()) == {0.0, 1.0}


def test_digits8_split_is_fixed_and_test_bits_do_not_depend_on_seed():
    a = load("digits8", seed=0)
    b = load("digits8", seed=1)
    assert torch.equal(a.train.gray, b.train.gray)
    assert torch.equal(a.tensor("test"), b.tensor("test"))
    assert not torch.equal(a.tensor("train"), b.tensor("train"))


def test_digits8_split_covers_every_image_once():
    from sklearn.datasets import load_digits

    s = load("digits8", dtype=torch.float64)
    all_gray = torch.cat([s.train.gray.reshape(-1, 64)])
    ref = torch.from_numpy(load_digits().data / 16.0)
    # The training gray images are distinct rows of sklearn's data, in permuted order.
    order = np.random.RandomState(123).permutation(len(ref))
    assert torch.equal(all_gray, ref[order[:1397]])
