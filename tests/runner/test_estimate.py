"""Time estimates of --dry-run: from earlier records of the same cell, scaled by work units."""

from __future__ import annotations

from pathlib import Path

import pytest
from omegaconf import OmegaConf

from vaebench.config import RunConfig
from vaebench.results import RunRecord
from vaebench.runner import resolve_cells
from vaebench.runner.estimate import estimate_seconds, work_units

SUITE = {
    "name": "e",
    "version": 1,
    "task": "train_eval",
    "seeds": [0],
    "common": {
        "dataset": {"name": "digits8", "train_size": 100, "test_size": 10},
        "estimator": {"name": "iwae"},
        "eval": {"nll_samples": 10, "chunk_size": 10},
    },
    "cells": [{"name": "a"}],
    "budgets": {"smoke": {}, "paper": {"config": {"train": {"epochs": 30}}}},
}


def cell(budget: str = "smoke", **keys: object):
    cfg = OmegaConf.merge(OmegaConf.structured(RunConfig), {"suite": SUITE, "budget": {"name": budget}})
    for k, v in keys.items():
        OmegaConf.update(cfg, k, v)
    (c,) = resolve_cells(cfg, [f"{k}=x" for k in keys])
    return c


def record_of(c, seconds: float, config_hash: str | None = None) -> RunRecord:
    return RunRecord(
        suite=c.suite,
        suite_version=1,
        cell=c.cell,
        budget=c.budget,
        seed=0,
        config=c.plain_config(),
        config_hash=config_hash or c.config_hash,
        wall_time_s=seconds,
    )


def test_work_units_count_training_and_evaluation() -> None:
    plain = cell(**{"train.epochs": 4, "estimator.num_samples": 5, "eval.nll_samples": 50}).plain_config()
    assert work_units(plain) == 4 * 100 * 5 * 3 + 10 * 50  # a training step counted as 3 forward passes
    plain["dataset"]["train_size"] = None  # the whole split: the card's size
    from vaebench.datasets import card

    assert work_units(plain) == 4 * card("digits8").sizes["train"] * 5 * 3 + 10 * 50


def test_the_same_config_is_its_own_estimate_then_scaled_from_another_budget(tmp_path: Path) -> None:
    smoke, paper = cell("smoke"), cell("paper")
    assert estimate_seconds(smoke, []).seconds is None
    assert estimate_seconds(smoke, [record_of(smoke, 7.0)]).seconds == 7.0
    est = estimate_seconds(paper, [record_of(smoke, 7.0)])
    ratio = work_units(paper.plain_config()) / work_units(smoke.plain_config())
    assert est.seconds == pytest.approx(7.0 * ratio) and ratio > 2 and "scaled by work units" in est.basis
    other_cell = record_of(smoke, 99.0)
    other_cell.cell = "b"
    assert estimate_seconds(paper, [other_cell]).seconds is None
