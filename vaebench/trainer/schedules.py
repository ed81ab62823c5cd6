"""Learning-rate schedules by name (the IWAE protocol among them) and the KL warm-up weight."""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from typing import ClassVar

from ..registry import Registry

__all__ = [
    "DEFAULT_EPOCHS",
    "SCHEDULES",
    "ConstantSchedule",
    "IWAESchedule",
    "LRSchedule",
    "kl_warmup_weight",
    "lr_schedule",
    "resolve_epochs",
]


class LRSchedule(ABC):
    """A per-epoch multiplier of the base learning rate: lr(epoch) = base_lr * factor(epoch).

    A pure function of the epoch (no state), so a resumed run recomputes it exactly.
    """

    name: ClassVar[str]

    @abstractmethod
    def factor(self, epoch: int) -> float:
        """The multiplier for 0-based `epoch`."""

    @property
    def total_epochs(self) -> int | None:
        """The epochs the schedule is designed for, or None where it has no end."""
        return None


SCHEDULES: Registry[type[LRSchedule]] = Registry("lr schedule")


@SCHEDULES.register("constant", "the base learning rate throughout")
class ConstantSchedule(LRSchedule):
    name = "constant"

    def factor(self, epoch: int) -> float:
        return 1.0


@SCHEDULES.register("iwae", "Burda et al. 2015: 3^i epochs at lr * 10^(-i/7), i = 0..7 (3,280 epochs)")
class IWAESchedule(LRSchedule):
    """The IWAE protocol's schedule: stage i = 0..stages-1 lasts 3^i epochs at base_lr * 10^(-i/7).

        factor(epoch) = 10^(-i/7) for sum_{j<i} 3^j <= epoch < sum_{j<=i} 3^j,

    with base_lr = 1e-3 in the paper; 8 stages make (3^8 - 1) / 2 = 3,280 epochs. Past the
    last stage the last factor stays.

    References:
        Importance Weighted Autoencoders, Burda, Grosse, Salakhutdinov, 2015, arXiv:1509.00519.
    """

    name = "iwae"

    def __init__(self, stages: int = 8) -> None:
        if stages < 1:
            raise ValueError(f"IWAESchedule: stages must be >= 1, got {stages}")
        self.stages = stages

    def stage(self, epoch: int) -> int:
        """i, the stage that holds 0-based `epoch`."""
        if epoch < 0:
            raise ValueError(f"epoch must be >= 0, got {epoch}")
        # stage i starts at (3^i - 1) / 2
        i = math.floor(math.log(2 * epoch + 1, 3) + 1e-12)
        while (3 ** (i + 1) - 1) // 2 <= epoch:  # guard the float log at stage boundaries
            i += 1
        while (3**i - 1) // 2 > epoch:
            i -= 1
        return min(i, self.stages - 1)

    def factor(self, epoch: int) -> float:
        return 10.0 ** (-self.stage(epoch) / 7.0)

    @property
    def total_epochs(self) -> int:
        return (3**self.stages - 1) // 2


DEFAULT_EPOCHS = 10  # a schedule without a length (constant) and no epochs given


def resolve_epochs(epochs: int | None, schedule: str | LRSchedule | None) -> int:
    """The epochs a run trains: `epochs` when given, else the schedule's `total_epochs`
    (iwae: 3,280), else DEFAULT_EPOCHS. A budget that names `schedule: iwae` without epochs
    so runs the whole IWAE protocol."""
    if epochs is not None:
        return int(epochs)
    total = lr_schedule(schedule).total_epochs
    return DEFAULT_EPOCHS if total is None else int(total)


def lr_schedule(schedule: str | LRSchedule | None, **kwargs: object) -> LRSchedule:
    """A schedule object from its registry name (with constructor kwargs) or as given; None
    means "constant"."""
    if schedule is None:
        return ConstantSchedule()
    if isinstance(schedule, LRSchedule):
        return schedule
    return SCHEDULES.get(schedule)(**kwargs)


def kl_warmup_weight(epochs_done: float, warmup_epochs: float) -> float:
    """The KL weight beta in ELBO_beta = E_q[log p(x|z)] - beta KL, rising linearly to 1:

        beta = min(1, epochs_done / warmup_epochs)   (1 when warmup_epochs = 0),

    with `epochs_done` fractional (updated every step).

    References:
        Ladder Variational Autoencoders, Sønderby, Raiko, Maaløe, Sønderby, Winther, 2016,
        arXiv:1602.02282 (deterministic warm-up).
    """
    if warmup_epochs < 0:
        raise ValueError(f"kl_warmup_epochs must be >= 0, got {warmup_epochs}")
    if warmup_epochs == 0:
        return 1.0
    return min(1.0, max(0.0, epochs_done / warmup_epochs))
