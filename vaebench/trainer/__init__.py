"""Training: the loop with atomic checkpoints and exact resume, named learning-rate schedules
(the IWAE protocol's among them), KL warm-up, and non-finite loss/gradient detection."""

from ..errors import NonFiniteError  # the one name for every NaN/inf error (vaebench.errors)
from .checkpoint import (
    CheckpointError,
    capture_rng,
    load_checkpoint,
    restore_rng,
    save_checkpoint,
)
from .convergence import Convergence, ConvergenceRule
from .nonfinite import (
    NonFiniteTrainingError,
    first_nonfinite_gradient,
    first_nonfinite_parameter,
)
from .schedules import (
    SCHEDULES,
    ConstantSchedule,
    IWAESchedule,
    LRSchedule,
    kl_warmup_weight,
    lr_schedule,
    resolve_epochs,
)
from .trainer import Callback, TrainConfig, Trainer, TrainResult, train

__all__ = [
    "SCHEDULES",
    "Callback",
    "CheckpointError",
    "ConstantSchedule",
    "Convergence",
    "ConvergenceRule",
    "IWAESchedule",
    "LRSchedule",
    "NonFiniteError",
    "NonFiniteTrainingError",
    "TrainConfig",
    "TrainResult",
    "Trainer",
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
