"""Whole-config validation: every problem of every cell at once, before any work starts."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from omegaconf import DictConfig, OmegaConf
from rich.console import Console

import vaebench.runner.run as run_module
from vaebench.config import RunConfig
from vaebench.runner import resolve_cells, run_suite
from vaebench.runner.validate import (
    ValidationError,
    check_cell,
    check_override_keys,
    check_writable,
    validate_cells,
)

SUITE = {
    "name": "v",
    "version": 1,
    "task": "train_eval",
    "seeds": [0],
    "common": {"dataset": {"name": "digits8"}, "model": {"name": "mlp_burda"}, "estimator": {"name": "elbo_mc"}},
    "cells": [
        {"name": "diag", "config": {"posterior": {"name": "diagonal"}}},
        {"name": "planar", "config": {"posterior": {"name": "planar", "kwargs": {"num_flows": 2}}}},
    ],
    "budgets": {"smoke": {}},
}


def composed(tmp: Path, **keys: object) -> DictConfig:
    cfg = OmegaConf.merge(
        OmegaConf.structured(RunConfig),
        {"suite": SUITE, "budget": {"name": "smoke"}, "results_dir": str(tmp), "progress": False, "jobs": 1},
    )
    for k, v in keys.items():
        OmegaConf.update(cfg, k, v, merge=False)
    return cfg


def problems_of(tmp: Path, **keys: object) -> dict[str, str]:
    """key -> message of every problem, over all cells."""
    out = {}
    for cell in resolve_cells(composed(tmp, **keys), [f"{k}=x" for k in keys if k.split(".")[0] != "results_dir"]):
        for p in check_cell(cell):
            out[p.key] = str(p)
    return out


def test_a_valid_config_has_no_problems(tmp_path: Path) -> None:
    cells = resolve_cells(composed(tmp_path))
    assert [check_cell(c) for c in cells] == [[], []]
    validate_cells(cells, tmp_path)  # does not raise


def test_every_problem_is_reported_at_once_naming_key_value_and_fix(tmp_path: Path) -> None:
    found = problems_of(
        tmp_path,
        **{
            "eval.nll_samples": 0,
            "eval.chunk_size": 0,
            "train.lr": -1.0,
            "train.schedule": "iwea",
            "dataset.train_size": 0,
        },
    )
    assert set(found) == {"eval.nll_samples", "eval.chunk_size", "train.lr", "train.schedule", "dataset.train_size"}
    assert found["eval.nll_samples"].startswith("eval.nll_samples=0: must be an integer >= 1")
    assert "did you mean 'iwae'" in found["train.schedule"]


def test_chunk_size_must_not_exceed_k(tmp_path: Path) -> None:
    found = problems_of(tmp_path, **{"eval.nll_samples": 10, "eval.chunk_size": 50})
    assert found == {
        "eval.chunk_size": "eval.chunk_size=50: must be <= eval.nll_samples (10); set eval.chunk_size=10 "
        "(or a divisor of it)"
    }


def test_estimator_family_combinations_come_from_the_registries(tmp_path: Path) -> None:
    from vaebench.posteriors import POSTERIORS

    cells = resolve_cells(composed(tmp_path, **{"estimator.name": "stl"}), ["estimator.name=stl"])
    by_cell = {c.cell: [p.key for p in check_cell(c)] for c in cells}
    assert by_cell == {"diag": [], "planar": ["estimator.name"]}  # planar has no log_prob(z)
    assert POSTERIORS.get("diagonal").has_log_prob and not POSTERIORS.get("planar").has_log_prob
    (elbo,) = [
        str(p)
        for c in resolve_cells(composed(tmp_path, **{"estimator.name": "elbo"}), ["estimator.name=e"])
        for p in check_cell(c)
    ]
    assert "analytic KL" in elbo and "planar" in elbo and "elbo_mc" in elbo


def test_estimator_constructor_rules_and_unknown_options(tmp_path: Path) -> None:
    found = problems_of(
        tmp_path,
        **{
            "estimator.name": "score_function",
            "estimator.num_samples": 1,
            "estimator.kwargs": {"baseline": "leave_one_out"},
            "posterior.kwargs": {"num_flowz": 2},
        },
    )
    assert "num_samples >= 2" in found["estimator"]
    assert "posterior.kwargs.num_flowz" in found and "did you mean 'num_flows'" in found["posterior.kwargs.num_flowz"]


def test_missing_dataset_without_download_names_the_files(tmp_path: Path) -> None:
    found = problems_of(
        tmp_path, **{"dataset.name": "mnist", "dataset.data_dir": str(tmp_path / "data"), "dataset.download": False}
    )
    msg = found["dataset.data_dir"]
    assert "train-images-idx3-ubyte.gz" in msg and str(tmp_path / "data" / "mnist") in msg and "download=true" in msg


def test_unavailable_device(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    found = problems_of(tmp_path, device="cuda")
    assert found["device"].startswith("device='cuda': no CUDA device is visible")


def test_folders_that_cannot_be_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    file = tmp_path / "file"
    file.write_text("x")
    (p,) = check_writable("results_dir", file)
    assert "is a file, not a folder" in str(p)
    (p,) = check_writable("results_dir", file / "below")
    assert "cannot be created" in str(p)
    assert check_writable("results_dir", tmp_path / "new" / "deeper") == []
    from vaebench.runner import validate

    monkeypatch.setattr(validate.os, "access", lambda path, mode: Path(path) != tmp_path)  # root ignores modes
    (p,) = check_writable("results_dir", tmp_path / "new")
    assert "not writable" in str(p) and str(tmp_path) in str(p)


def test_a_problem_shared_by_cells_is_listed_once_with_its_cells(tmp_path: Path) -> None:
    cells = resolve_cells(
        composed(tmp_path, **{"estimator.name": "stl", "eval.nll_samples": 0}),
        ["estimator.name=stl", "eval.nll_samples=0"],
    )
    with pytest.raises(ValidationError) as info:
        validate_cells(cells, tmp_path / "out")
    text = str(info.value)
    assert text.startswith("2 problems in the run config, found before any work")
    assert text.count("eval.nll_samples=0") == 1 and "(cells:" not in text.split("eval.nll_samples")[1].split("\n")[0]
    assert "(cells: planar)" in text


def test_run_suite_fails_before_any_task_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    monkeypatch.setattr(run_module, "execute", lambda *a, **k: calls.append(a))
    with open(os.devnull, "w") as sink, pytest.raises(ValidationError, match="eval.nll_samples=0"):
        run_suite(composed(tmp_path, **{"eval.nll_samples": 0}), ["eval.nll_samples=0"], console=Console(file=sink))
    assert calls == [] and not (tmp_path / "records").exists()


def test_unknown_override_keys_list_the_section_with_did_you_mean() -> None:
    (p,) = check_override_keys(["train.epochz=3"])
    assert p.key == "train.epochz" and "did you mean 'epochs'" in str(p) and "kl_warmup_epochs" in str(p)
    (p,) = check_override_keys(["frobnicate=1"])
    assert "not a key of the top level" in str(p)
    # group choices, Hydra's keys, additions and free-form option dicts are not schema keys
    assert (
        check_override_keys(
            [
                "dataset=mnist",
                "hydra.launcher.partition=gpu",
                "hydra/launcher=ray",
                "-m",
                "+train.x=1",
                "posterior.kwargs.num_flows=4",
                "seed=0,1",
                "eval.nll_samples=10",
            ]
        )
        == []
    )
    assert [p.key for p in check_override_keys(["eval.nll_smaples=1", "dataset.nmae=x"])] == [
        "eval.nll_smaples",
        "dataset.nmae",
    ]


def test_unknown_dataset_and_model_options(tmp_path: Path) -> None:
    found = problems_of(tmp_path, **{"dataset.kwargs": {"binarise": True}, "model.kwargs": {"hiden": [8]}})
    assert found["dataset.kwargs.binarise"].startswith(
        "dataset.kwargs.binarise=True: not an option of dataset 'digits8'"
    )
    assert "did you mean 'hidden'" in found["model.kwargs.hiden"]
