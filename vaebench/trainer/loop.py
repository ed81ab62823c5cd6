"""The training loop: `Trainer` runs epochs of optimizer steps on a model with an estimator,
under one `TrainSection`, with per-epoch curves, validation, early stopping, atomic checkpoints
with exact resume, and non-finite detection."""

from __future__ import annotations

import copy
import math
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from ..config import TrainSection
from ..evaluation.batching import Data, iter_batches, num_examples
from ..evaluation.model_contract import model_dtype
from .callback import Callback
from .checkpoint import (
    CHECKPOINT_VERSION,
    capture_rng,
    check_resumable,
    data_state,
    fingerprint,
    load_checkpoint,
    load_data_state,
    restore_rng,
    save_checkpoint,
)
from .convergence import ConvergenceRule, EarlyStopping
from .nonfinite import NonFiniteTrainingError, diagnose_nonfinite
from .optimizer import OPTIMIZERS, build_optimizer
from .result import TrainResult
from .schedules import kl_warmup_weight, lr_schedule, resolve_epochs

__all__ = ["Trainer", "check_train_section"]

# The shuffle seed of an epoch is seed * SHUFFLE_SEED_STRIDE + epoch: a prime larger than any
# epoch count, so that no two (seed, epoch) pairs share a shuffle (and a resumed epoch reshuffles alike).
SHUFFLE_SEED_STRIDE = 1_000_003
# The validation draws are seeded seed + VALID_SEED_STRIDE, the same every epoch (common random
# numbers for early stopping and the convergence rule); a prime offset keeps them apart from the
# run's own seed and from the shuffle seeds.
VALID_SEED_STRIDE = 7919

_CURVES = ("epoch", "steps", "train_bound", "valid_bound", "lr", "kl_weight", "seconds", "examples_per_second")
# What a checkpoint stores of the early-stopping state (EarlyStopping's fields, by these names).
_EARLY_STOPPING_STATE = ("best_valid", "best_epoch", "bad_epochs", "stopped_early")
# Checkpoints reach the disk at most this often (and always at the end, on an interrupt or an
# error): writing last.pt and best.pt after every epoch was ~10% of an epoch of the iaf quick
# cells (4,000 digits, batch 100; two torch.save + fsync of ~13 ms against ~240 ms of steps,
# measured). An epoch boundary not yet on disk is kept in memory (a ~1 ms copy) and written
# when the run stops for any reason Python sees; a killed process loses at most this much work.
CHECKPOINT_INTERVAL_S = 30.0


def check_train_section(config: TrainSection) -> None:
    """Raise a ValueError naming the first option of `config` the trainer cannot run with.

    The runner checks the same section, every problem at once, before any work
    (vaebench.runner.validate); this is the trainer's own guard for Python callers.
    """
    epochs = resolve_epochs(config.epochs, config.schedule)  # an unknown schedule: UnknownNameError naming it
    for name, ok, want in (
        ("epochs", epochs >= 1, ">= 1 (or None: the schedule's length)"),
        ("batch_size", config.batch_size >= 1, ">= 1"),
        ("lr", config.lr > 0, "> 0"),
        ("eps", config.eps > 0, "> 0"),
        ("betas", len(config.betas) == 2 and all(0 <= b < 1 for b in config.betas), "two numbers in [0, 1)"),
        ("max_steps", config.max_steps is None or config.max_steps >= 1, ">= 1 or None"),
        ("kl_warmup_epochs", config.kl_warmup_epochs >= 0, ">= 0"),
        (
            "early_stopping_patience",
            config.early_stopping_patience is None or config.early_stopping_patience >= 1,
            ">= 1 or None",
        ),
        ("grad_clip_norm", config.grad_clip_norm is None or config.grad_clip_norm > 0, "> 0 or None"),
        ("valid_batch_size", config.valid_batch_size >= 1, ">= 1"),
        ("optimizer", config.optimizer in OPTIMIZERS, f"one of {', '.join(OPTIMIZERS)}"),
        ("convergence_window", config.convergence_window >= 1, ">= 1"),
        ("convergence_tol", config.convergence_tol > 0, "> 0"),
    ):
        if not ok:
            raise ValueError(f"train.{name} must be {want}, got {getattr(config, name)!r}")


