"""Throughput of a training step and of the K = 5000 evaluation, for the kernels suite, and the
one timing loop (`time_rounds`) that every speed measurement of vaebench uses."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import Any, Literal

import torch
from torch import Tensor, nn

from ..evaluation.batching import check_batch
from ..evaluation.likelihood import PAPER_NLL_SAMPLES, estimate_log_likelihood
from ..evaluation.model_contract import model_dtype

__all__ = ["Throughput", "evaluation_throughput", "time_calls", "time_rounds", "train_step_throughput"]


@dataclass
class Throughput:
    """Median wall time of `repeats` timed runs (after `warmup` untimed ones) and examples/s."""

    what: str
    batch_size: int
    num_samples: int
    seconds_median: float
    seconds_min: float
    repeats: int
    device: str

    @property
    def examples_per_second(self) -> float:
        return self.batch_size / self.seconds_median

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "examples_per_second": self.examples_per_second}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_rounds(
    calls: Mapping[str, Callable[[], object]],
    device: torch.device | str,
    *,
    repeats: int,
    rounds: int = 1,
    warmup: int = 0,
    clock: Literal["wall", "cpu"] = "wall",
) -> dict[str, list[float]]:
    """Times (s) of every timed call of each entry, in call order: `warmup` untimed calls
    of each entry, then `rounds` rounds in which each entry in turn is called `repeats` times,
    so that entries alternate and all see the same machine noise. CUDA is synchronized around
    each timed call so that asynchronous kernels are counted.

    clock: "wall" (time.perf_counter) or "cpu", the calling thread's CPU time (time.thread_time):
    without the time the process waits for a core, so steadier on a shared machine (on 2 cores
    at load 8, wall times of one ELBO step varied 3-5x between rounds, CPU times about 20%), and
    meaningful only with one torch thread on a CPU (other threads' work is not counted)."""
    if repeats < 1 or rounds < 1 or warmup < 0:
        raise ValueError(f"repeats and rounds must be >= 1 and warmup >= 0, got {repeats}, {rounds} and {warmup}")
    if clock not in ("wall", "cpu"):
        raise ValueError(f"clock must be 'wall' or 'cpu', got {clock!r}")
    now = time.perf_counter if clock == "wall" else time.thread_time
    device = torch.device(device)
    for call in calls.values():
        for _ in range(warmup):
            call()
    samples: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(rounds):
        for name, call in calls.items():
            for _ in range(repeats):
                _sync(device)
                t0 = now()
                call()
                _sync(device)
                samples[name].append(now() - t0)
    return samples


def time_calls(fn: Callable[[], object], device: torch.device, warmup: int, repeats: int) -> list[float]:
    """Sorted wall times (s) of `repeats` calls of `fn` after `warmup` untimed calls (one entry
    of `time_rounds`)."""
    return sorted(time_rounds({"fn": fn}, device, repeats=repeats, warmup=warmup)["fn"])


def train_step_throughput(
    model: nn.Module,
    estimator: Callable[[nn.Module, Tensor], Any],
    x: Tensor,
    *,
    optimizer: torch.optim.Optimizer | None = None,
    warmup: int = 2,
    repeats: int = 10,
) -> Throughput:
    """Examples per second of one training step: estimator forward, backward, optimizer step.

    Without an optimizer only forward and backward are timed (parameters unchanged). Shapes:
    x: (B, *event).
    """
    dtype = model_dtype(model)
    x = check_batch(x if dtype is None else x.to(dtype), "x")

    def step() -> None:
        model.zero_grad(set_to_none=True)
        estimator(model, x).surrogate.backward()
        if optimizer is not None:
            optimizer.step()

    times = time_calls(step, x.device, warmup, repeats)
    model.zero_grad(set_to_none=True)
    return Throughput(
        what="train_step",
        batch_size=x.shape[0],
        num_samples=int(getattr(estimator, "num_samples", 1)),
        seconds_median=times[len(times) // 2],
        seconds_min=times[0],
        repeats=repeats,
        device=str(x.device),
    )


def evaluation_throughput(
    model: nn.Module,
    x: Tensor,
    *,
    num_samples: int = PAPER_NLL_SAMPLES,
    chunk_size: int = 500,
    warmup: int = 1,
    repeats: int = 3,
) -> Throughput:
    """Examples per second of the streamed importance-sampling log p(x) (one batch x: (B, *event))."""

    def run() -> None:
        estimate_log_likelihood(
            model, x, num_samples=num_samples, chunk_size=chunk_size, batch_size=x.shape[0], progress=False
        )

    times = time_calls(run, x.device, warmup, repeats)
    return Throughput(
        what="evaluation",
        batch_size=x.shape[0],
        num_samples=num_samples,
        seconds_median=times[len(times) // 2],
        seconds_min=times[0],
        repeats=repeats,
        device=str(x.device),
    )
