"""Checkpoints and resume: written atomically (temporary file + os.replace), read back safely,
checked against the run that reads them (its fingerprint), with every RNG state a step draws from.
"""

from __future__ import annotations

import dataclasses
import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..atomic import atomic_write
from ..config import TrainSection
from ..errors import CheckpointError
from .schedules import lr_schedule

__all__ = [
    "CHECKPOINT_VERSION",
    "CheckpointError",
    "capture_rng",
    "check_resumable",
    "data_state",
    "fingerprint",
    "load_checkpoint",
    "load_data_state",
    "restore_rng",
    "save_checkpoint",
]

CHECKPOINT_VERSION = 1
# Options a run may change and still resume: `epochs` and `max_steps` extend a finished run, and
# the convergence rule only judges the curve, so changing it never invalidates one.
_RESUMABLE_CHANGES = ("epochs", "max_steps", "convergence_window", "convergence_tol")


def save_checkpoint(state: dict[str, Any], path: str | os.PathLike[str]) -> Path:
    """Write `state` to `path` so that a reader sees the old file or the new one, never a torn one.

    The bytes go to a temporary file in the same folder, are flushed to disk (fsync), and the
    file is renamed over `path` with os.replace, which is atomic on POSIX and Windows.
    """
    return atomic_write(path, lambda fh: torch.save(state, fh))


def load_checkpoint(
    path: str | os.PathLike[str], map_location: torch.device | str | None = "cpu"
) -> dict[str, Any] | None:
    """The state saved at `path`, or None when there is none. Loaded with `weights_only=True`."""
    path = Path(path)
    if not path.exists():
        return None
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # a truncated or foreign file: say which and what to do
        first_line = str(e).strip().splitlines()[0] if str(e).strip() else ""
        raise CheckpointError(
            f"cannot read checkpoint {path} ({type(e).__name__}: {first_line}): it is truncated or "
            "not a vaebench checkpoint; delete it to start over"
        ) from e


def capture_rng(devices: list[torch.device] | None = None, *, torch_only: bool = False) -> dict[str, Any]:
    """Every RNG state a training step may draw from: torch CPU, CUDA devices, numpy, random.

    `torch_only`: torch's generators alone (what one step of a model draws from), for the
    per-step replay of a non-finite step: numpy's and Python's states were 90% of the capture's
    cost, 2% of a batch-100 CPU step (measured). Checkpoints take all of them.
    Stored as tensors, lists and ints so that `torch.load(weights_only=True)` reads them.
    """
    state: dict[str, Any] = {"torch": torch.get_rng_state(), "cuda": {}}
    if not torch_only:
        legacy = np.random.get_state(legacy=True)
        assert isinstance(legacy, tuple)  # legacy=True gives the (kind, keys, pos, has_gauss, cached) tuple
        kind, keys, pos, has_gauss, cached = legacy
        state["numpy"] = [kind, torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss), float(cached)]
        state["python"] = random.getstate()
    for d in devices or []:
        if d.type == "cuda":
            state["cuda"][str(d)] = torch.cuda.get_rng_state(d)
    return state


def restore_rng(state: dict[str, Any]) -> None:
    """Put back the RNG states that `capture_rng` took (torch's alone if that is all it took)."""
    torch.set_rng_state(state["torch"].cpu())
    if "numpy" in state:
        kind, keys, pos, has_gauss, cached = state["numpy"]
        np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    if "python" in state:
        py = state["python"]
        random.setstate((py[0], tuple(py[1]), py[2]))
    for name, s in state.get("cuda", {}).items():
        torch.cuda.set_rng_state(s.cpu(), torch.device(name))


def fingerprint(config: TrainSection, seed: int, estimator: Any, model: nn.Module, num_train: int) -> dict[str, Any]:
    """What a resumed run must share with the run that wrote the checkpoint: the train options
    (but `_RESUMABLE_CHANGES`), the seed, the estimator and K, the model's class and size, and
    the number of training examples."""
    d = {f.name: getattr(config, f.name) for f in dataclasses.fields(config) if f.name not in _RESUMABLE_CHANGES}
    d["seed"] = seed
    d["betas"] = list(config.betas)
    sched = lr_schedule(config.schedule)  # None and "constant" are the same schedule
    d["schedule"] = f"{sched.name}:{sorted(vars(sched).items())}"
    return {
        **d,
        "estimator": getattr(estimator, "name", type(estimator).__name__),
        "num_samples": int(getattr(estimator, "num_samples", 1)),
        "model": type(model).__name__,
        "num_parameters": sum(p.numel() for p in model.parameters()),
        "num_train": num_train,
    }


def check_resumable(state: Any, path: Path, expected: dict[str, Any]) -> dict[str, Any]:
    """`state` (loaded from `path`) if this run can resume it; CheckpointError naming why not.

    A file of another version, a damaged one, or one whose fingerprint differs from `expected`
    (the diff is listed key by key) is the user's data, not a bug: the message says to delete it.
    """
    if not isinstance(state, dict) or state.get("version") != CHECKPOINT_VERSION:
        found = state.get("version") if isinstance(state, dict) else f"a {type(state).__name__}"
        raise CheckpointError(
            f"{path} is not a vaebench checkpoint of version {CHECKPOINT_VERSION} (found {found!r}); "
            "delete it to start over"
        )
    missing = sorted({"fingerprint", "model", "optimizer", "rng"} - set(state))
    if missing:  # a foreign or hand-edited file: user data, not a bug
        raise CheckpointError(f"{path} is damaged (no {', '.join(missing)}); delete it to start over")
    old = state["fingerprint"]
    diff = [
        f"{k}: {old.get(k)!r} -> {expected.get(k)!r}"
        for k in sorted(set(old) | set(expected))
        if old.get(k) != expected.get(k)
    ]
    if diff:
        raise CheckpointError(
            f"{path} belongs to a different run ({'; '.join(diff)}); use another "
            "checkpoint_dir or delete this one to start over"
        )
    return state


def data_state(data: Any) -> Any:
    """The RNG state of the data (e.g. dynamic binarization), found through Subset wrappers."""
    while data is not None:
        if callable(getattr(data, "state_dict", None)) and callable(getattr(data, "load_state_dict", None)):
            return data.state_dict()
        data = getattr(data, "dataset", None)
    return None


def load_data_state(data: Any, state: Any) -> None:
    """Put back the data's RNG state that `data_state` took (nothing when it took none)."""
    if state is None:
        return
    while data is not None:
        if callable(getattr(data, "load_state_dict", None)):
            data.load_state_dict(state)
            return
        data = getattr(data, "dataset", None)
