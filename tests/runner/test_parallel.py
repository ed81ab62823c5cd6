"""jobs=: runs in worker processes give the records the sequential path gives."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
import torch
from omegaconf import DictConfig, OmegaConf
from rich.console import Console

from vaebench.config import RunConfig
from vaebench.errors import ConfigError
from vaebench.results import load_records
from vaebench.runner import run_suite
from vaebench.runner.parallel import JobPlan, plan_jobs

SUITE = {
    "name": "t_parallel",
    "task": "train_eval",
    "common": {
        "dataset": {"name": "digits8", "train_size": 40, "test_size": 8},
        "model": {"name": "mlp_burda", "kwargs": {"hidden": [16], "latent_dim": 3}},
        "estimator": {"name": "elbo_mc"},
        "train": {"epochs": 2, "batch_size": 20},
        "eval": {"nll_samples": 20, "chunk_size": 10, "active_units_examples": 20, "batch_size": 8},
    },
    "seeds": [0],
    "cells": [
        {"name": "diagonal", "config": {"posterior": {"name": "diagonal"}}},
        {"name": "planar", "config": {"posterior": {"name": "planar", "kwargs": {"num_flows": 2}}}},
    ],
    "budgets": {"smoke": {}},
}


def composed(tmp: Path, jobs: int | None) -> DictConfig:
    return OmegaConf.merge(
        OmegaConf.structured(RunConfig),
        {"suite": SUITE, "budget": {"name": "smoke"}, "results_dir": str(tmp), "progress": False, "jobs": jobs},
    )


def test_plan_uses_one_worker_per_core_on_a_cpu_and_one_process_on_a_gpu() -> None:
    assert plan_jobs(None, pending=9, device="cpu", cores=2) == JobPlan(2, 1)
    assert plan_jobs(None, pending=9, device="cpu", cores=16) == JobPlan(9, 1)  # never more than the runs
    assert plan_jobs(None, pending=2, device="cpu", cores=8) == JobPlan(2, 4)  # the cores are shared out
    assert plan_jobs(None, pending=9, device="cuda", cores=16).jobs == 1
    assert plan_jobs(4, pending=9, device="cuda", cores=16) == JobPlan(4, 4)  # asked for: obeyed
    assert plan_jobs(3, pending=1, device="cpu", cores=8).jobs == 1  # one run: no workers
    assert plan_jobs(None, pending=0, device="cpu", cores=8).jobs == 1


@pytest.mark.parametrize("jobs", [0, -2])
def test_jobs_below_one_is_a_config_error_naming_the_key(jobs: int) -> None:
    with pytest.raises(ConfigError, match=rf"jobs={jobs}: must be >= 1"):
        plan_jobs(jobs, pending=3, device="cpu")


def test_bad_jobs_fails_before_any_run(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="jobs=0"):
        run_suite(composed(tmp_path, 0), console=Console(file=io.StringIO()))
    assert not (tmp_path / "records").exists()


def test_worker_processes_write_the_records_the_sequential_path_writes(tmp_path: Path) -> None:
    sink = io.StringIO()
    parallel = run_suite(composed(tmp_path / "parallel", 2), console=Console(file=sink, width=200))
    assert "2 new run(s) in 2 worker processes, 1 torch thread(s) each" in sink.getvalue()
    assert sink.getvalue().count("finished ") == 2
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the workers' thread count: the same arithmetic, the same numbers
    try:
        sequential = run_suite(composed(tmp_path / "sequential", 1), console=Console(file=io.StringIO()))
    finally:
        torch.set_num_threads(threads)
    assert [(r.cell, r.seed) for r in parallel] == [("diagonal", 0), ("planar", 0)]  # the suite's order
    for p, s in zip(parallel, sequential, strict=True):
        assert p.config_hash == s.config_hash
        assert p.environment["torch_threads"] == 1
        assert p.per_example["nll"] == s.per_example["nll"]
        assert p.metrics["elbo"].mean == s.metrics["elbo"].mean
    # the workers wrote the records, and a second invocation finds them (nothing recomputed)
    assert len(load_records(tmp_path / "parallel", "t_parallel")) == 2
    sink = io.StringIO()
    again = run_suite(composed(tmp_path / "parallel", 2), console=Console(file=sink, width=200))
    assert "worker processes" not in sink.getvalue()
    assert [r.wall_time_s for r in again] == [r.wall_time_s for r in parallel]


def test_the_dry_run_estimate_schedules_the_runs_like_the_workers_do() -> None:
    from vaebench.runner.run import makespan

    assert makespan([3, 3, 2, 2, 2], 1) == 12
    assert makespan([3, 3, 2, 2, 2], 2) == 7  # 3|3, then 2 on each (5|5), then the last 2
    assert makespan([10, 1, 1, 1], 2) == 10  # one long run bounds the suite
    assert makespan([], 4) == 0
