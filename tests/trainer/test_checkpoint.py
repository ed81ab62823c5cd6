import random

import numpy as np
import pytest
import torch

from vaebench.trainer import (
    CheckpointError,
    capture_rng,
    load_checkpoint,
    restore_rng,
    save_checkpoint,
)


def test_round_trip_and_missing(tmp_path):
    path = tmp_path / "sub" / "last.pt"
    assert load_checkpoint(path) is None
    save_checkpoint({"a": torch.arange(3), "epoch": 2, "curves": {"x": [1.0]}}, path)
    state = load_checkpoint(path)
    assert state["epoch"] == 2 and torch.equal(state["a"], torch.arange(3))
    assert sorted(p.name for p in path.parent.iterdir()) == ["last.pt"]


def test_interrupted_write_leaves_the_old_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "last.pt"
    save_checkpoint({"epoch": 1}, path)

    def torn(obj, f):
        f.write(b"partial bytes")
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", torn)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint({"epoch": 2}, path)
    monkeypatch.undo()
    assert load_checkpoint(path)["epoch"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]  # no temporary file left


def test_corrupt_checkpoint_names_the_path(tmp_path):
    path = tmp_path / "last.pt"
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match=r"last\.pt.*delete it"):
        load_checkpoint(path)


def test_rng_capture_and_restore_reproduce_draws(tmp_path):
    state = capture_rng([torch.device("cpu")])
    save_checkpoint({"rng": state}, tmp_path / "r.pt")
    first = (torch.rand(3), np.random.rand(3), random.random())
    restore_rng(load_checkpoint(tmp_path / "r.pt")["rng"])  # through weights_only loading
    again = (torch.rand(3), np.random.rand(3), random.random())
    assert torch.equal(first[0], again[0]) and np.array_equal(first[1], again[1]) and first[2] == again[2]
