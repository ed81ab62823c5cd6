"""Typed schemas of a vaebench run and of a suite file, registered with Hydra's ConfigStore.

A run config is composed by Hydra from the groups `suite`, `budget`, `dataset`, `model`,
`posterior`, `estimator` (YAML in `vaebench/conf/`, suites from the suite folders) and checked
against `RunConfig`: an unknown key or a value of the wrong type fails naming the key. A suite
file is checked against `SuiteConfig`; its per-budget and per-cell layers are partial run
configs, checked against `RunConfig` when the runner merges them (`vaebench.runner.resolve`).
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from hydra.core.config_store import ConfigStore

from .ops.catalog import op_names

__all__ = [
    "ADDED_KEYS",
    "NON_SEMANTIC_KEYS",
    "BudgetConfig",
    "BudgetLayer",
    "CellConfig",
    "DatasetConfig",
    "EstimatorConfig",
    "EvalConfig",
    "ExactConfig",
    "GradientConfig",
    "GridConfig",
    "KernelsConfig",
    "ModelConfig",
    "PosteriorConfig",
    "ReferenceRow",
    "RunConfig",
    "SuiteConfig",
    "TrainSection",
    "added_key_default",
    "merge_layers",
    "register_configs",
    "without_added_defaults",
]

# ruff: noqa: UP006, UP035, UP045
# OmegaConf's structured configs need typing.List/Dict/Optional (PEP 604 unions are not read
# by omegaconf 2.3), hence the older spelling in this module only.


@dataclass
class DatasetConfig:
    """Which data: a name from `vaebench.datasets.DATASETS` and how much of it."""

    name: str = "digits28"
    data_dir: Optional[str] = None  # None: VAEBENCH_DATA_DIR, then ~/.cache/vaebench
    download: bool = True  # fetch missing files from the original source (checksummed)
    train_size: Optional[int] = None  # None: the whole split; smoke/quick budgets cut it
    test_size: Optional[int] = None
    kwargs: Dict[str, Any] = field(default_factory=dict)  # passed to vaebench.datasets.load


@dataclass
class ModelConfig:
    """Which architecture: a name from `vaebench.models.MODELS` plus its options."""

    name: str = "mlp_burda"
    likelihood: Optional[str] = None  # None: the dataset card's likelihood
    likelihood_kwargs: Dict[str, Any] = field(default_factory=dict)  # e.g. std for gaussian
    kwargs: Dict[str, Any] = field(default_factory=dict)  # architecture options: latent_dim, hidden


@dataclass
class PosteriorConfig:
    """Which posterior family: a name from `vaebench.posteriors.POSTERIORS` and its options."""

    name: str = "diagonal"
    kwargs: Dict[str, Any] = field(default_factory=dict)  # e.g. num_flows


@dataclass
class EstimatorConfig:
    """Which gradient estimator: a name from `vaebench.estimators.ESTIMATORS`, K and options."""

    name: str = "elbo"
    num_samples: int = 1
    kwargs: Dict[str, Any] = field(default_factory=dict)  # e.g. alpha for renyi


@dataclass
class BudgetConfig:
    """How much compute: `smoke` (seconds, CI), `quick` (minutes on a laptop CPU), `paper`."""

    name: str = "quick"
    description: str = ""


@dataclass
class TrainSection:
    """The `train:` section, and the trainer's options: `vaebench.trainer.Trainer` takes it whole.

    The one set of training defaults (REFERENCES.md: Adam lr 1e-3, eps 1e-4; the IWAE protocol's
    batch of 20 is set by the suites that run it). A Python caller builds it directly,
    `TrainSection(epochs=3, batch_size=20)`; a run gets it from its composed config.

    epochs: epochs in total (a resumed run continues up to it); None: the schedule's own length
        (iwae: 3,280), else 10 (`vaebench.trainer.resolve_epochs`).
    lr, eps, betas: Adam's (or Adamax's); the paper's beta1 0.9, the released code's 0.99.
    schedule: a name in `vaebench.trainer.SCHEDULES`; None: constant. lr(epoch) = lr * factor(epoch).
    max_steps: stop after this many optimizer steps in total (None: no cap), for budgets.
    kl_warmup_epochs: the KL weight rises linearly from 0 to 1 over this many epochs (0: off);
        needs an estimator with a settable `kl_weight` attribute.
    early_stopping_patience: stop after this many epochs without a better validation bound and
        restore the best model (None: off; needs validation data).
    optimizer: "adam" (the IWAE protocol) or "adamax" (the Sylvester-flow protocol: lr 5e-4, eps 1e-7).
    convergence_window, convergence_tol: the ConvergenceRule (the best validation bound gained
        < tol nats over the last window epochs, or early stopping ended the run); reported, never a stop.
    grad_clip_norm: clip the total gradient norm to this (None: off).
    valid_batch_size: batch size of the per-epoch validation bound.
    """

    epochs: Optional[int] = None
    batch_size: int = 100
    lr: float = 1e-3
    eps: float = 1e-4
    schedule: Optional[str] = None
    max_steps: Optional[int] = None
    kl_warmup_epochs: int = 0
    early_stopping_patience: Optional[int] = None
    optimizer: str = "adam"
    convergence_window: int = 20
    convergence_tol: float = 0.1
    # Added after records were committed (ADDED_KEYS): at these defaults they are what those runs did.
    betas: List[float] = field(default_factory=lambda: [0.9, 0.999])
    grad_clip_norm: Optional[float] = None
    valid_batch_size: int = 100


@dataclass
class EvalConfig:
    """Evaluation protocol: NLL by importance sampling (K=5000 in the literature)."""

    nll_samples: int = 5000  # evaluation.likelihood.PAPER_NLL_SAMPLES (a test keeps them equal)
    chunk_size: int = 500  # importance samples per chunk: bounds memory, combined exactly
    batch_size: int = 100
    elbo_samples: int = 1
    active_units_examples: int = 500  # Burda et al. 2015: the first 500 training examples
    active_units_threshold: float = 0.01  # Burda et al. 2015: Var_x(E_q[u|x]) > 0.01
    # draws of E_q[z|x] for families without an analytic mean (their inflation is subtracted)
    active_units_samples: int = 2000
    # inference gaps (Cremer et al. 2018) on the first gap_examples test points; 0: off
    gap_examples: int = 0
    gap_steps: int = 300  # Adam steps of the per-point q*
    gap_lr: float = 1.0e-3
    gap_samples: int = 1000  # draws of each bound


@dataclass
class GradientConfig:
    """Gradient variance/SNR protocol (Rainforth et al. 2018): draws at fixed parameters."""

    num_draws: int = 100
    batch_size: int = 32
    num_samples: List[int] = field(default_factory=lambda: [1, 5, 50])
    # Every cell is measured at the same parameters: trained train.epochs with this estimator.
    train_estimator: str = "elbo_mc"
    train_num_samples: int = 1
    # Instead of training: q := the exact posterior with its mean shifted by this many posterior
    # standard deviations (model linear_gaussian with exact_family), so that the weights'
    # relative variance Var w / (E w)^2 is exp(shift^2) - 1 exactly. None: train.
    exact_posterior_shift: Optional[float] = None


@dataclass
class KernelsConfig:
    """Throughput of the fused ops against eager and torch.compile, or of end-to-end steps."""

    measure: str = "ops"  # "ops" | "train_step" | "evaluation"
    ops: List[str] = field(default_factory=op_names)  # every op in vaebench.ops.OPS
    # (K, B, D): reparameterize draws K samples of (B, D), gaussian_kl takes K*B rows of D,
    # log_mean_exp reduces (K, B) over K (D, if given, is ignored); see OpBenchmark.from_kbd
    sizes: List[List[int]] = field(default_factory=lambda: [[64, 256, 64]])
    providers: List[str] = field(default_factory=lambda: ["reference", "compiled", "fused"])
    repeats: int = 20
    dtype: str = "float32"


@dataclass
class ExactConfig:
    """Estimator bias/variance against exact log p(x) on the linear-Gaussian model."""

    num_draws: int = 200
    num_examples: int = 64
    num_samples: List[int] = field(default_factory=lambda: [1, 5, 50])


@dataclass
class CellConfig:
    """One cell of a suite: a name and the partial run config it changes."""

    name: str = "???"
    description: str = ""
    config: Dict[str, Any] = field(default_factory=dict)


@dataclass
class GridConfig:
    """Cells as the product of named axes, expanded by the runner when the suite loads.

    Each axis maps a label to the partial run config it sets; every combination is one cell
    (the first axis outermost), named by `name`, a `str.format` template over the axis names:

        grid:
          name: "{posterior}@{dataset}"
          axes:
            dataset: {mnist: {dataset: {name: mnist}}, omniglot: {dataset: {name: omniglot}}}
            posterior: {diagonal: {posterior: {name: diagonal}}, planar_8: {posterior: {...}}}

    gives the cells diagonal@mnist, planar_8@mnist, diagonal@omniglot, planar_8@omniglot. The
    grid's cells follow the suite's explicit `cells`.
    """

    name: str = "???"
    axes: Dict[str, Dict[str, Any]] = field(default_factory=dict)


@dataclass
class BudgetLayer:
    """What a budget changes in a suite: a partial run config, and optionally fewer cells/seeds."""

    description: str = ""
    cells: Optional[List[str]] = None  # None: every cell
    seeds: Optional[List[int]] = None  # None: the suite's seeds
    config: Dict[str, Any] = field(default_factory=dict)


@dataclass
class ReferenceRow:
    """A published number shown on the leaderboard as a reference row (never a run)."""

    cell: str = "???"
    metric: str = "???"
    value: float = 0.0
    source: str = "???"  # title/authors/year/arXiv id
    status: str = "unverified"  # "V" (checked against released code) or "unverified"
    dataset: str = ""
    note: str = ""


@dataclass
class SuiteConfig:
    """A versioned suite: data, model, protocol, metrics, seeds, budgets and cells."""

    name: str = "???"
    version: int = 1
    description: str = ""
    task: str = "train_eval"  # train_eval | gradients | kernels | exact
    metrics: List[str] = field(default_factory=list)
    # The cell every other is compared with (paired differences on the leaderboard); for
    # suites whose cells carry "@dataset", the name before "@" (e.g. diagonal). None: no baseline.
    baseline: Optional[str] = None
    seeds: List[int] = field(default_factory=lambda: [0])
    common: Dict[str, Any] = field(default_factory=dict)  # partial run config for every cell
    budgets: Dict[str, BudgetLayer] = field(default_factory=dict)
    cells: List[CellConfig] = field(default_factory=list)
    grid: Optional[GridConfig] = None  # more cells, as a product of axes (expanded when loaded)
    references: List[ReferenceRow] = field(default_factory=list)


@dataclass
class RunConfig:
    """The composed config of `vaebench run`."""

    suite: SuiteConfig = field(default_factory=SuiteConfig)
    budget: BudgetConfig = field(default_factory=BudgetConfig)
    dataset: DatasetConfig = field(default_factory=DatasetConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    posterior: PosteriorConfig = field(default_factory=PosteriorConfig)
    estimator: EstimatorConfig = field(default_factory=EstimatorConfig)
    train: TrainSection = field(default_factory=TrainSection)
    eval: EvalConfig = field(default_factory=EvalConfig)
    gradients: GradientConfig = field(default_factory=GradientConfig)
    kernels: KernelsConfig = field(default_factory=KernelsConfig)
    exact: ExactConfig = field(default_factory=ExactConfig)
    seed: Optional[int] = None  # None: the suite's (budget's) seeds
    cells: Optional[List[str]] = None  # None: the budget's cells
    # A user's runs go to ./local-results (ignored by git), never into the project's committed
    # results/: those are written only with results_dir=results, when asked.
    results_dir: str = "local-results"
    suite_dirs: List[str] = field(default_factory=list)
    force: bool = False  # recompute a finished run with the same config hash
    device: str = "cpu"  # "cpu", "cuda", "cuda:1" or "auto"
    progress: bool = True
    # Worker processes for the new runs; None: one per core on a CPU, 1 on a GPU (runner.parallel).
    jobs: Optional[int] = None
    dry_run: bool = False  # validate, print the resolved cells and the time estimate, compute nothing


# Keys of RunConfig that do not change what is computed: left out of the config hash.
NON_SEMANTIC_KEYS = ("results_dir", "suite_dirs", "force", "progress", "cells", "suite", "dry_run", "jobs")

# Keys added to a section after records were committed (dotted paths). The records' stored configs
# lack them, and their schema default is what those runs did, so at that default a key is left
# out of the config hash (vaebench.runner.resolve) and of a row's protocol
# (vaebench.runner.identity): every earlier record keeps its identity. Any other value counts.
ADDED_KEYS = ("train.betas", "train.grad_clip_norm", "train.valid_batch_size")


def added_key_default(key: str) -> Any:
    """The schema default of one of ADDED_KEYS (read from the dataclasses, never restated)."""
    node: Any = RunConfig()
    for part in key.split("."):
        node = getattr(node, part)
    return node


def without_added_defaults(config: Mapping[str, Any]) -> Dict[str, Any]:
    """A copy of a plain run config without the ADDED_KEYS that hold their default.

    `config` is nested plain data (a record's stored config, `ResolvedCell.plain_config()`); it
    is not changed.
    """
    out = copy.deepcopy(dict(config))
    for key in ADDED_KEYS:
        *sections, leaf = key.split(".")
        holder: Any = out
        for section in sections:
            holder = holder.get(section) if isinstance(holder, dict) else None
        if isinstance(holder, dict) and leaf in holder and holder[leaf] == added_key_default(key):
            del holder[leaf]
    return out


def merge_layers(*layers: Mapping[str, Any]) -> Dict[str, Any]:
    """Partial run configs merged as plain data, later layers winning: mappings merge key by key,
    any other value (lists too) is replaced, as OmegaConf merges them. The layers are not changed.

    The runner types the result against RunConfig once (vaebench.runner.resolve).
    """
    out: Dict[str, Any] = {}
    for layer in layers:
        for key, value in layer.items():
            if isinstance(value, Mapping) and isinstance(out.get(key), dict):
                out[key] = merge_layers(out[key], value)
            else:
                out[key] = copy.deepcopy(dict(value) if isinstance(value, Mapping) else value)
    return out


def register_configs(store: ConfigStore | None = None) -> None:
    """Register the schemas: `base_config` (RunConfig) is the first entry of config.yaml."""
    store = store or ConfigStore.instance()
    store.store(name="base_config", node=RunConfig)


def __getattr__(name: str) -> object:
    # The train section was once called `TrainConfig`, like the trainer's options then; both are
    # now the one TrainSection. The old import keeps working, with a warning naming the new one.
    if name == "TrainConfig":
        warnings.warn(
            "vaebench.config.TrainConfig is now vaebench.config.TrainSection (the train section, which "
            "vaebench.trainer.Trainer takes whole)",
            DeprecationWarning,
            stacklevel=2,
        )
        return TrainSection
    raise AttributeError(f"module 'vaebench.config' has no attribute {name!r}")
