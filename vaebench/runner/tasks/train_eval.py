"""The `train_eval` task: train a VAE to convergence, then its test NLL, ELBO, KL and active units."""

from __future__ import annotations

import math
from pathlib import Path

from ...results import Metric
from .. import adapters
from ..resolve import ResolvedCell
from .base import TASKS, RunContext, TaskResult

__all__ = ["train_eval"]


@TASKS.register("train_eval", "train a VAE, then test NLL (importance sampling), ELBO, KL, active units")
def train_eval(cell: ResolvedCell, ctx: RunContext) -> TaskResult:
    cfg = cell.config
    data = adapters.load_data(cfg, cell.seed)
    model = adapters.model_from_config(cfg, data).to(ctx.device)
    estimator = adapters.estimator_from_config(cfg)
    outcome = adapters.train_from_config(
        model,
        estimator,
        data,
        cfg,
        checkpoint_dir=ctx.run_dir / "checkpoints",
        seed=cell.seed,
        device=ctx.device,
        progress=ctx.progress,
    )
    metrics, notes, per_example = adapters.evaluate(
        model, data, cfg, seed=cell.seed, device=ctx.device, progress=ctx.progress
    )
    metrics["train_time_s"] = Metric(outcome.seconds, None, 1)
    metrics["epochs"] = Metric(float(outcome.epochs), None, 1)
    artifacts = {"checkpoints": ctx.artifact(ctx.run_dir / "checkpoints")}
    conv = outcome.convergence
    if conv is not None:
        # 1 converged, 0 not (the leaderboard flags 0); the best validation bound's gain over
        # the rule's window says by how much a run is still moving.
        metrics["converged"] = Metric(float(conv.converged), None, 1)
        if math.isfinite(conv.improvement):  # undefined (NaN) when the run is shorter than the window
            metrics["valid_gain_last_window"] = Metric(float(conv.improvement), None, 1)
        notes.append(f"{'converged' if conv.converged else 'NOT CONVERGED'}: {conv.reason}")
    if outcome.best_epoch is not None:
        metrics["best_epoch"] = Metric(float(outcome.best_epoch), None, 1)
        best = max(v for v in outcome.curves["valid_bound"] if not math.isnan(v))
        metrics["best_valid_bound"] = Metric(float(best), None, 1)
    if outcome.resumed_from is not None:
        notes.append(f"resumed from the checkpoint of epoch {outcome.resumed_from}")
    if outcome.curves.get("valid_bound"):
        artifacts["valid_curve"] = ctx.artifact(_plot_valid_curve(outcome.curves, ctx.run_dir, cell.cell))
    return TaskResult(
        metrics,
        outcome.curves,
        [*data.notes, *notes],
        artifacts,
        per_example=per_example,
        test_points=adapters.test_points(data),
    )


def _plot_valid_curve(curves: dict[str, list[float]], run_dir: Path, title: str) -> Path:
    """valid_curve.png in the run folder: train and validation bound per epoch."""
    # lazy: matplotlib is slow to import and the runner is on the CLI's start-up path
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / "valid_curve.png"
    fig, ax = plt.subplots(figsize=(5, 3.2))
    ax.plot(curves["epoch"], curves["train_bound"], label="train bound", lw=1, alpha=0.7)
    ax.plot(curves["epoch"], curves["valid_bound"], label="validation bound", lw=1.5)
    finite = [v for v in curves["valid_bound"] if not math.isnan(v)]
    if finite:  # the tail is what convergence is about: do not let epoch 1 squash it
        top = max(finite)
        ax.set_ylim(top - max(10.0, 0.05 * abs(top)), top + 2.0)
    ax.set_xlabel("epoch")
    ax.set_ylabel("bound (nats per example)")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
