"""Whole-config validation: every problem of every resolved cell, found before any work starts.

`vaebench run` resolves its cells, then calls `validate_cells`: values and ranges of every
section the cell's task reads, cross-field rules (chunk_size <= nll_samples), the
estimator/family combination (from the registries' class attributes, not a hand-kept table),
the dataset's files (on disk, or downloadable), the device, and the folders the run will write
(results, checkpoints). All problems are raised at once in one `ValidationError`, each naming
the key, the value, what is allowed and the fix. `check_override_keys` does the same for
command-line keys before Hydra composes, so an unknown key lists its section's valid keys
(with a did-you-mean) instead of Hydra's `+key` hint, which would add a key the schema rejects.
"""

from __future__ import annotations

import dataclasses
import difflib
import inspect
import math
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from ..benchmarking import OP_BENCHMARKS, PROVIDERS
from ..config import RunConfig
from ..datasets import DATASETS
from ..datasets.download import resolve_data_dir
from ..environment import resolve_device
from ..estimators import ESTIMATORS
from ..models import LIKELIHOODS, MODELS
from ..posteriors import POSTERIORS
from ..results import records_dir, run_dir
from ..trainer import OPTIMIZERS, SCHEDULES
from .resolve import ConfigError, ResolvedCell
from .tasks import TASKS

__all__ = [
    "Problem",
    "ValidationError",
    "check_cell",
    "check_override_keys",
    "check_writable",
    "validate_cells",
]

