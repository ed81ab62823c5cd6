"""The run schema: unknown keys and wrong types fail naming the key."""

from __future__ import annotations

import pytest
from omegaconf import OmegaConf
from omegaconf.errors import ConfigKeyError, ValidationError

from vaebench import config
from vaebench.config import EvalConfig, RunConfig, SuiteConfig
from vaebench.evaluation.likelihood import PAPER_NLL_SAMPLES


def test_defaults_are_the_documented_protocol() -> None:
    cfg = OmegaConf.structured(RunConfig)
    assert cfg.eval.nll_samples == 5000  # Burda et al. 2015
    assert cfg.eval.active_units_threshold == 0.01 and cfg.eval.active_units_examples == 500
    assert cfg.train.eps == 1e-4 and cfg.budget.name == "quick" and cfg.results_dir == "local-results"


@pytest.mark.parametrize(
    ("update", "error", "key"),
    [
        ({"train": {"epochz": 1}}, ConfigKeyError, "epochz"),
        ({"train": {"epochs": "many"}}, ValidationError, "train.epochs"),
        ({"seed": "abc"}, ValidationError, "seed"),
        ({"suite": {"cells": [{"name": "a", "confg": {}}]}}, ConfigKeyError, "confg"),
        ({"eval": {"nll_samples": 1.5}}, ValidationError, "nll_samples"),
    ],
)
def test_bad_values_name_the_key(update: dict, error: type[Exception], key: str) -> None:
    with pytest.raises(error, match=key):
        OmegaConf.merge(OmegaConf.structured(RunConfig), update)


def test_suite_schema_holds_references() -> None:
    suite = OmegaConf.merge(
        OmegaConf.structured(SuiteConfig),
        {
            "name": "x",
            "references": [{"cell": "a", "metric": "nll", "value": 84.78, "source": "IWAE", "status": "V"}],
        },
    )
    assert suite.references[0].value == pytest.approx(84.78)


def test_the_nll_default_is_the_published_protocol():
    assert EvalConfig().nll_samples == PAPER_NLL_SAMPLES


def test_the_old_name_of_the_train_section_still_imports_with_a_warning():
    with pytest.warns(DeprecationWarning, match="vaebench.config.TrainSection"):
        assert config.TrainConfig is config.TrainSection
