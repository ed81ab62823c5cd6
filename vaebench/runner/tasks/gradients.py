"""The `gradients` task: gradient variance and SNR of an estimator against K, encoder and decoder apart."""

from __future__ import annotations

import math

from ... import evaluation
from ...results import Metric
from .. import adapters
from ..resolve import ResolvedCell
from .base import TASKS, RunContext, TaskResult

__all__ = ["gradients"]


@TASKS.register("gradients", "gradient variance and SNR of an estimator vs K, encoder and decoder separately")
def gradients(cell: ResolvedCell, ctx: RunContext) -> TaskResult:
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
    # lazy: matplotlib is slow to import and the runner is on the CLI's start-up path
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ctx.run_dir.mkdir(parents=True, exist_ok=True)
    plot = ctx.run_dir / "gradient_stats.png"
    fig = evaluation.plot_gradient_stats(stats, slopes=slopes)
    fig = getattr(fig, "figure", fig)
    fig.savefig(plot, dpi=100, bbox_inches="tight")
    plt.close(fig)
    return TaskResult(metrics, curves, notes, {"plot": ctx.artifact(plot)})
