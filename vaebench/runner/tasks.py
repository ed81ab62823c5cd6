"""What a suite cell does, by the suite's `task`: train_eval, gradients, kernels, exact.

A task receives the resolved cell and a RunContext and returns a TaskResult (metrics with
standard errors, per-epoch curves, notes, artifact paths). It reaches the components only
through `vaebench.runner.adapters`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..registry import Registry
from ..results import Metric
from . import adapters
from .resolve import ResolvedCell

__all__ = ["TASKS", "RunContext", "TaskResult"]


@dataclass
class RunContext:
    """Where a run writes (run_dir: checkpoints, plots) and how it reports."""

    results_dir: Path
    run_dir: Path
    device: torch.device
    progress: bool


@dataclass
class TaskResult:
    """What a task measured; per_example and test_points as in vaebench.results.RunRecord."""

    metrics: dict[str, Metric] = field(default_factory=dict)
    curves: dict[str, list[float]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    artifacts: dict[str, str] = field(default_factory=dict)
    per_example: dict[str, list[float]] = field(default_factory=dict)
    test_points: dict[str, Any] = field(default_factory=dict)


Task = Callable[[ResolvedCell, RunContext], TaskResult]
TASKS: Registry[Task] = Registry("task")


def _rel(path: Path, ctx: RunContext) -> str:
    try:
        return str(path.resolve().relative_to(ctx.results_dir.resolve()))
    except ValueError:
        return str(path)


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
    artifacts = {"checkpoints": _rel(ctx.run_dir / "checkpoints", ctx)}
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
        artifacts["valid_curve"] = _rel(_plot_valid_curve(outcome.curves, ctx.run_dir, cell.cell), ctx)
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


@TASKS.register("gradients", "gradient variance and SNR of an estimator vs K, encoder and decoder separately")
def gradients(cell: ResolvedCell, ctx: RunContext) -> TaskResult:
    from .. import evaluation

    cfg = cell.config
    data = adapters.load_data(cfg, cell.seed)
    model = adapters.model_from_config(cfg, data).to(ctx.device)
    curves: dict[str, list[float]] = {}
    notes = list(data.notes)
    shift = cfg.gradients.exact_posterior_shift
    if shift is not None:  # a point whose weights' relative variance is known: no training
        set_exact = getattr(model, "set_exact_posterior", None)
        if set_exact is None:
            raise ValueError(
                f"suite '{cell.suite}' cell '{cell.cell}': gradients.exact_posterior_shift needs a model with "
                f"an exact posterior family (set_exact_posterior), got model '{cfg.model.name}'; use "
                "model=linear_gaussian with exact_family=true, or gradients.exact_posterior_shift=null"
            )
        set_exact(mean_shift=float(shift))
        notes.append(
            f"measured at q = the exact posterior with its mean shifted by {float(shift):g} posterior standard "
            f"deviations (no training): the weights' relative variance is exp({float(shift):g}^2) - 1 = "
            f"{math.expm1(float(shift) ** 2):.3g} exactly"
        )
    elif adapters.train_epochs(cfg) > 0:  # measure at a trained point, the same for every cell of the suite
        gc = cfg.gradients
        trainer_estimator = adapters.estimator_from_config(
            cfg, name=gc.train_estimator, num_samples=gc.train_num_samples, kwargs={}
        )
        curves = adapters.train_from_config(
            model,
            trainer_estimator,
            data,
            cfg,
            checkpoint_dir=ctx.run_dir / "checkpoints",
            seed=cell.seed,
            device=ctx.device,
            progress=ctx.progress,
        ).curves
    x = evaluation.take_examples(data.test, cfg.gradients.batch_size, device=ctx.device)
    ks = list(cfg.gradients.num_samples)
    stats = evaluation.gradient_stats_sweep(
        model,
        lambda k: adapters.estimator_from_config(cfg, num_samples=k),
        x,
        ks,
        num_draws=cfg.gradients.num_draws,
        seed=cell.seed,
    )
    metrics: dict[str, Metric] = {}
    for st in stats:
        for group, g in st.groups.items():
            metrics[f"{group}_snr@K={st.num_samples}"] = Metric(float(g.snr_norm), g.snr_norm_se, 1)
            metrics[f"{group}_snr_param_mean@K={st.num_samples}"] = Metric(float(g.snr_mean), None, 1)
            metrics[f"{group}_variance@K={st.num_samples}"] = Metric(float(g.variance_mean), None, 1)
        if st.ess_mean is not None and st.ess_fraction is not None:
            metrics[f"ess@K={st.num_samples}"] = Metric(float(st.ess_mean), None, 1)
            metrics[f"ess_fraction@K={st.num_samples}"] = Metric(float(st.ess_fraction), None, 1)
        if st.weight_relvar is not None:
            metrics[f"weight_relvar@K={st.num_samples}"] = Metric(float(st.weight_relvar), None, 1)
    slopes: dict[tuple[str, str], tuple[float, float]] = {}
    if len(ks) > 1:
        for group in stats[0].groups:
            fit = evaluation.snr_slope(stats, group)
            metrics[f"{group}_snr_slope"] = Metric(float(fit.slope), float(fit.se), 1)
            slopes[(stats[0].estimator, group)] = (fit.slope, fit.se)
            # The rates are asymptotic in K: the slope over each interval of consecutive K,
            # named by the interval's upper K, shows where (and whether) they set in.
            for local in evaluation.snr_local_slopes(stats, group):
                metrics[f"{group}_local_slope@K={local.num_samples[1]}"] = Metric(
                    float(local.slope), None if math.isnan(local.se) else float(local.se), 1
                )
    metrics["snr_floor"] = Metric(1.0 / cfg.gradients.num_draws**0.5, None, 1)
    notes.append(
        f"SNR = |E g| / std g of the group's gradient over {cfg.gradients.num_draws} draws at fixed "
        "parameters, floor-corrected: sqrt(max(|mean g|^2 - tr Var g / R, 0) / tr Var g) (a gradient without "
        "signal scores ~0; the raw per-parameter mean is *_snr_param_mean, floor ~1/sqrt(R)); standard errors "
        f"and the log-log slopes' are jackknife over {min(10, cfg.gradients.num_draws // 2)} blocks of draws "
        "(Rainforth et al. 2018: IWAE encoder -1/2, "
        "decoder +1/2; DReG encoder +1/2)"
    )
    if len(ks) > 1:
        notes.append(
            "The rates are asymptotic: they hold once K is large against the weights' relative variance "
            "Var w / (E w)^2 (weight_relvar, pooled over every draw; a lower bound for heavy-tailed weights), "
            "i.e. once the ESS is large (ess_fraction = ESS / K tends to 1 / (1 + relvar)). "
            "*_local_slope@K=k is the slope of log SNR over [the previous K, k]: the regime is reached where "
            "the local slopes have settled; *_snr_slope is the least-squares slope over every K, which mixes "
            "the regimes (docs/snr.md)"
        )
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ctx.run_dir.mkdir(parents=True, exist_ok=True)
    plot = ctx.run_dir / "gradient_stats.png"
    fig = evaluation.plot_gradient_stats(stats, slopes=slopes)
    fig = getattr(fig, "figure", fig)
    fig.savefig(plot, dpi=100, bbox_inches="tight")
    plt.close(fig)
    return TaskResult(metrics, curves, notes, {"plot": _rel(plot, ctx)})


@TASKS.register("kernels", "throughput of each fused op vs eager and torch.compile; end-to-end steps")
def kernels(cell: ResolvedCell, ctx: RunContext) -> TaskResult:
    from .throughput import end_to_end_throughput, op_throughput

    cfg = cell.config
    kc = cfg.kernels
    if kc.measure in ("train_step", "evaluation"):
        return end_to_end_throughput(cell, ctx)
    if kc.measure != "ops":
        raise ValueError(f"kernels.measure must be 'ops', 'train_step' or 'evaluation', got '{kc.measure}'")
    metrics: dict[str, Metric] = {}
    from .. import ops

    notes = [
        f"vaebench.ops backend: {ops.backend(ctx.device)}",
        f"{ctx.device} timings, {torch.get_num_threads()} threads, median of {kc.repeats} repeats",
    ]
    for op in kc.ops:
        for size in kc.sizes:
            metrics.update(
                op_throughput(
                    op, tuple(size), list(kc.providers), kc.repeats, kc.dtype, ctx.device, prefix_op=len(kc.ops) > 1
                )
            )
    return TaskResult(metrics, {}, notes, {})


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
    from .. import evaluation

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
