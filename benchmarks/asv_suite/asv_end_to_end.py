"""asv benchmarks end to end: one training step and the K=5000 test-NLL evaluation.

The Burda et al. MLP (784-200-200-50) with a diagonal posterior on the embedded 28x28
digits; IWAE with K=5 for the training step (batch 100), K=5000 importance samples in chunks
of 500 for the evaluation (10 examples). Run: `asv run -E existing --bench asv_end_to_end`.
"""

from __future__ import annotations

import torch

from vaebench.datasets import load
from vaebench.estimators import ESTIMATORS
from vaebench.evaluation import estimate_log_likelihood
from vaebench.models import build_model


def _model(posterior: str = "diagonal") -> tuple[torch.nn.Module, torch.Tensor]:
    torch.manual_seed(0)
    data = load("digits28", seed=0)
    x = data.tensor("test")[:100]
    model = build_model("mlp_burda", posterior=posterior, event_shape=data.event_shape, likelihood="bernoulli",
                        data_mean=data.train_mean())
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
