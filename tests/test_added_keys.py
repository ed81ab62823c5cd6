"""Keys added to the run schema after records were committed (vaebench.config.ADDED_KEYS): at
their default they leave every committed record's config hash and row identity as they were."""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path
from typing import Any

import pytest
from omegaconf import OmegaConf

from vaebench.config import ADDED_KEYS, RunConfig, TrainSection, added_key_default, without_added_defaults
from vaebench.results import load_records
from vaebench.runner.identity import overrides, protocol_hash, protocol_of
from vaebench.runner.resolve import config_hash

REPO = Path(__file__).resolve().parent.parent
COMMITTED = load_records(REPO / "results")


def _set(config: dict[str, Any], key: str, value: Any) -> dict[str, Any]:
    out = copy.deepcopy(config)
    *sections, leaf = key.split(".")
    node = out
    for section in sections:
        node = node.setdefault(section, {})
    node[leaf] = value
    return out


def _as_written_now(config: dict[str, Any]) -> dict[str, Any]:
    """A committed record's config as a run today stores it: every added key at its default."""
    for key in ADDED_KEYS:
        config = _set(config, key, added_key_default(key))
    return config


def test_the_added_defaults_are_the_schemas() -> None:
    schema = OmegaConf.to_container(OmegaConf.structured(RunConfig))
    assert isinstance(schema, dict)
    section = TrainSection()
    assert added_key_default("train.betas") == schema["train"]["betas"] == section.betas == [0.9, 0.999]
    assert added_key_default("train.grad_clip_norm") is None and section.valid_batch_size == 100


def test_there_are_committed_records_to_check() -> None:
    """Records from before the keys existed (the case the rule is for) and after (the keys stored
    at their defaults) are both committed, and both are checked below."""
    before = [r for r in COMMITTED if "betas" not in r.config.get("train", {})]
    after = [r for r in COMMITTED if "betas" in r.config.get("train", {})]
    # Counts that rerunning a suite does not break: records are replaced as suites are rerun,
    # and every rerun moves a suite from `before` to `after`.
    assert len(COMMITTED) >= 20, "the committed results/records should be found from the checkout"
    assert before, "records from before the added keys are committed (the case the rule is for)"
    assert after, "records written since the keys were added store them"
    assert all(r.config["train"]["betas"] == added_key_default("train.betas") for r in after)


@pytest.mark.parametrize("record", COMMITTED, ids=lambda r: f"{r.suite}/{r.cell}/{r.seed}/{r.config_hash[:8]}")
def test_a_committed_record_keeps_its_hash_and_row_with_the_added_keys_at_their_default(record) -> None:
    now = _as_written_now(record.config)
    assert config_hash(record.suite, record.suite_version, record.cell, record.config) == record.config_hash
    assert config_hash(record.suite, record.suite_version, record.cell, now) == record.config_hash
    for task in (None, "train_eval", "gradients", "exact", "kernels"):
        assert protocol_hash(now, task) == protocol_hash(record.config, task)
    assert protocol_of(dataclasses.replace(record, config=now)) == protocol_of(record)


@pytest.mark.parametrize(
    ("key", "value"), [("train.betas", [0.9, 0.99]), ("train.grad_clip_norm", 5.0), ("train.valid_batch_size", 20)]
)
def test_an_added_key_off_its_default_counts(key: str, value: Any) -> None:
    record = next(r for r in COMMITTED if r.suite == "iaf")
    moved = _set(_as_written_now(record.config), key, value)
    assert config_hash(record.suite, record.suite_version, record.cell, moved) != record.config_hash
    assert protocol_hash(moved, "train_eval") != protocol_hash(record.config, "train_eval")
    label = overrides(dataclasses.replace(record, config=moved))
    assert any(item.startswith(f"{key}=") for item in label), label


def test_without_added_defaults_copies() -> None:
    config = {"train": {"betas": [0.9, 0.999], "lr": 1e-3}, "seed": 0}
    assert without_added_defaults(config) == {"train": {"lr": 1e-3}, "seed": 0}
    assert config["train"]["betas"] == [0.9, 0.999]  # the caller's dict is not changed
