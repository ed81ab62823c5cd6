"""The `exact` task: estimator bias and standard deviation against the exact log p(x) (linear-Gaussian)."""

from __future__ import annotations

import torch

from ... import evaluation
from ...results import Metric
from .. import adapters
from ..resolve import ResolvedCell
from .base import TASKS, RunContext, TaskResult

__all__ = ["exact"]


@TASKS.register("exact", "estimator bias and standard deviation against the exact log p(x) (linear-Gaussian)")
def exact(cell: ResolvedCell, ctx: RunContext) -> TaskResult:
    cfg = cell.config
    data = adapters.load_data(cfg, cell.seed)
    model = adapters.model_from_config(cfg, data).to(ctx.device)
    curves: dict[str, list[float]] = {}
    if adapters.train_epochs(cfg) > 0:
        curves = adapters.train_from_config(
            model,
            adapters.estimator_from_config(cfg),
            data,
            cfg,
            checkpoint_dir=ctx.run_dir / "checkpoints",
            seed=cell.seed,
            device=ctx.device,
            progress=ctx.progress,
        ).curves
    # The bias is measured against the exact log p(x) of the model being evaluated (its own
    # closed form), which after training differs from the data's generating model.
    exact_log_px = getattr(model, "log_marginal", None)
    if exact_log_px is None:
        raise ValueError(
            f"suite '{cell.suite}' cell '{cell.cell}': task 'exact' needs a model with a closed-form "
            f"log p(x) (log_marginal), got model '{cfg.model.name}'; use model=linear_gaussian"
        )
    x = evaluation.take_examples(data.test, cfg.exact.num_examples, device=ctx.device)
    with torch.no_grad():
        log_px = exact_log_px(x).to(torch.float64)
    metrics: dict[str, Metric] = {}
    per_example: dict[str, list[float]] = {}
    model.eval()
    n, draws = x.shape[0], cfg.exact.num_draws
    repeated = x.repeat(draws, *([1] * (x.dim() - 1)))  # (draws * B, *event): every draw in one call
    for k in cfg.exact.num_samples:
        estimator = adapters.estimator_from_config(cfg, num_samples=int(k))
        with torch.no_grad():
            b = estimator(model, repeated).bound.detach().to(torch.float64).reshape(draws, n)
        bias = b.mean(0) - log_px  # (B,): E[bound] - log p(x) per example
        std = b.std(0)  # (B,)
        metrics[f"bias@K={k}"] = Metric.of(bias.tolist())
        metrics[f"std@K={k}"] = Metric.of(std.tolist())
        per_example[f"bias@K={k}"] = adapters.per_example_values(bias)
        per_example[f"std@K={k}"] = adapters.per_example_values(std)
    return TaskResult(
        metrics,
        curves,
        [
            *data.notes,
            (
                f"bias = E[bound] - exact log p(x) over {cfg.exact.num_draws} draws per example; standard "
                f"errors over {x.shape[0]} test examples"
            ),
        ],
        {},
        per_example=per_example,
        test_points=adapters.test_points(data, x.shape[0]),
    )
