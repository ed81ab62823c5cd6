import time

import pytest
import torch

from vaebench.benchmarking import evaluation_throughput, time_rounds, train_step_throughput

from ..evaluation.eval_toy_models import IWAESurrogate, RainforthToy


def test_train_step_and_evaluation_throughput():
    model = RainforthToy(dim=4)
    x = model.sample_data(8)
    opt = torch.optim.SGD(model.parameters(), lr=1e-3)
    before = model.mu.detach().clone()
    t = train_step_throughput(model, IWAESurrogate(5), x, optimizer=opt, warmup=1, repeats=3)
    assert not torch.equal(before, model.mu.detach())  # the optimizer step ran
    assert t.what == "train_step" and t.batch_size == 8 and t.num_samples == 5
    assert 0 < t.seconds_min <= t.seconds_median
    assert t.to_dict()["examples_per_second"] == pytest.approx(8 / t.seconds_median)
    e = evaluation_throughput(model, x, num_samples=50, chunk_size=20, warmup=0, repeats=1)
    assert e.what == "evaluation" and e.num_samples == 50 and e.examples_per_second > 0
    with pytest.raises(ValueError, match="repeats"):
        train_step_throughput(model, IWAESurrogate(5), x, repeats=0)


def test_time_rounds_alternates_entries_after_warmup():
    order = []
    samples = time_rounds(
        {"a": lambda: order.append("a"), "b": lambda: order.append("b")}, "cpu", repeats=2, rounds=2, warmup=1
    )
    assert order == ["a", "b", "a", "a", "b", "b", "a", "a", "b", "b"]  # warm-up, then two rounds
    assert {k: len(v) for k, v in samples.items()} == {"a": 4, "b": 4}
    with pytest.raises(ValueError, match="rounds"):
        time_rounds({"a": lambda: None}, "cpu", repeats=1, rounds=0)


def test_time_rounds_cpu_clock_leaves_out_the_time_spent_waiting():
    """clock="cpu" counts the thread's CPU time: a call that only sleeps costs ~0 on it, and at
    least its sleep on the wall clock (the reason to use it on a loaded machine)."""
    calls = {"sleep": lambda: time.sleep(0.02)}
    wall = time_rounds(calls, "cpu", repeats=2, clock="wall")["sleep"]
    cpu = time_rounds(calls, "cpu", repeats=2, clock="cpu")["sleep"]
    assert min(wall) >= 0.02
    assert max(cpu) < 0.01
    with pytest.raises(ValueError, match="clock must be 'wall' or 'cpu'"):
        time_rounds(calls, "cpu", repeats=1, clock="gpu")  # type: ignore[arg-type]
