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
        assert len(got) == 3 and all(torch.equal(a, b) for a, b in zip(got, expected, strict=True)), type(data)
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


# ---- pass_sizes: the rows of one evaluation pass, chosen for the caches ----------------------

from vaebench.evaluation import batching  # noqa: E402
from vaebench.evaluation.batching import MIN_PASS_ROWS, pass_sizes  # noqa: E402


@pytest.mark.parametrize(
    ("budget", "row_bytes", "k", "n", "given", "expected"),
    [
        (10_000 * 100, 100, 5000, 20, {}, (5000, 2)),  # 10,000 rows: all K of two examples per pass
        (4 << 20, 4000, 5000, 20, {}, (1667, 1)),  # 2048 rows (the floor): K in 3 equal chunks
        (40_000 * 8, 8, 5000, 20, {}, (5000, 8)),
        (40_000 * 8, 8, 5000, 3, {}, (5000, 3)),  # never more examples than there are
        (40_000 * 8, 8, 5000, None, {}, (5000, 8)),  # an iterable of unknown length
        (10_000 * 100, 100, 5000, 20, {"batch_size": 100}, (100, 100)),  # the caller's batch kept
        (10_000 * 100, 100, 5000, 20, {"chunk_size": 500}, (500, 20)),  # the caller's chunk kept
        (10_000 * 100, 100, 5000, 20, {"chunk_size": 500, "batch_size": 7}, (500, 7)),
        (10_000 * 100, 100, 10, 20, {}, (10, 20)),
    ],
)
def test_pass_sizes_fill_the_budget(monkeypatch, budget, row_bytes, k, n, given, expected):
    monkeypatch.setattr(batching, "_pass_budget_bytes", lambda device: budget)
    assert pass_sizes(k, n, row_bytes, "cpu", **given) == expected


def test_pass_budget_is_the_l2_of_the_running_threads(monkeypatch):
    monkeypatch.setattr(batching.os, "sysconf", lambda name: 2 << 20)
    torch.set_num_threads(1)
    assert batching._pass_budget_bytes(torch.device("cpu")) == 2 << 20
    chunk, batch = pass_sizes(5000, 20, 100, "cpu")
    assert chunk * batch >= MIN_PASS_ROWS and chunk * batch <= (2 << 20) // 100 + chunk


@pytest.mark.parametrize(
    ("args", "kwargs", "match"),
    [
        ((5000, 20, 100, "cpu"), {"chunk_size": 0}, "chunk_size must be an int >= 1 or None"),
        ((5000, 20, 100, "cpu"), {"batch_size": 2.5}, "batch_size must be an int >= 1 or None"),
        ((0, 20, 100, "cpu"), {}, r"num_samples \(K\) must be >= 1, got 0"),
        ((5000, 20, 0, "cpu"), {}, "row_bytes must be >= 1, got 0"),
    ],
)
def test_pass_sizes_errors_name_the_argument(args, kwargs, match):
    with pytest.raises(ValueError, match=match):
        pass_sizes(*args, **kwargs)
