"""compare: which metrics moved between two result sets, in standard errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from vaebench.compare import compare, render
from vaebench.results import Metric, RunRecord, write_record


def put(folder: Path, cell: str, nll: float, se: float, au: float) -> None:
    write_record(RunRecord(
        suite="iaf", suite_version=1, cell=cell, budget="smoke", seed=0, config={"dataset": {"name": "digits28"}},
        config_hash=f"{cell}{nll}".ljust(64, "0"), metrics={"nll": Metric(nll, se, 100), "active_units": Metric(au)},
    ), folder)


def test_moved_metrics_are_flagged(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    put(a, "diagonal", 100.0, 0.5, 20.0)
    put(a, "planar_4", 98.0, 0.5, 22.0)
    put(b, "diagonal", 100.5, 0.5, 20.0)  # z = 0.5 / sqrt(0.5) ~ 0.71: did not move
    put(b, "planar_4", 95.0, 0.5, 23.0)  # z = -3 / 0.71 ~ -4.2: moved
    changes = {(c.cell, c.metric): c for c in compare(a, b)}
    assert not changes["diagonal", "nll"].moved
    assert changes["planar_4", "nll"].moved
    assert changes["planar_4", "nll"].z == pytest.approx(-3.0 / 0.5**0.5)
    # without standard errors a change is a move, equality is not
    assert changes["planar_4", "active_units"].moved and changes["planar_4", "active_units"].z is None
    assert not changes["diagonal", "active_units"].moved
    text = render(list(changes.values()), a, b)
    assert "2 of 4 shared metrics moved" in text and "planar_4" in text and "| diagonal" not in text


def test_nothing_in_common_is_an_error(tmp_path: Path) -> None:
    put(tmp_path / "a", "diagonal", 1.0, 0.1, 1.0)
    put(tmp_path / "b", "other", 1.0, 0.1, 1.0)
    with pytest.raises(ValueError, match="in common"):
        compare(tmp_path / "a", tmp_path / "b")
    with pytest.raises(ValueError, match="threshold must be > 0"):
        compare(tmp_path / "a", tmp_path / "a", threshold=0)
