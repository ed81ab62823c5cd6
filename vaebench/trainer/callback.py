"""Hooks into the training loop: `Callback` (override what you need)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the loop imports this module; the annotation only names it
    from .loop import Trainer

__all__ = ["Callback"]


class Callback:
    """Hooks into the loop; override what you need (all no-ops here)."""

    def on_step_end(self, trainer: Trainer, step: int, loss: float) -> None:
        """After each optimizer step (`step` counts from 1)."""

    def on_epoch_end(self, trainer: Trainer, record: dict[str, float]) -> None:
        """After each epoch's checkpoint is written; `record` is the epoch's curve entries."""
