"""The public entry point of training: `train()`, a Trainer built and fitted in one call."""

from __future__ import annotations

import dataclasses
import difflib
import os
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from ..config import TrainSection
from ..evaluation.batching import Data
from .callback import Callback
from .loop import CHECKPOINT_INTERVAL_S, Trainer
from .result import TrainResult

__all__ = ["train"]


def train(
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
    **options: Any,
) -> TrainResult:
    """Train `model` with `estimator`: `Trainer(...).fit()` in one call.

    `config` is the train section (`vaebench.config.TrainSection`, the one set of defaults);
    `options` replace some of its fields, `train(model, est, x, epochs=3, batch_size=20)`. With
    `checkpoint_dir`, an interrupted run resumes from its last epoch and a finished one returns
    at once; checkpoints reach the disk at most every `checkpoint_interval_s` seconds (and
    always at the end, on Ctrl-C and on an error).

    References:
        Importance Weighted Autoencoders, Burda, Grosse, Salakhutdinov, 2015, arXiv:1509.00519
        (Adam eps 1e-4, the "iwae" schedule).
        Adam: A Method for Stochastic Optimization, Kingma, Ba, 2014, arXiv:1412.6980.
    """
    section = config if config is not None else TrainSection()
    if options:
        fields = [f.name for f in dataclasses.fields(TrainSection)]
        unknown = sorted(set(options) - set(fields))
        if unknown:
            hints = [difflib.get_close_matches(name, fields, n=1) for name in unknown]
            close = [f"'{h[0]}'" for h in hints if h]
            raise TypeError(
                f"train() got option(s) {unknown} that are not train-section keys; keys: {', '.join(fields)}"
                + (f" (did you mean {', '.join(close)}?)" if close else "")
            )
        section = dataclasses.replace(section, **options)
    return Trainer(
        model,
        estimator,
        train_data,
        valid_data,
        section,
        seed=seed,
        checkpoint_dir=checkpoint_dir,
        device=device,
        progress=progress,
        callbacks=callbacks,
        checkpoint_interval_s=checkpoint_interval_s,
    ).fit()
