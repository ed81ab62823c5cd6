"""Checkpoints written atomically (temporary file + os.replace) and read back safely."""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..atomic import atomic_write
from ..errors import CheckpointError

__all__ = ["CheckpointError", "capture_rng", "load_checkpoint", "restore_rng", "save_checkpoint"]


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


def capture_rng(devices: list[torch.device] | None = None) -> dict[str, Any]:
    """Every RNG state a training step may draw from: torch CPU, CUDA devices, numpy, random.

    Stored as tensors, lists and ints so that `torch.load(weights_only=True)` reads them.
    """
    legacy = np.random.get_state(legacy=True)
    assert isinstance(legacy, tuple)  # legacy=True gives the (kind, keys, pos, has_gauss, cached) tuple
    kind, keys, pos, has_gauss, cached = legacy
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss), float(cached)],
        "python": random.getstate(),
        "cuda": {},
    }
    for d in devices or []:
        if d.type == "cuda":
            state["cuda"][str(d)] = torch.cuda.get_rng_state(d)
    return state


def restore_rng(state: dict[str, Any]) -> None:
    """Put back the RNG states that `capture_rng` took."""
    torch.set_rng_state(state["torch"].cpu())
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    for name, s in state.get("cuda", {}).items():
        torch.cuda.set_rng_state(s.cpu(), torch.device(name))
