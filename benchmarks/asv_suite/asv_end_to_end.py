"""asv benchmarks end to end: one training step and the K=5000 test-NLL evaluation.

The Burda et al. MLP (784-200-200-50) with a diagonal posterior on the embedded 28x28
digits; IWAE with K=5 for the training step (batch 100), K=5000 importance samples in chunks
of 500 for the evaluation (10 examples). Run: `asv run -E existing --bench asv_end_to_end`.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

from vaebench.datasets import load
from vaebench.estimators import ESTIMATORS
from vaebench.evaluation import estimate_log_likelihood
from vaebench.models import build_model


def _end_to_end_scripts() -> None:
    """Makes benchmarks/bench_nll.py and bench_train_step.py importable: their providers (the
    hand-written eager and compiled baselines, the matmuls alone) are defined once, there."""
    here = str(Path(__file__).resolve().parent.parent)
    if here not in sys.path:
        sys.path.insert(0, here)


def _model(posterior: str = "diagonal") -> tuple[torch.nn.Module, torch.Tensor]:
    torch.manual_seed(0)
    data = load("digits28", seed=0)
    x = data.tensor("test")[:100]
    model = build_model(
        "mlp_burda",
        posterior=posterior,
        event_shape=data.event_shape,
        likelihood="bernoulli",
        data_mean=data.train_mean(),
    )
    return model, x


class TrainStep:
    params = (["diagonal", "iaf"], [1, 5, 50])
    param_names = ["posterior", "num_samples"]  # noqa: RUF012 - asv reads class attributes
    timeout = 120

    def setup(self, posterior: str, num_samples: int) -> None:
        self.model, self.x = _model(posterior)
        self.estimator = ESTIMATORS.get("iwae")(num_samples=num_samples)
        self.opt = torch.optim.Adam(self.model.parameters(), lr=1e-3, eps=1e-4)
        self.time_step(posterior, num_samples)  # warm up

    def time_step(self, posterior: str, num_samples: int) -> None:
        self.opt.zero_grad(set_to_none=True)
        self.estimator(self.model, self.x).surrogate.backward()
        self.opt.step()

    def peakmem_step(self, posterior: str, num_samples: int) -> None:
        self.time_step(posterior, num_samples)


class Evaluation:
    timeout = 300

    def setup(self) -> None:
        self.model, x = _model()
        self.x = x[:10]

    def time_nll_k5000(self) -> None:
        with torch.no_grad():
            estimate_log_likelihood(self.model, self.x, num_samples=5000, chunk_size=500, batch_size=10, progress=False)


class NllProviders:
    """The K=5000 NLL of 20 test digits by every provider of benchmarks/bench_nll.py (vaebench
    with and without the fused head, hand-written eager, torch.compile of it, the decoder
    matmuls alone), same weights: their times side by side are the issue-11 ratios."""

    params = (["vaebench", "vaebench-unfused", "eager", "compiled", "matmuls"],)
    param_names = ["provider"]  # noqa: RUF012 - asv reads class attributes
    timeout = 600

    def setup(self, provider: str) -> None:
        _end_to_end_scripts()
        from bench_nll import nll_calls

        torch.set_num_threads(2)
        self.calls, _ = nll_calls()
        self.calls[provider]()  # compile, allocate

    def time_nll_k5000(self, provider: str) -> None:
        self.calls[provider]()


class TrainStepProviders:
    """One training step (batch 100; ELBO K=1, IWAE K=50) by every provider of
    benchmarks/bench_train_step.py, same weights."""

    params = (["vaebench", "vaebench-unfused", "eager", "compiled", "matmuls"], ["elbo-k1", "iwae-k50"])
    param_names = ["provider", "case"]  # noqa: RUF012 - asv reads class attributes
    timeout = 600

    def setup(self, provider: str, case: str) -> None:
        _end_to_end_scripts()
        from bench_train_step import step_calls

        torch.set_num_threads(2)
        self.calls, _ = step_calls(case)
        self.calls[provider]()

    def time_step(self, provider: str, case: str) -> None:
        self.calls[provider]()
