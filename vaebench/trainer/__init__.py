"""Training: the loop (`Trainer`, `train`) under the run's train section (`TrainSection`), with
atomic checkpoints and exact resume, named learning-rate schedules (the IWAE protocol's among
them), KL warm-up, early stopping, the convergence rule, and non-finite loss/gradient detection."""

import warnings

from ..config import TrainSection
from ..errors import NonFiniteError  # the one name for every NaN/inf error (vaebench.errors)
from .callback import Callback
from .checkpoint import (
    CheckpointError,
    capture_rng,
    load_checkpoint,
    restore_rng,
    save_checkpoint,
)
from .convergence import Convergence, ConvergenceRule, EarlyStopping
from .fit import train
from .loop import CHECKPOINT_INTERVAL_S, Trainer
from .nonfinite import (
    NonFiniteTrainingError,
    first_nonfinite_gradient,
    first_nonfinite_parameter,
)
from .optimizer import OPTIMIZERS, build_optimizer
from .result import TrainResult
from .schedules import (
    SCHEDULES,
    ConstantSchedule,
    IWAESchedule,
    LRSchedule,
    kl_warmup_weight,
    lr_schedule,
    resolve_epochs,
)

__all__ = [
    "CHECKPOINT_INTERVAL_S",
    "OPTIMIZERS",
    "SCHEDULES",
    "Callback",
    "CheckpointError",
    "ConstantSchedule",
    "Convergence",
    "ConvergenceRule",
    "EarlyStopping",
    "IWAESchedule",
    "LRSchedule",
    "NonFiniteError",
    "NonFiniteTrainingError",
    "TrainResult",
    "TrainSection",
    "Trainer",
    "build_optimizer",
    "capture_rng",
    "first_nonfinite_gradient",
    "first_nonfinite_parameter",
    "kl_warmup_weight",
    "load_checkpoint",
    "lr_schedule",
    "resolve_epochs",
    "restore_rng",
    "save_checkpoint",
    "train",
]


def __getattr__(name: str) -> object:
    # The trainer's options were a second dataclass, `TrainConfig`, with defaults of its own;
    # the trainer now takes the run's train section whole. The old name keeps working, with a
    # warning naming the new one (its defaults are the section's: batch_size 100, not 20).
    if name == "TrainConfig":
        warnings.warn(
            "vaebench.trainer.TrainConfig is now vaebench.config.TrainSection (also vaebench.trainer.TrainSection), "
            "the one train schema; its defaults are the run's (batch_size 100), and the seed is Trainer(seed=...)",
            DeprecationWarning,
            stacklevel=2,
        )
        return TrainSection
    raise AttributeError(f"module 'vaebench.trainer' has no attribute {name!r}")
