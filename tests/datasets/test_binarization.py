import pytest
import torch
from torch.utils.data import DataLoader

from vaebench.datasets import DynamicallyBinarized, binarize


def _gray(n=64, d=49):
    return torch.rand(n, 1, 7, 7, generator=torch.Generator().manual_seed(3))


def test_binarize_is_fixed_by_seed_and_binary():
    gray = _gray()
    a, b, c = binarize(gray, 123), binarize(gray, 123), binarize(gray, 124)
    assert a.dtype == gray.dtype and a.shape == gray.shape
    assert set(a.unique().tolist()) <= {0.0, 1.0}
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_binarize_extremes_are_deterministic():
    gray = torch.tensor([[0.0, 1.0, 0.0, 1.0]])
    assert torch.equal(binarize(gray, 0), gray)


def test_binarize_mean_matches_gray():
    # P(x = 1) = gray: the empirical mean over 20,000 copies is within 5 standard errors.
    gray = torch.linspace(0, 1, 11).expand(20_000, 11)
    freq = binarize(gray, 7).mean(0)
    se = (gray[0] * (1 - gray[0]) / 20_000).sqrt()
    assert ((freq - gray[0]).abs() <= 5 * se + 1e-12).all()


@pytest.mark.parametrize(
    "bad, err",
    [
        (torch.tensor([[1.5]]), ValueError),
        (torch.tensor([[-0.1]]), ValueError),
        (torch.tensor([[float("nan")]]), ValueError),
        (torch.tensor([[1]]), TypeError),
    ],
)
def test_binarize_rejects_non_gray(bad, err):
    with pytest.raises(err, match="gray"):
        binarize(bad, 0)


def test_dynamic_resamples_at_every_access_and_epoch():
    ds = DynamicallyBinarized(_gray(), seed=0)
    first, second = ds[5], ds[5]
    assert set(first.unique().tolist()) <= {0.0, 1.0}
    assert not torch.equal(first, second)
    epoch1 = torch.cat(list(DataLoader(ds, batch_size=16)))
    epoch2 = torch.cat(list(DataLoader(ds, batch_size=16)))
    assert epoch1.shape == (64, 1, 7, 7)
    assert not torch.equal(epoch1, epoch2)


def test_dynamic_is_reproducible_from_its_seed():
    run = [torch.cat(list(DataLoader(DynamicallyBinarized(_gray(), seed=s), batch_size=8))) for s in (1, 1, 2)]
    assert torch.equal(run[0], run[1])
    assert not torch.equal(run[0], run[2])


def test_dynamic_mean_matches_gray():
    gray = torch.full((1, 10), 0.3)
    ds = DynamicallyBinarized(gray.expand(1, 10), seed=0)
    draws = torch.stack([ds[0] for _ in range(4000)])
    assert abs(draws.mean().item() - 0.3) < 5 * (0.3 * 0.7 / 40_000) ** 0.5
    assert torch.equal(ds.mean(), gray[0])


def test_dynamic_workers_do_not_repeat_each_other():
    # Two workers each get a copy of the dataset; without re-seeding they would draw the
    # same noise. Constant gray 0.5 makes identical draws across workers detectable.
    ds = DynamicallyBinarized(torch.full((8, 400), 0.5), seed=0)
    batches = list(DataLoader(ds, batch_size=4, num_workers=2))
    assert len(batches) == 2
    assert not torch.equal(batches[0], batches[1])


def test_dynamic_pickles_without_its_stream():
    # Spawned DataLoader workers receive a pickled copy; it must not carry the generator.
    import pickle

    ds = DynamicallyBinarized(_gray(), seed=4)
    first = ds[0]
    copy = pickle.loads(pickle.dumps(ds))
    assert copy._generator is None and copy.seed == 4
    assert torch.equal(copy[0], first)  # a fresh copy restarts the seeded stream
    assert torch.equal(copy.gray, ds.gray)


def test_dynamic_binarization_state_round_trip_continues_the_stream():
    ds = DynamicallyBinarized(torch.full((6, 50), 0.5), seed=3)
    ds.sample(slice(None))
    state = ds.state_dict()
    expected = ds.sample(slice(None))
    fresh = DynamicallyBinarized(torch.full((6, 50), 0.5), seed=3)
    fresh.load_state_dict(state)
    torch.testing.assert_close(fresh.sample(slice(None)), expected)
    # A new dataset that did not load the state starts the stream over: different draws.
    assert not torch.equal(DynamicallyBinarized(torch.full((6, 50), 0.5), seed=3).sample(slice(None)), expected)


def test_dynamic_binarization_state_from_another_seed_is_refused():
    state = DynamicallyBinarized(torch.full((2, 4), 0.5), seed=1).state_dict()
    with pytest.raises(ValueError, match="seed 1"):
        DynamicallyBinarized(torch.full((2, 4), 0.5), seed=2).load_state_dict(state)
