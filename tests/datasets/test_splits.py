import pytest
import torch

from vaebench.datasets import DatasetSplits, DynamicallyBinarized, TensorSplit, card
from vaebench.datasets.splits import dynamic_binary_splits


def _splits():
    g = torch.Generator().manual_seed(0)
    gray = torch.rand(10, 1, 8, 8, generator=g)
    return dynamic_binary_splits(card("digits8"), gray[:6], gray[6:8], gray[8:], seed=0, eval_seed=123)


def test_aliases_and_iteration():
    s = _splits()
    assert s["validation"] is s.valid and s["val"] is s.valid and s["train"] is s.train
    assert [name for name, _ in s] == ["train", "valid", "test"]
    assert s.sizes() == {"train": 6, "valid": 2, "test": 2}
    with pytest.raises(KeyError, match="unknown split 'dev'"):
        s["dev"]


def test_loader_shuffles_train_only_by_default():
    s = _splits()
    assert isinstance(s.loader("train", 2).sampler, torch.utils.data.RandomSampler)
    assert isinstance(s.loader("test", 2).sampler, torch.utils.data.SequentialSampler)
    with pytest.raises(ValueError, match="batch_size must be >= 1, got 0"):
        s.loader("train", 0)


def test_tensor_split_items_and_batched_fetch():
    data = torch.arange(12.0).reshape(4, 3)
    ts = TensorSplit(data)
    assert len(ts) == 4 and torch.equal(ts[2], data[2])
    assert torch.equal(torch.stack(ts.__getitems__([3, 0])), data[[3, 0]])
    batches = list(torch.utils.data.DataLoader(ts, batch_size=3))
    assert torch.equal(torch.cat(batches), data)


def test_train_mean_and_tensor_of_a_custom_split():
    s = _splits()
    torch.testing.assert_close(s.train_mean(), s.train.gray.mean(0))
    odd = DatasetSplits(s.card, torch.utils.data.TensorDataset(torch.zeros(2, 1)), s.valid, s.test)
    with pytest.raises(TypeError, match="not tensor-backed"):
        odd.tensor("train")
    assert isinstance(s.train, DynamicallyBinarized)
