"""Resolving a composed config into runs: layer precedence, cells, seeds, hashes, errors."""

from __future__ import annotations

import pytest
from omegaconf import DictConfig, OmegaConf

from vaebench.config import RunConfig
from vaebench.runner.resolve import ConfigError, config_hash, resolve_cells, user_keys

SUITE = {
    "name": "t",
    "version": 1,
    "task": "train_eval",
    "seeds": [0, 1],
    "common": {"dataset": {"name": "digits8"}, "train": {"epochs": 2}},
    "cells": [
        {"name": "a", "config": {"posterior": {"name": "planar", "kwargs": {"num_flows": 2}}}},
        {"name": "b", "config": {"train": {"epochs": 7}}},
    ],
    "budgets": {
        "smoke": {"cells": ["a"], "seeds": [5], "config": {"train": {"epochs": 1}}},
        "quick": {"config": {"eval": {"nll_samples": 100}}},
    },
}


def composed(budget: str = "quick", **top: object) -> DictConfig:
    cfg = OmegaConf.merge(OmegaConf.structured(RunConfig), {"suite": SUITE})
    cfg.budget.name = budget
    for k, v in top.items():
        OmegaConf.update(cfg, k, v, merge=isinstance(v, dict))
    return cfg


def test_layers_apply_in_order() -> None:
    cells = {(c.cell, c.seed): c for c in resolve_cells(composed())}
    assert set(cells) == {("a", 0), ("a", 1), ("b", 0), ("b", 1)}
    a = cells["a", 0].config
    assert a.dataset.name == "digits8" and a.train.epochs == 2 and a.eval.nll_samples == 100
    assert a.posterior.name == "planar" and a.posterior.kwargs.num_flows == 2
    assert cells["b", 0].config.train.epochs == 7  # the cell wins over common
    smoke = resolve_cells(composed("smoke"))
    assert [(c.cell, c.seed, c.config.train.epochs) for c in smoke] == [("a", 5, 1)]


def test_the_command_line_wins_over_the_suite() -> None:
    cfg = composed(**{"train.epochs": 3, "posterior": {"name": "iaf", "kwargs": {}}})
    cells = resolve_cells(cfg, ["train.epochs=3", "posterior=iaf", "seed=0"])
    assert all(c.config.train.epochs == 3 for c in cells)
    assert all(c.config.posterior.name == "iaf" and dict(c.config.posterior.kwargs) == {} for c in cells)


def test_seed_and_cells_select() -> None:
    cells = resolve_cells(composed(seed=9, cells=["b"]))
    assert [(c.cell, c.seed) for c in cells] == [("b", 9)]
    with pytest.raises(ConfigError, match="has no cell \\['zz'\\]; cells: \\['a', 'b'\\]"):
        resolve_cells(composed(cells=["zz"]))


def test_unknown_budget_and_bad_layers_are_named() -> None:
    with pytest.raises(ConfigError, match="no budget 'paper'; it defines \\['quick', 'smoke'\\]"):
        resolve_cells(composed("paper"))
    bad = dict(SUITE, cells=[{"name": "a", "config": {"train": {"epochz": 1}}}])
    cfg = OmegaConf.merge(composed(), {"suite": bad})
    with pytest.raises(ConfigError, match="cell 'a': key 'train.epochz'"):
        resolve_cells(cfg)
    bad = dict(SUITE, common={"train": {"epochs": "many"}})
    cfg = OmegaConf.merge(composed(), {"suite": bad})
    with pytest.raises(ConfigError, match="common layer: key 'train.epochs'"):
        resolve_cells(cfg)


def test_hash_changes_with_what_is_computed_only() -> None:
    base = {"train": {"epochs": 1}, "seed": 0, "results_dir": "x", "force": False}
    h = config_hash("t", 1, "a", base)
    assert h == config_hash("t", 1, "a", dict(base, results_dir="elsewhere", force=True))
    assert h != config_hash("t", 1, "a", dict(base, seed=1))
    assert h != config_hash("t", 2, "a", base)
    assert h != config_hash("t", 1, "a", dict(base, train={"epochs": 2}))


def test_user_keys_parse_hydra_overrides() -> None:
    assert user_keys(["suite=iaf", "train.epochs=3", "+posterior.kwargs.num_flows=4", "seed=1", "dataset=digits8"]) == [
        "train.epochs",
        "posterior.kwargs.num_flows",
        "dataset",
    ]
