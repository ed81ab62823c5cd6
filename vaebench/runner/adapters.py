"""The one place where the runner meets the components: data, model, estimator, training, evaluation.

Each function turns a section of a run config into a call of a component's public API, so a
change in a component's signature is absorbed here and nowhere else in the runner.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf
from torch import nn
from torch.utils.data import Dataset, Subset

from .. import datasets, evaluation, models, trainer
from ..config import TrainSection
from ..estimators import ESTIMATORS
from ..evaluation.likelihood import PAPER_NLL_SAMPLES
from ..results import Metric

__all__ = [
    "RunData",
    "TrainOutcome",
    "dataset_card",
    "estimator_from_config",
    "evaluate",
    "load_data",
    "model_from_config",
    "per_example_values",
    "test_points",
    "train_epochs",
    "train_from_config",
]

# Per-example values are stored to 1e-6 nats: far below any difference a table reports (the
# paired errors of a difference are ~0.1 nat), and it keeps a 10,000-example record small.
PER_EXAMPLE_DECIMALS = 6


def _plain(node: Any) -> Any:
    return OmegaConf.to_container(node, resolve=True) if isinstance(node, DictConfig) else node


@dataclass
class RunData:
    """The splits a run uses (train/test cut to the budget's sizes) and what the model needs."""

    train: Dataset[torch.Tensor]
    valid: Dataset[torch.Tensor]
    test: Dataset[torch.Tensor]
    event_shape: tuple[int, ...]
    likelihood: str
    name: str
    splits: Any  # vaebench.datasets.DatasetSplits (card, ground truth, train_mean)
    notes: list[str] = field(default_factory=list)


def _cut(ds: Dataset[torch.Tensor], size: int | None, what: str, notes: list[str]) -> Dataset[torch.Tensor]:
    n = len(ds)  # type: ignore[arg-type]
    if size is None or size >= n:
        return ds
    if size < 1:
        raise ValueError(f"dataset.{what}_size must be >= 1 or null (all), got {size}")
    notes.append(f"{what} split cut to its first {size} of {n} examples")
    return Subset(ds, range(size))


def load_data(cfg: DictConfig, seed: int) -> RunData:
    """Load `cfg.dataset` (a DatasetConfig) with vaebench.datasets.load and cut it to size."""
    dc = cfg.dataset
    splits = datasets.load(dc.name, data_dir=dc.data_dir, download=dc.download, seed=seed, **_plain(dc.kwargs))
    notes: list[str] = []
    train = _cut(splits.train, dc.train_size, "train", notes)
    test = _cut(splits.test, dc.test_size, "test", notes)
    valid = _cut(splits.valid, dc.test_size, "valid", [])
    return RunData(train, valid, test, tuple(splits.event_shape), str(splits.likelihood), splits.name, splits, notes)


def dataset_card(name: str) -> Any:
    """The DatasetCard of a registered dataset (has `.render()` and `.as_dict()`)."""
    return datasets.card(name)


def model_from_config(cfg: DictConfig, data: RunData) -> nn.Module:
    """A VAE from `cfg.model` (architecture and options) and `cfg.posterior` for `data`."""
    likelihood = cfg.model.likelihood or data.likelihood
    # Burda et al.: the Bernoulli output bias starts at logit(clip(train mean, 0.001, 0.999)).
    mean = data.splits.train_mean().reshape(data.event_shape) if likelihood == "bernoulli" else None
    return models.build_model(
        dict(_plain(cfg.model.kwargs), name=cfg.model.name),
        posterior=cfg.posterior.name,
        posterior_kwargs=_plain(cfg.posterior.kwargs),
        event_shape=data.event_shape,
        likelihood=likelihood,
        likelihood_kwargs=_plain(cfg.model.likelihood_kwargs),
        data_mean=mean,
    )


def estimator_from_config(
    cfg: DictConfig, num_samples: int | None = None, *, name: str | None = None, kwargs: dict[str, Any] | None = None
) -> Callable[..., Any]:
    """The configured estimator of `cfg.estimator`, or with another K / name / options."""
    ec = cfg.estimator
    k = ec.num_samples if num_samples is None else num_samples
    options = _plain(ec.kwargs) if kwargs is None else kwargs
    return ESTIMATORS.get(name or ec.name)(num_samples=k, **options)


@dataclass
class TrainOutcome:
    """What training produced; `convergence` is the trainer's ConvergenceRule verdict."""

    curves: dict[str, list[float]]
    epochs: int
    seconds: float
    resumed_from: int | None = None
    convergence: Any = None  # vaebench.trainer.Convergence
    best_epoch: int | None = None
    stopped_early: bool = False


def train_epochs(cfg: DictConfig) -> int:
    """The epochs `cfg.train` trains: train.epochs, else the schedule's length (iwae: 3,280)."""
    return trainer.resolve_epochs(cfg.train.epochs, cfg.train.schedule)


def train_from_config(
    model: nn.Module,
    estimator: Callable[..., Any],
    data: RunData,
    cfg: DictConfig,
    *,
    checkpoint_dir: Path,
    seed: int,
    device: torch.device,
    progress: bool,
) -> TrainOutcome:
    """Train with vaebench.trainer under `cfg.train`, passed whole; resumes from `checkpoint_dir`."""
    section = OmegaConf.to_object(cfg.train)  # the typed TrainSection the schema composed
    assert isinstance(section, TrainSection)  # cfg is a structured RunConfig
    result = trainer.train(
        model,
        estimator,
        data.train,
        data.valid,
        section,
        checkpoint_dir=checkpoint_dir,
        seed=seed,
        device=device,
        progress=progress,
    )
    return TrainOutcome(
        curves={k: [float(v) for v in vs] for k, vs in dict(result.curves).items()},
        epochs=int(result.epochs),
        seconds=float(result.seconds),
        resumed_from=result.resumed_from,
        convergence=result.convergence,
        best_epoch=result.best_epoch,
        stopped_early=bool(result.stopped_early),
    )


def test_points(data: RunData, num_examples: int | None = None) -> dict[str, Any]:
    """What identifies the test examples a run evaluates: split, count, order and a sha256.

    The sha256 is over the first `num_examples` (default all) test inputs (N, *event) as
    contiguous float32 bytes, after the binarization: two records pair example by example only
    when their hashes are equal (the binarized datasets fix their test set with their own seed,
    123, whatever the run's seed; linear_gaussian draws it from the run's seed).
    """
    n = len(data.test) if num_examples is None else num_examples  # type: ignore[arg-type]
    x = evaluation.take_examples(data.test, n, device="cpu").to(torch.float32).contiguous()
    digest = hashlib.sha256(x.numpy().tobytes()).hexdigest()
    return {"split": "test", "count": int(x.shape[0]), "order": "test split order", "sha256": digest}


def per_example_values(t: torch.Tensor) -> list[float]:
    """(N,) values as a list rounded to PER_EXAMPLE_DECIMALS, for RunRecord.per_example."""
    return [round(float(v), PER_EXAMPLE_DECIMALS) for v in t.detach().double().cpu().reshape(-1).tolist()]


def evaluate(
    model: nn.Module, data: RunData, cfg: DictConfig, *, seed: int, device: torch.device, progress: bool
) -> tuple[dict[str, Metric], list[str], dict[str, list[float]]]:
    """Test NLL (importance sampling), ELBO, KL, reconstruction, bits/dim, active units.

    Every metric carries its standard error over test examples (active units: none).
    Returns (metrics, notes, per_example): per_example holds "nll", "nll_mc_std" and "elbo",
    each (N,) in test-set order (see test_points for what identifies the N examples).
    """
    ec = cfg.eval
    notes: list[str] = []
    model.eval()
    ll = evaluation.estimate_log_likelihood(
        model,
        data.test,
        num_samples=ec.nll_samples,
        chunk_size=min(ec.chunk_size, ec.nll_samples),
        batch_size=ec.batch_size,
        seed=seed,
        device=device,
        progress=progress,
    )
    if ec.nll_samples != PAPER_NLL_SAMPLES:
        notes.append(
            f"test NLL estimated with K={ec.nll_samples} importance samples (the published protocol uses "
            f"{PAPER_NLL_SAMPLES})"
        )
    nll = Metric.of((-ll.log_px).tolist())
    metrics = {"nll": nll, "nll_mc_std": Metric.of(ll.mc_std.tolist())}
    if ll.num_dims:
        metrics["bits_per_dim"] = Metric.of((-ll.log_px / (ll.num_dims * torch.log(torch.tensor(2.0)))).tolist())
    bounds = evaluation.evaluate_bounds(
        model,
        data.test,
        num_samples=ec.elbo_samples,
        batch_size=ec.batch_size,
        seed=seed,
        device=device,
    )
    metrics["elbo"] = Metric.of(bounds.elbo.tolist())
    metrics["kl"] = Metric.of(bounds.kl.tolist())
    metrics["reconstruction"] = Metric.of(bounds.reconstruction.tolist())
    if not bounds.kl_analytic:
        notes.append(f"KL estimated by Monte Carlo with {ec.elbo_samples} sample(s) per example")
    au = evaluation.active_units(
        model,
        data.train,
        threshold=ec.active_units_threshold,
        num_examples=ec.active_units_examples,
        batch_size=ec.batch_size,
        seed=seed,
        num_samples=ec.active_units_samples,
    )
    metrics["active_units"] = Metric(float(au.num_active), None, 1)
    # rotation-invariant count: eigenvalues of Cov_x(E[z|x]) above the threshold
    metrics["active_units_eigen"] = Metric(float(au.num_active_eigen), None, 1)
    if len(au.layers) > 1:
        for layer in au.layers:
            metrics[f"active_units_{layer.name}"] = Metric(float(layer.num_active), None, 1)
    if au.mc_error > 0:
        notes.append(
            f"active units: posterior mean from {max(la.mc_samples for la in au.layers)} draws, their Monte Carlo "
            f"inflation of Var_x(E[u|x]) subtracted; remaining error (std) at most {au.mc_error:.2g}, threshold "
            f"{ec.active_units_threshold}"
        )
    metrics["eval_examples_per_s"] = Metric(float(ll.examples_per_second), None, 1)
    if ec.gap_examples > 0:
        n = min(ec.gap_examples, ll.log_px.shape[0])
        x = evaluation.take_examples(data.test, n, device=device)
        gaps = evaluation.inference_gaps(
            model,
            x,
            ll.log_px[:n].to(device),
            num_steps=ec.gap_steps,
            lr=ec.gap_lr,
            eval_samples=ec.gap_samples,
            seed=seed,
        )
        metrics.update(gaps.metrics())
        notes.append(
            f"inference gaps (Cremer et al. 2018) on the first {n} test points: q* per point by {ec.gap_steps} Adam "
            f"steps (lr {ec.gap_lr}) on the family's own parameters; bounds from {ec.gap_samples} draws; log p(x) the "
            f"test NLL's K={ec.nll_samples} estimate"
        )
    per_example = {
        "nll": per_example_values(-ll.log_px),
        "nll_mc_std": per_example_values(ll.mc_std),
        "elbo": per_example_values(bounds.elbo),
    }
    return metrics, notes, per_example
