import pytest
import torch
from torch.utils.data import Dataset, Subset, TensorDataset

from vaebench.evaluation import iter_batches, num_examples, take_examples
from vaebench.evaluation.batching import check_batch


class _Batched(Dataset):
    """A dataset with torch's batched-fetch protocol; counts how it is read."""

    def __init__(self, x):
        self.x, self.batched, self.single = x, 0, 0

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        self.single += 1
        return self.x[i]

    def __getitems__(self, idx):
        self.batched += 1
        return list(self.x[torch.as_tensor(idx)].unbind(0))


def test_tensor_dataset_and_iterable_give_the_same_batches():
    x = torch.arange(21.0).reshape(7, 3)
    expected = [x[:3], x[3:6], x[6:]]
    for data in (x, TensorDataset(x, torch.zeros(7)), _Batched(x), Subset(_Batched(x), range(7))):
        got = list(iter_batches(data, 3))
        assert len(got) == 3 and all(torch.equal(a, b) for a, b in zip(got, expected)), type(data)
        assert num_examples(data) == 7
    assert [b.shape[0] for b in iter_batches([x[:2], (x[2:],)], 100)] == [2, 5]
    assert num_examples(iter([x])) is None


def test_indices_order_and_batched_fetch():
    x = torch.arange(10.0).reshape(5, 2)
    ds = _Batched(x)
    order = torch.tensor([4, 0, 3, 1, 2])
    got = torch.cat(list(iter_batches(ds, 2, indices=order, dtype=torch.float64)))
    assert torch.equal(got, x[order].double()) and ds.batched == 3 and ds.single == 0
    assert torch.equal(torch.cat(list(iter_batches(x, 2, indices=order))), x[order])
    with pytest.raises(ValueError, match="indices"):
        list(iter_batches([x], 2, indices=order))


def test_take_examples_and_errors():
    x = torch.randn(9, 2)
    assert torch.equal(take_examples(_Batched(x), 4), x[:4])
    assert take_examples(x, 100).shape[0] == 9
    with pytest.raises(ValueError, match="empty"):
        take_examples([], 3)
    with pytest.raises(ValueError, match="batch_size"):
        list(iter_batches(x, 0))
    with pytest.raises(ValueError, match=r"\(N, \*event\)"):
        list(iter_batches(torch.zeros(3), 2))
    with pytest.raises(TypeError, match="Dataset"):
        list(iter_batches(3, 2))
    with pytest.raises(ValueError, match="floating"):
        check_batch(torch.zeros(2, 2, dtype=torch.long))
    with pytest.raises(ValueError, match=r"batch dim"):
        check_batch(torch.zeros(3))
