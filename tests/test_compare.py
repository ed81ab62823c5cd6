"""compare: which metrics moved between two result sets, paired by protocol, in standard errors."""

from __future__ import annotations

import copy
import math
from pathlib import Path

import pytest

from vaebench.compare import compare, render
from vaebench.results import Metric, RunRecord, write_record
from vaebench.runner.identity import suite_resolution
from vaebench.runner.suite import load_suite


def config(cell: str, **changes: object) -> dict:
    found = suite_resolution("iaf", "quick", cell)
    assert found is not None
    out = copy.deepcopy(found[1])
    for key, value in changes.items():
        section, name = key.split(".")
        out[section][name] = value
    return out


def put(
    folder: Path, cell: str, nll: float, se: float, au: float, per_example: list[float] | None = None, **changes: object
) -> None:
    r = RunRecord(
        suite="iaf",
        suite_version=int(load_suite("iaf").version),  # the suite file's own version
        cell=cell,
        budget="quick",
        seed=0,
        config=config(cell, **changes),
        config_hash=f"{cell}{nll}".ljust(64, "0"),
        metrics={"nll": Metric(nll, se, 100), "active_units": Metric(au), "train_time_s": Metric(au / 10)},
    )
    if per_example is not None:
        r.per_example = {"nll": per_example}
        r.test_points = {"split": "test", "count": len(per_example), "order": "test split order", "sha256": "ab" * 32}
    write_record(r, folder)


def test_moved_metrics_are_flagged(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    put(a, "diagonal", 100.0, 0.5, 20.0)
    put(a, "planar_4", 98.0, 0.5, 22.0)
    put(b, "diagonal", 100.5, 0.5, 20.0)  # z = 0.5 / sqrt(0.5) ~ 0.71: did not move
    put(b, "planar_4", 95.0, 0.5, 23.0)  # z = -3 / 0.71 ~ -4.2: moved
    changes = {(c.cell, c.metric): c for c in compare(a, b)}
    assert not changes["diagonal", "nll"].moved and changes["diagonal", "nll"].status == "same"
    assert changes["planar_4", "nll"].moved
    assert changes["planar_4", "nll"].z == pytest.approx(-3.0 / 0.5**0.5)
    # without standard errors nothing is called moved: a timing measured once has no error estimate
    for key in (("planar_4", "active_units"), ("planar_4", "train_time_s"), ("diagonal", "active_units")):
        assert changes[key].status == "no error estimate" and changes[key].z is None and changes[key].se is None
    text = render(list(changes.values()), a, b)
    assert "1 of 2 shared metrics with an error estimate moved" in text and "4 without an error estimate" in text
    assert "planar_4" in text and "| diagonal" not in text
    full = render(list(changes.values()), a, b, only_moved=False)
    assert "nan" not in full and "no error estimate" in full


def test_rows_pair_by_protocol_not_by_cell_name(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    put(a, "diagonal", 100.0, 0.5, 20.0)
    put(b, "diagonal", 90.0, 0.5, 20.0, **{"train.epochs": 3})  # another protocol: never paired
    with pytest.raises(ValueError, match="no protocol in common"):
        compare(a, b)


def test_per_example_values_give_a_paired_error(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    xs = [80.0, 90.0, 100.0, 110.0]
    put(a, "diagonal", sum(xs) / 4, 6.45, 20.0, per_example=xs)
    ys = [x + d for x, d in zip(xs, [0.5, 0.7, 0.5, 0.7], strict=True)]
    put(b, "diagonal", sum(ys) / 4, 6.45, 20.0, per_example=ys)
    (c,) = [c for c in compare(a, b) if c.metric == "nll"]
    # d = [.5, .7, .5, .7]: mean .6, sd = sqrt(4 * .01 / 3), se = sd / 2
    assert c.paired and c.diff == pytest.approx(0.6) and c.se == pytest.approx(math.sqrt(0.04 / 3) / 2)
    assert c.moved  # unpaired, hypot(6.45, 6.45) = 9.1 would hide it


def test_nothing_in_common_is_an_error(tmp_path: Path) -> None:
    put(tmp_path / "a", "diagonal", 1.0, 0.1, 1.0)
    put(tmp_path / "b", "planar_4", 1.0, 0.1, 1.0)
    with pytest.raises(ValueError, match="in common"):
        compare(tmp_path / "a", tmp_path / "b")
    with pytest.raises(ValueError, match="threshold must be > 0"):
        compare(tmp_path / "a", tmp_path / "a", threshold=0)