class Trainer:
    """Trains `model` with `estimator` (returns an Estimate with `bound` and `surrogate`) under
    `config` (the run's train section, taken whole; None: its defaults) and `seed`.

    Checkpoints go to `checkpoint_dir/last.pt` (and the best model so far to `best.pt`), written
    atomically, at most every `checkpoint_interval_s` seconds at an epoch's end, and always at
    the end of training, on Ctrl-C and on an error: the last epoch boundary is kept in memory
    until then, so only a killed process can lose work (at most the interval). Constructing a
    Trainer on a folder with a checkpoint resumes it: model, optimizer, RNG states (torch CPU/CUDA, numpy, random), the
    data's own RNG state where it has `state_dict`, epoch, step, curves and early-stopping
    state, so the resumed run matches an uninterrupted one draw for draw. Data that draws its
    own random numbers (dynamic binarization) resumes exactly only when it (or the dataset a
    Subset wraps) has `state_dict()`/`load_state_dict()`; otherwise its draws restart from its
    seed. A finished run (all epochs, early stop or max_steps) is loaded, not recomputed.

    A non-finite loss or gradient raises `NonFiniteTrainingError` naming the step, the first
    bad parameter/module and the estimator term; the last checkpoint stays the good one.
    """

    def __init__(
        self,
        model: nn.Module,
        estimator: Callable[[nn.Module, Tensor], Any],
        train_data: Data,
        valid_data: Data | None = None,
        config: TrainSection | None = None,
        *,
        seed: int = 0,
        checkpoint_dir: str | os.PathLike[str] | None = None,
        device: torch.device | str | None = None,
        progress: bool = True,
        callbacks: Sequence[Callback] = (),
        checkpoint_interval_s: float = CHECKPOINT_INTERVAL_S,
    ) -> None:
        self.config = config if config is not None else TrainSection()
        check_train_section(self.config)
        self.seed = seed
        self.epochs = resolve_epochs(self.config.epochs, self.config.schedule)
        self.schedule = lr_schedule(self.config.schedule)
        n = num_examples(train_data)
        if n is None or not (isinstance(train_data, Tensor) or hasattr(train_data, "__getitem__")):
            raise TypeError(
                "train_data must be a tensor (N, *event) or a map-style Dataset with a length "
                f"(shuffled by index each epoch), got {type(train_data).__name__}"
            )
        if n == 0:
            raise ValueError("train_data is empty")
        if self.config.early_stopping_patience is not None and valid_data is None:
            raise ValueError("early_stopping_patience needs valid_data (the bound it watches); pass valid_data")
        if self.config.kl_warmup_epochs > 0 and not hasattr(estimator, "kl_weight"):
            raise ValueError(
                f"kl_warmup_epochs={self.config.kl_warmup_epochs} needs an estimator with a settable "
                f"`kl_weight` attribute (the ELBO's beta); {type(estimator).__name__} has none: "
                "use the 'elbo' estimator or set kl_warmup_epochs=0"
            )
        self.device = torch.device(device) if device is not None else _param_device(model)
        self.model = model.to(self.device)
        self.estimator = estimator
        self.train_data, self.valid_data, self.num_train = train_data, valid_data, n
        self.progress, self.callbacks = progress, list(callbacks)
        self.optimizer = build_optimizer(self.model.parameters(), self.config)
        self.checkpoint_dir = Path(checkpoint_dir) if checkpoint_dir is not None else None
        self.epoch = 0  # completed epochs
        self.step = 0  # completed optimizer steps
        self.curves: dict[str, list[float]] = {k: [] for k in _CURVES}
        self.early = EarlyStopping(self.config.early_stopping_patience)
        self.finished = False
        self.seconds = 0.0
        self.resumed_from: int | None = None
        self._fresh = True
        self._best_in_memory: dict[str, Any] | None = None  # {model, epoch, valid_bound}, as best.pt
        self._best_on_disk = True  # best.pt holds the best model kept so far (or there is none)
        self.checkpoint_interval_s = checkpoint_interval_s
        self._saved_at = time.monotonic()  # the first save waits an interval too
        self._unsaved: dict[str, Any] | None = None  # the last epoch boundary not yet on disk
        if self.checkpoint_dir is not None:
            self._resume()

    # ---- checkpoints -----------------------------------------------------------------------

    @property
    def last_path(self) -> Path | None:
        return None if self.checkpoint_dir is None else self.checkpoint_dir / "last.pt"

    @property
    def best_path(self) -> Path | None:
        return None if self.checkpoint_dir is None else self.checkpoint_dir / "best.pt"

    def _fingerprint(self) -> dict[str, Any]:
        return fingerprint(self.config, self.seed, self.estimator, self.model, self.num_train)

    def _state(self) -> dict[str, Any]:
        return {
            "version": CHECKPOINT_VERSION,
            "fingerprint": self._fingerprint(),
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "rng": capture_rng([self.device]),
            "data": data_state(self.train_data),
            "epoch": self.epoch,
            "step": self.step,
            "curves": self.curves,
            **{k: getattr(self.early, k) for k in _EARLY_STOPPING_STATE},
            "finished": self.finished,
            "seconds": self.seconds,
        }

    def _resume(self) -> None:
        assert self.last_path is not None  # called only with a checkpoint_dir
        loaded = load_checkpoint(self.last_path, map_location=self.device)
        if loaded is None:
            return
        state = check_resumable(loaded, self.last_path, self._fingerprint())
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        restore_rng(state["rng"])
        load_data_state(self.train_data, state["data"])
        for k in ("epoch", "step", "curves", "seconds"):
            setattr(self, k, state[k])
        for k in _EARLY_STOPPING_STATE:
            setattr(self.early, k, state[k])
        self.finished = state["finished"] and (self.early.stopped_early or self._done())
        self.resumed_from = self.epoch
        self._fresh = False

    def _done(self) -> bool:
        cap = self.config.max_steps
        return self.epoch >= self.epochs or (cap is not None and self.step >= cap)

    def _save(self) -> None:
        """At an epoch's end: write the checkpoint if the interval has passed or training is
        over, else keep this epoch boundary in memory for `_flush`."""
        if self.last_path is None:
            return
        if self.finished or time.monotonic() - self._saved_at >= self.checkpoint_interval_s:
            self._write(self._state())
        else:
            # a deep copy: state_dict() and the curves are references to what the next epoch changes
            self._unsaved = copy.deepcopy(self._state())

    def _write(self, state: dict[str, Any]) -> None:
        assert self.last_path is not None and self.best_path is not None  # called with a checkpoint_dir
        if not self._best_on_disk and self._best_in_memory is not None:
            # best.pt first: a last.pt on disk never names a best epoch that best.pt lacks
            save_checkpoint(self._best_in_memory, self.best_path)
            self._best_on_disk = True
        save_checkpoint(state, self.last_path)
        self._saved_at, self._unsaved = time.monotonic(), None

    def _flush(self) -> None:
        """Write the epoch boundary kept in memory (on an interrupt or an error)."""
        if self._unsaved is not None:
            self._write(self._unsaved)

    # ---- the loop --------------------------------------------------------------------------

    def fit(self) -> TrainResult:
        """Train until `epochs`, `max_steps` or early stopping; return the curves."""
        if self._fresh:
            torch.manual_seed(self.seed)
            self._fresh = False
        self.finished = self.finished or self._done()
        with tqdm(
            total=self.epochs,
            initial=min(self.epoch, self.epochs),
            desc="epochs",
            unit="ep",
            disable=not self.progress,
        ) as bar:
            try:
                while not self.finished:
                    record = self._run_epoch()
                    bar.update(1)
                    bar.set_postfix(train=f"{record['train_bound']:.3f}", valid=f"{record['valid_bound']:.3f}")
            except BaseException:  # Ctrl-C or an error mid-epoch: the last epoch boundary goes to disk
                self._flush()
                raise
        return self._finish()

    def _run_epoch(self) -> dict[str, float]:
        cfg = self.config
        epoch = self.epoch
        lr = cfg.lr * self.schedule.factor(epoch)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        # The order is a function of (seed, epoch) alone, so a resumed epoch shuffles the same.
        g = torch.Generator().manual_seed(self.seed * SHUFFLE_SEED_STRIDE + epoch)
        order = torch.randperm(self.num_train, generator=g)
        num_batches = math.ceil(self.num_train / cfg.batch_size)
        dtype = model_dtype(self.model)
        t0 = time.perf_counter()
        total, count, beta = torch.zeros((), dtype=torch.float64, device=self.device), 0, 1.0
        self.model.train()
        batches = iter_batches(self.train_data, cfg.batch_size, indices=order, device=self.device, dtype=dtype)
        for i, x in enumerate(
            tqdm(batches, total=num_batches, desc=f"epoch {epoch}", leave=False, disable=not self.progress)
        ):
            if cfg.kl_warmup_epochs > 0:
                beta = kl_warmup_weight(epoch + i / num_batches, cfg.kl_warmup_epochs)
                self.estimator.kl_weight = beta  # type: ignore[attr-defined]  # warm-up needs an ELBO-family estimator
            total += self._train_step(x, epoch)
            count += x.shape[0]
            if cfg.max_steps is not None and self.step >= cfg.max_steps:
                break
        if cfg.kl_warmup_epochs > 0:
            self.estimator.kl_weight = 1.0  # type: ignore[attr-defined]  # validation reports the true bound
        valid = self._valid_bound() if self.valid_data is not None else math.nan
        if cfg.kl_warmup_epochs > 0:
            self.estimator.kl_weight = beta  # type: ignore[attr-defined]  # (kl_weight: the ELBO family's, as above)
        seconds = time.perf_counter() - t0
        self.epoch += 1
        self.seconds += seconds
        record = {
            "epoch": float(self.epoch),
            "steps": float(self.step),
            "train_bound": total.item() / max(count, 1),
            "valid_bound": valid,
            "lr": lr,
            "kl_weight": beta,
            "seconds": seconds,
            "examples_per_second": count / seconds if seconds > 0 else math.inf,
        }
        for k, v in record.items():
            self.curves[k].append(v)
        if self.early.update(valid, self.epoch):
            self._keep_best(valid)
        self.finished = self.early.stopped_early or self._done()
        self._save()
        for cb in self.callbacks:
            cb.on_epoch_end(self, record)
        return record

    def _train_step(self, x: Tensor, epoch: int) -> Tensor:
        """One optimizer step; returns the batch's summed bound as a 0-dim tensor (no sync)."""
        rng = capture_rng([self.device], torch_only=True)  # for replaying this step if it goes non-finite
        est = self.estimator(self.model, x)
        loss = est.surrogate
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        # One device sync per step checks the loss and every gradient before the update: one
        # multi-tensor norm pass and one isfinite over the stacked norms (a norm is finite iff
        # every entry is, or it overflowed, which the exact per-tensor check then sorts out).
        # isfinite per tensor was 17% of a batch-100 CPU step, one isfinite per norm 4% (measured).
        grads = [p.grad for p in self.model.parameters() if p.grad is not None]
        norms = torch._foreach_norm(grads) if grads else []
        if not bool(torch.isfinite(torch.stack([loss.detach().reshape(()), *norms])).all()):
            flags = torch.stack([torch.isfinite(loss.detach()).all(), *(torch.isfinite(g).all() for g in grads)])
            if not bool(flags[0]):
                raise self._nonfinite("loss", x, rng, epoch, f"{loss.item()}", getattr(est, "components", None))
            if not bool(flags.all()):
                raise self._nonfinite("gradient", x, rng, epoch, "NaN or inf")
        if self.config.grad_clip_norm is not None:
            nn.utils.clip_grad_norm_(self.model.parameters(), self.config.grad_clip_norm)
        self.optimizer.step()
        self.step += 1
        if self.callbacks:
            value = loss.item()
            for cb in self.callbacks:
                cb.on_step_end(self, self.step, value)
        return est.bound.detach().sum()

    def _nonfinite(
        self, kind: str, x: Tensor, rng: dict[str, Any], epoch: int, value: str, components: Any = None
    ) -> NonFiniteTrainingError:
        self._flush()  # the good checkpoint the message names is on disk before it is named
        note = (
            f"the last good checkpoint is {self.last_path} (epoch {self.epoch})"
            if self.last_path is not None and self.last_path.exists()
            else ""
        )
        return diagnose_nonfinite(
            kind,
            self.model,
            self.estimator,
            x,
            replay=lambda: restore_rng(rng),
            step=self.step,
            epoch=epoch,
            value=value,
            checkpoint_note=note,
            components=components,
        )

    @torch.no_grad()
    def _valid_bound(self) -> float:
        """Mean of the estimator's bound over the validation data (eval mode, no gradients)."""
        assert self.valid_data is not None  # called only with validation data
        self.model.eval()
        total, count = 0.0, 0
        # Validation draws must not move the training RNG stream: resumed runs stay exact.
        with torch.random.fork_rng(devices=[self.device] if self.device.type == "cuda" else []):
            # The same draws every epoch (common random numbers): epoch-to-epoch changes of the
            # bound are then the model's, not the noise's, which early stopping and the
            # convergence rule compare.
            torch.manual_seed(self.seed + VALID_SEED_STRIDE)
            for x in iter_batches(
                self.valid_data, self.config.valid_batch_size, device=self.device, dtype=model_dtype(self.model)
            ):
                total += self.estimator(self.model, x).bound.sum().item()
                count += x.shape[0]
        self.model.train()
        if count == 0:
            raise ValueError("valid_data is empty")
        return total / count

    def _keep_best(self, valid: float) -> None:
        """Keep the model of a new best validation bound in memory; best.pt gets it with the
        next checkpoint written (`_write`)."""
        self._best_in_memory = {
            "model": {k: v.detach().clone() for k, v in self.model.state_dict().items()},
            "epoch": self.epoch,
            "valid_bound": valid,
        }
        self._best_on_disk = self.best_path is None

    def _finish(self) -> TrainResult:
        cfg, early = self.config, self.early
        if cfg.early_stopping_patience is not None and early.best_epoch is not None:
            # in memory if this process found it, else best.pt (a resumed run that did not improve)
            best = self._best_in_memory
            if best is None and self.best_path is not None:
                best = load_checkpoint(self.best_path, map_location=self.device)
            if best is not None:
                self.model.load_state_dict(best["model"])
        return TrainResult(
            curves={k: list(v) for k, v in self.curves.items()},
            epochs=self.epoch,
            steps=self.step,
            seconds=self.seconds,
            best_epoch=early.best_epoch,
            best_valid_bound=None if early.best_epoch is None else early.best_valid,
            stopped_early=early.stopped_early,
            resumed_from=self.resumed_from,
            checkpoint=None if self.last_path is None else str(self.last_path),
            convergence=ConvergenceRule(cfg.convergence_window, cfg.convergence_tol).check(
                self.curves["valid_bound"], stopped_early=early.stopped_early
            ),
        )


def _param_device(model: nn.Module) -> torch.device:
    p = next(model.parameters(), None)
    return p.device if p is not None else torch.device("cpu")
