"""run_suite: one record per (cell, seed), reuse of finished runs, force, seeding, errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from omegaconf import DictConfig, OmegaConf
from rich.console import Console

from vaebench.config import RunConfig
from vaebench.results import Metric, load_records
from vaebench.runner import TASKS, ResolvedCell, RunContext, TaskResult, adapters, resolve_device, run_suite

CALLS: list[tuple[str, int]] = []


def _echo(cell: ResolvedCell, ctx: RunContext) -> TaskResult:
    """A task that reports what it was given: the config's epochs and a seeded random draw."""
    CALLS.append((cell.cell, cell.seed))
    (ctx.run_dir / "checkpoints").mkdir(parents=True, exist_ok=True)
    marker = ctx.run_dir / "checkpoints" / "seen"
    resumed = marker.exists()
    marker.touch()
    draws = torch.rand(100).tolist()
    return TaskResult(
        metrics={"epochs": Metric(float(adapters.train_epochs(cell.config))), "draw": Metric.of(draws)},
        curves={"loss": [3.0, 2.0]},
        notes=["resumed"] if resumed else [],
        artifacts={},
    )


if "echo_test" not in TASKS:
    TASKS.register("echo_test", "test task: echoes its config")(_echo)

SUITE = {
    "name": "echo",
    "version": 3,
    "task": "echo_test",
    "seeds": [0, 1],
    "metrics": ["epochs", "draw"],
    "cells": [{"name": "a", "config": {"train": {"epochs": 2}}}, {"name": "b"}],
    "budgets": {"smoke": {}},
}


def cfg(tmp: Path, **top: object) -> DictConfig:
    c = OmegaConf.merge(
        OmegaConf.structured(RunConfig),
        # jobs=1: the echo_test task is registered in this process only, not in worker processes
        {"suite": SUITE, "budget": {"name": "smoke"}, "results_dir": str(tmp), "progress": False, "jobs": 1},
    )
    for k, v in top.items():
        OmegaConf.update(c, k, v)
    return c


def quiet() -> Console:
    return Console(file=open("/dev/null", "w"), width=200)


def test_one_record_per_cell_and_seed(tmp_path: Path) -> None:
    CALLS.clear()
    records = run_suite(cfg(tmp_path), console=quiet())
    assert sorted(CALLS) == [("a", 0), ("a", 1), ("b", 0), ("b", 1)]
    stored = load_records(tmp_path)
    assert len(stored) == 4 and {r.suite_version for r in stored} == {3}
    a0 = next(r for r in stored if (r.cell, r.seed) == ("a", 0))
    assert a0.metrics["epochs"].mean == 2 and a0.config["train"]["epochs"] == 2 and a0.curves == {"loss": [3.0, 2.0]}
    assert "suite" not in a0.config, "the suite is recorded by name and version, not as a copy"
    assert a0.environment["torch"] == torch.__version__ and a0.peak_memory_bytes and a0.wall_time_s >= 0
    # seeded: the same seed draws the same numbers in another cell, another seed does not
    draws = {(r.cell, r.seed): r.metrics["draw"].mean for r in records}
    assert draws["a", 0] == draws["b", 0] != draws["a", 1]
    # the runner writes records only; the CLI builds the leaderboard (tests/test_cli.py checks its tables)
    assert not (tmp_path / "tables").exists()


def test_finished_runs_are_reused_and_force_recomputes(tmp_path: Path) -> None:
    run_suite(cfg(tmp_path), console=quiet())
    CALLS.clear()
    run_suite(cfg(tmp_path), console=quiet())
    assert CALLS == [], "a run with a record for its config hash is not recomputed"
    run_suite(cfg(tmp_path, **{"train.epochs": 5}), ["train.epochs=5"], console=quiet())
    assert sorted(CALLS) == [("a", 0), ("a", 1), ("b", 0), ("b", 1)], "a changed config is a new run"
    CALLS.clear()
    records = run_suite(cfg(tmp_path, force=True, cells=["b"], seed=0), console=quiet())
    assert CALLS == [("b", 0)]
    assert "resumed" not in records[0].notes, "force starts from scratch (checkpoints removed)"
    assert len(load_records(tmp_path)) == 9  # append-only


def test_an_interrupted_run_finds_its_checkpoints(tmp_path: Path) -> None:
    run_dir = tmp_path / "runs" / "echo"
    records = run_suite(cfg(tmp_path, cells=["a"], seed=0), console=quiet())
    # simulate an interruption: the record is lost, the run folder (checkpoints) stays
    for p in (tmp_path / "records").rglob("*.json"):
        p.unlink()
    again = run_suite(cfg(tmp_path, cells=["a"], seed=0), console=quiet())
    assert records[0].config_hash == again[0].config_hash and "resumed" in again[0].notes
    assert len(list(run_dir.iterdir())) == 1


def test_devices() -> None:
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type in ("cpu", "cuda")
    with pytest.raises(ValueError, match="device='gpu' is not a device"):
        resolve_device("gpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA device is visible"):
            resolve_device("cuda")


def test_unknown_task_is_named(tmp_path: Path) -> None:
    c = cfg(tmp_path)
    c.suite.task = "nope"
    with pytest.raises(ValueError, match="suite.task='nope': not a task"):
        run_suite(c, console=quiet())


def test_a_record_is_found_by_its_protocol_not_by_sections_its_task_never_reads(tmp_path: Path) -> None:
    """An older record whose config differs only where train_eval never reads (kernels.ops grew an
    op) is still this run; one that differs in what is computed (train.epochs) is not."""
    suite = {
        "name": "t_identity",
        "task": "train_eval",
        "common": {
            "dataset": {"name": "digits8", "train_size": 40, "test_size": 8},
            "model": {"name": "mlp_burda", "kwargs": {"hidden": [8], "latent_dim": 2}},
            "train": {"epochs": 1, "batch_size": 20},
            "eval": {"nll_samples": 10, "chunk_size": 10, "active_units_examples": 8, "batch_size": 8},
        },
        "seeds": [0],
        "cells": [{"name": "diagonal", "config": {"posterior": {"name": "diagonal"}}}],
        "budgets": {"smoke": {}},
    }
    c = OmegaConf.merge(
        OmegaConf.structured(RunConfig),
        {"suite": suite, "budget": {"name": "smoke"}, "results_dir": str(tmp_path), "progress": False, "jobs": 1},
    )
    (first,) = run_suite(c, console=quiet())
    (path,) = sorted((tmp_path / "records" / "t_identity").glob("*.json"))
    stored = json.loads(path.read_text())
    # as if written before the other ops existed: another config, so another config hash
    stored["config"]["kernels"]["ops"] = ["reparameterize"]
    stored["config_hash"] = "0" * 64
    path.unlink()
    path = path.with_name("__".join(["diagonal", "0" * 12, *path.name.split("__")[2:]]))
    path.write_text(json.dumps(stored))
    (again,) = run_suite(c, console=quiet())
    assert again.wall_time_s == first.wall_time_s  # the stored record, not a new run
    stored["config"]["train"]["epochs"] = 2  # a different protocol: the run is not finished
    path.write_text(json.dumps(stored))
    (third,) = run_suite(c, console=quiet())
    assert third.wall_time_s != first.wall_time_s
    assert len(list((tmp_path / "records" / "t_identity").glob("*.json"))) == 2