# Hydra config groups: `dataset=mnist` chooses a group entry, it is not a key of the schema.
_GROUPS = ("suite", "budget", "dataset", "model", "posterior", "estimator", "hydra")
_DTYPES = ("float16", "bfloat16", "float32", "float64")
_MEASURES = ("ops", "train_step", "evaluation")


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a config: the key, the value it has, what is allowed, the fix."""

    key: str
    value: Any
    allowed: str
    fix: str

    def __str__(self) -> str:
        return f"{self.key}={self.value!r}: {self.allowed}; {self.fix}"


class ValidationError(ConfigError):
    """Every problem of a run config, found at once before any work (a ConfigError)."""

    def __init__(self, problems: Sequence[tuple[Problem, Sequence[str]]]) -> None:
        self.problems = [p for p, _ in problems]
        lines = []
        for problem, where in problems:
            scope = f" (cells: {', '.join(where)})" if where else ""
            lines.append(f"  - {problem}{scope}")
        n = len(lines)
        super().__init__(
            f"{n} problem{'s' if n > 1 else ''} in the run config, found before any work:\n" + "\n".join(lines)
        )


# ---- keys (before Hydra composes) ---------------------------------------------------------------


def _schema_fields(cls: type) -> dict[str, Any]:
    return {f.name: f for f in dataclasses.fields(cls)}


def _nested_dataclass(f: dataclasses.Field[Any]) -> type | None:
    """The dataclass type of a field whose default is a dataclass instance (a section)."""
    if f.default_factory is not dataclasses.MISSING:
        value = f.default_factory()
        if dataclasses.is_dataclass(value):
            return type(value)
    return None


def _did_you_mean(word: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f"did you mean '{close[0]}'?" if close else "check the spelling"


def check_override_keys(overrides: Sequence[str]) -> list[Problem]:
    """Problems with the keys of command-line overrides (`train.epochz=3`), against RunConfig.

    Group choices (`dataset=mnist`), Hydra's own keys and additions (`+key=...`, for free-form
    `kwargs` dicts) are left to Hydra; free-form dicts (`posterior.kwargs.anything`) accept any key.
    """
    problems: list[Problem] = []
    for arg in overrides:
        if arg.startswith(("-", "+", "~")) or "=" not in arg:
            continue
        key = arg.split("=", 1)[0]
        if "/" in key or key.split(".")[0] == "hydra" or key in _GROUPS:
            continue
        cls: type | None = RunConfig
        path: list[str] = []
        for part in key.split("."):
            if cls is None:  # inside a free-form dict: any key
                break
            fields = _schema_fields(cls)
            if part not in fields:
                section = ".".join(path) or "the top level"
                problems.append(
                    Problem(
                        key,
                        arg.split("=", 1)[1],
                        f"'{part}' is not a key of {section}; valid keys: {', '.join(sorted(fields))}",
                        _did_you_mean(part, fields),
                    )
                )
                break
            path.append(part)
            cls = _nested_dataclass(fields[part])
    return problems


# ---- folders ------------------------------------------------------------------------------------


def check_writable(key: str, folder: str | os.PathLike[str]) -> list[Problem]:
    """Whether `folder` is, or can be created as, a writable folder (nothing is created)."""
    path = Path(folder).expanduser()
    if path.exists() and not path.is_dir():
        return [
            Problem(
                key,
                str(folder),
                f"{path} is a file, not a folder",
                f"choose another folder ({key}=PATH) or move the file away",
            )
        ]
    probe = path
    while not probe.exists():  # the nearest existing ancestor decides whether mkdir works
        if probe.parent == probe:
            break
        probe = probe.parent
    if probe.exists() and not probe.is_dir():
        return [
            Problem(
                key,
                str(folder),
                f"{probe} is a file, so {path} cannot be created",
                f"choose a path under a folder ({key}=PATH)",
            )
        ]
    if not os.access(probe, os.W_OK | os.X_OK):
        return [
            Problem(
                key,
                str(folder),
                f"{probe} is not writable by this user",
                f"choose a writable folder ({key}=PATH) or fix its permissions",
            )
        ]
    return []


# ---- one cell -----------------------------------------------------------------------------------


def _int_at_least(problems: list[Problem], key: str, value: Any, low: int, fix: str, *, optional: bool = False) -> bool:
    if value is None and optional:
        return True
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        allowed = f"an integer >= {low}" + (" or null" if optional else "")
        problems.append(Problem(key, value, f"must be {allowed}", fix))
        return False
    return True


def _positive(problems: list[Problem], key: str, value: Any, fix: str) -> None:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not value > 0:
        problems.append(Problem(key, value, "must be a number > 0", fix))


def _options(problems: list[Problem], key: str, fn: Callable[..., Any], given: Any, fixed: set[str]) -> None:
    """Option names in `given` that `fn` does not accept (a constructor's keyword arguments)."""
    params = inspect.signature(fn).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return
    known = sorted(set(params) - fixed - {"self"})
    for name in given or {}:
        if name not in known:
            problems.append(
                Problem(
                    f"{key}.{name}",
                    given[name],
                    f"not an option; options: {', '.join(known) or '(none)'}",
                    _did_you_mean(name, known),
                )
            )


def _registered(problems: list[Problem], key: str, name: Any, registry: Any) -> bool:
    if name in registry:
        return True
    problems.append(
        Problem(
            key,
            name,
            f"not a registered {registry.kind}; known: {', '.join(registry.names())}",
            _did_you_mean(str(name), registry.names()),
        )
    )
    return False


def _check_dataset(problems: list[Problem], dc: DictConfig) -> None:
    _int_at_least(problems, "dataset.train_size", dc.train_size, 1, "use null for the whole split", optional=True)
    _int_at_least(problems, "dataset.test_size", dc.test_size, 1, "use null for the whole split", optional=True)
    if not _registered(problems, "dataset.name", dc.name, DATASETS):
        return
    source = DATASETS.get(dc.name)
    kwargs: dict[str, Any] = {str(k): v for k, v in (dc.kwargs or {}).items()}
    for name, value in kwargs.items():
        if name not in source.options():
            problems.append(
                Problem(
                    f"dataset.kwargs.{name}",
                    value,
                    f"not an option of dataset '{dc.name}'; options: {', '.join(source.options()) or '(none)'}",
                    _did_you_mean(name, source.options()),
                )
            )
    files = source.card.files
    if not files:  # embedded or synthetic: nothing on disk
        return
    folder = resolve_data_dir(dc.data_dir) / dc.name
    missing = [f.name for f in files if not (folder / f.name).is_file()]
    if not missing:
        return
    if not dc.download:
        problems.append(
            Problem(
                "dataset.data_dir",
                dc.data_dir,
                f"dataset '{dc.name}' needs {', '.join(missing)} in {folder} (missing) and dataset.download=false",
                f"put the files there (`vaebench datasets {dc.name}` says where they come "
                "from), point dataset.data_dir at them, or set dataset.download=true",
            )
        )
        return
    problems.extend(
        Problem(p.key, p.value, f"{p.allowed} (dataset '{dc.name}' downloads {', '.join(missing)} there)", p.fix)
        for p in check_writable("dataset.data_dir", folder)
    )


def _check_model(problems: list[Problem], cfg: DictConfig) -> None:
    if _registered(problems, "model.name", cfg.model.name, MODELS):
        _options(
            problems,
            "model.kwargs",
            MODELS.get(cfg.model.name),
            cfg.model.kwargs,
            {"event_shape", "make_posterior", "likelihood"},
        )
    if cfg.model.likelihood is not None:
        _registered(problems, "model.likelihood", cfg.model.likelihood, LIKELIHOODS)
    family = None
    if _registered(problems, "posterior.name", cfg.posterior.name, POSTERIORS):
        family = POSTERIORS.get(cfg.posterior.name)
        _options(problems, "posterior.kwargs", family.__init__, cfg.posterior.kwargs, {"feature_dim", "latent_dim"})
    ec = cfg.estimator
    if not _int_at_least(
        problems, "estimator.num_samples", ec.num_samples, 1, "K is the number of samples per example"
    ):
        return
    if not _registered(problems, "estimator.name", ec.name, ESTIMATORS):
        return
    estimator_cls = ESTIMATORS.get(ec.name)
    try:  # the constructor's own rules (score_function's baseline needs K >= 2, renyi's alpha)
        estimator_cls(num_samples=ec.num_samples, **(OmegaConf.to_container(ec.kwargs) or {}))  # type: ignore[arg-type]
    except (TypeError, ValueError) as exc:
        problems.append(
            Problem(
                "estimator",
                {"name": ec.name, "num_samples": ec.num_samples, **ec.kwargs},
                f"rejected by estimator '{ec.name}': {exc}",
                "change estimator.num_samples or estimator.kwargs as the message says",
            )
        )
    if family is None:
        return
    # What the family supports comes from one place (Posterior.supported_estimators: the
    # estimators' needs against the family's capabilities), the same rule the suite loader uses.
    supported = family.supported_estimators()
    if ec.name not in supported:
        problems.append(
            Problem(
                "estimator.name",
                ec.name,
                f"does not work with posterior '{cfg.posterior.name}' (it needs "
                f"{_needs(estimator_cls)}); the family supports {', '.join(supported)}",
                f"use one of those estimators, e.g. estimator={supported[0]}" if supported else "choose another family",
            )
        )


def _needs(estimator_cls: Any) -> str:
    needs = [
        what
        for flag, what in (
            ("needs_log_prob", "log q(z | x) of an arbitrary z"),
            ("needs_analytic_kl", "an analytic KL to the prior"),
        )
        if getattr(estimator_cls, flag, False)
    ]
    return " and ".join(needs) or "nothing the family lacks"


def _check_train(problems: list[Problem], tc: DictConfig) -> None:
    _int_at_least(
        problems,
        "train.epochs",
        tc.epochs,
        0,
        "0 evaluates the initial model; null: the schedule's length",
        optional=True,
    )
    if tc.get("optimizer") is not None and tc.optimizer not in OPTIMIZERS:
        problems.append(
            Problem(
                "train.optimizer",
                tc.optimizer,
                f"one of {', '.join(OPTIMIZERS)}",
                _did_you_mean(str(tc.optimizer), OPTIMIZERS),
            )
        )
    _int_at_least(problems, "train.batch_size", tc.batch_size, 1, "examples per step")
    _positive(problems, "train.lr", tc.lr, "Adam's learning rate, e.g. 1e-3")
    _positive(problems, "train.eps", tc.eps, "Adam's epsilon, e.g. 1e-4")
    if tc.schedule is not None:
        _registered(problems, "train.schedule", tc.schedule, SCHEDULES)
    _int_at_least(problems, "train.max_steps", tc.max_steps, 1, "null: no limit", optional=True)
    _int_at_least(problems, "train.kl_warmup_epochs", tc.kl_warmup_epochs, 0, "0: no warm-up")
    _int_at_least(
        problems,
        "train.early_stopping_patience",
        tc.early_stopping_patience,
        1,
        "null: never stop early",
        optional=True,
    )
    betas = list(tc.betas)
    if len(betas) != 2 or any(isinstance(b, bool) or not isinstance(b, (int, float)) or not 0 <= b < 1 for b in betas):
        problems.append(
            Problem("train.betas", betas, "must be two numbers in [0, 1)", "Adam's (beta1, beta2), e.g. [0.9,0.999]")
        )
    if tc.grad_clip_norm is not None:
        _positive(problems, "train.grad_clip_norm", tc.grad_clip_norm, "null: no clipping")
    _int_at_least(problems, "train.valid_batch_size", tc.valid_batch_size, 1, "validation examples per batch")


def _check_eval(problems: list[Problem], ec: DictConfig) -> None:
    k_ok = _int_at_least(
        problems,
        "eval.nll_samples",
        ec.nll_samples,
        1,
        "K importance samples per test example (the published protocol uses 5000)",
    )
    chunk_ok = _int_at_least(problems, "eval.chunk_size", ec.chunk_size, 1, "importance samples per chunk, e.g. 500")
    if k_ok and chunk_ok and ec.chunk_size > ec.nll_samples:
        problems.append(
            Problem(
                "eval.chunk_size",
                ec.chunk_size,
                f"must be <= eval.nll_samples ({ec.nll_samples})",
                f"set eval.chunk_size={ec.nll_samples} (or a divisor of it)",
            )
        )
    _int_at_least(problems, "eval.batch_size", ec.batch_size, 1, "test examples per batch")
    _int_at_least(problems, "eval.elbo_samples", ec.elbo_samples, 1, "samples per example for the reported ELBO")
    _int_at_least(problems, "eval.active_units_examples", ec.active_units_examples, 1, "Burda et al. use 500")
    if not isinstance(ec.active_units_threshold, (int, float)) or ec.active_units_threshold < 0:
        problems.append(
            Problem(
                "eval.active_units_threshold",
                ec.active_units_threshold,
                "must be a number >= 0",
                "Burda et al. use 0.01",
            )
        )


def _check_ks(problems: list[Problem], key: str, ks: Any) -> None:
    if not ks:
        problems.append(Problem(key, list(ks or []), "must list at least one K", f"e.g. {key}=[1,5,50]"))
    for k in ks or []:
        _int_at_least(problems, key, k, 1, "every K is a number of samples >= 1")


def _check_gradients(problems: list[Problem], gc: DictConfig, model: DictConfig) -> None:
    model_name, exact_family = model.name, bool((model.kwargs or {}).get("exact_family", True))
    _int_at_least(problems, "gradients.num_draws", gc.num_draws, 2, "a variance needs at least 2 draws")
    _int_at_least(problems, "gradients.batch_size", gc.batch_size, 1, "examples per draw")
    _check_ks(problems, "gradients.num_samples", gc.num_samples)
    _registered(problems, "gradients.train_estimator", gc.train_estimator, ESTIMATORS)
    _int_at_least(problems, "gradients.train_num_samples", gc.train_num_samples, 1, "K while training")
    shift = gc.exact_posterior_shift
    if shift is not None:
        if isinstance(shift, bool) or not isinstance(shift, (int, float)) or not (math.isfinite(shift) and shift >= 0):
            problems.append(
                Problem("gradients.exact_posterior_shift", shift, "must be a number >= 0 or null", "e.g. 1.5")
            )
        if model_name != "linear_gaussian" or not exact_family:
            problems.append(
                Problem(
                    "gradients.exact_posterior_shift",
                    shift,
                    "needs model.name=linear_gaussian with model.kwargs.exact_family=true (its q contains the "
                    f"exact posterior), got model '{model_name}'"
                    + ("" if exact_family else " with exact_family=false"),
                    "set those, or gradients.exact_posterior_shift=null to measure at a trained point",
                )
            )


def _check_kernels(problems: list[Problem], kc: DictConfig) -> None:
    if kc.measure not in _MEASURES:
        problems.append(
            Problem(
                "kernels.measure",
                kc.measure,
                f"one of {', '.join(_MEASURES)}",
                _did_you_mean(str(kc.measure), _MEASURES),
            )
        )
    if kc.measure == "ops":
        for op in kc.ops:
            if op not in OP_BENCHMARKS:
                problems.append(
                    Problem(
                        "kernels.ops",
                        op,
                        f"not a benchmarked op; ops: {', '.join(OP_BENCHMARKS)}",
                        _did_you_mean(str(op), OP_BENCHMARKS),
                    )
                )
    for size in kc.sizes:
        if len(size) != 3 or any(isinstance(s, bool) or not isinstance(s, int) or s < 1 for s in size):
            problems.append(
                Problem(
                    "kernels.sizes",
                    list(size),
                    "every size is [K, B, D] of integers >= 1",
                    "e.g. kernels.sizes=[[64,256,64]]",
                )
            )
    for provider in kc.providers:
        if provider not in PROVIDERS:
            problems.append(
                Problem(
                    "kernels.providers",
                    provider,
                    f"one of {', '.join(PROVIDERS)}",
                    _did_you_mean(str(provider), PROVIDERS),
                )
            )
    _int_at_least(problems, "kernels.repeats", kc.repeats, 1, "timed repeats per provider")
    if kc.dtype not in _DTYPES:
        problems.append(
            Problem("kernels.dtype", kc.dtype, f"one of {', '.join(_DTYPES)}", _did_you_mean(str(kc.dtype), _DTYPES))
        )


def _check_exact(problems: list[Problem], xc: DictConfig) -> None:
    _int_at_least(problems, "exact.num_draws", xc.num_draws, 2, "a standard deviation needs at least 2 draws")
    _int_at_least(problems, "exact.num_examples", xc.num_examples, 1, "test examples")
    _check_ks(problems, "exact.num_samples", xc.num_samples)


def _check_device(problems: list[Problem], name: str) -> None:
    try:
        resolve_device(name)
    except ValueError as exc:
        reason = str(exc).split("; ")[0]  # resolve_device's "device='x' but <reason>; use ..."
        problems.append(
            Problem(
                "device",
                name,
                reason.split(" but ", 1)[-1],
                "use device=cpu, device=cuda on a machine with a GPU, or device=auto",
            )
        )


def check_cell(cell: ResolvedCell) -> list[Problem]:
    """Every problem of one resolved cell, for the sections its task reads."""
    cfg = cell.config
    problems: list[Problem] = []
    if cell.task not in TASKS:
        problems.append(
            Problem(
                "suite.task",
                cell.task,
                f"not a task; tasks: {', '.join(TASKS.names())}",
                _did_you_mean(cell.task, TASKS.names()),
            )
        )
        return problems
    _check_device(problems, cfg.device)
    if cell.task == "kernels":
        _check_kernels(problems, cfg.kernels)
        if cfg.kernels.measure == "ops":
            return problems
    _check_dataset(problems, cfg.dataset)
    _check_model(problems, cfg)
    _check_train(problems, cfg.train)
    if cell.task == "train_eval":
        _check_eval(problems, cfg.eval)
    elif cell.task == "gradients":
        _check_gradients(problems, cfg.gradients, cfg.model)
    elif cell.task == "exact":
        _check_exact(problems, cfg.exact)
    return problems


def validate_cells(cells: Sequence[ResolvedCell], results_dir: str | os.PathLike[str]) -> None:
    """Raise one ValidationError listing every problem of every cell and of the output folders.

    A problem shared by several cells is listed once, with the cells it concerns.
    """
    found: dict[str, tuple[Problem, list[str]]] = {}
    folders = check_writable("results_dir", results_dir)
    for problem in folders:
        found[str(problem)] = (problem, [])
    for cell in cells:
        problems = check_cell(cell)
        if not folders:  # a bad results_dir already explains why its subfolders fail
            problems += check_writable("results_dir (records)", records_dir(results_dir, cell.suite))
            problems += check_writable(
                "results_dir (checkpoints)", run_dir(results_dir, cell.suite, cell.cell, cell.config_hash)
            )
        for problem in problems:
            entry = found.setdefault(str(problem), (problem, []))
            if cell.cell not in entry[1]:
                entry[1].append(cell.cell)
    if found:
        every = {c.cell for c in cells}
        raise ValidationError([(p, [] if set(where) == every else where) for p, where in found.values()])
