"""Run records: metric standard errors, atomic append-only writes, schema checks."""

from __future__ import annotations

import json
import math
import statistics
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pytest

from vaebench.results import (
    SCHEMA_VERSION,
    Metric,
    RecordError,
    RunRecord,
    find_records,
    load_record,
    load_records,
    write_record,
)


def make_record(
    cell: str = "a", seed: int = 0, value: float = 1.0, config_hash: str = "f" * 64, suite: str = "s"
) -> RunRecord:
    return RunRecord(
        suite=suite,
        suite_version=1,
        cell=cell,
        budget="smoke",
        seed=seed,
        config={"dataset": {"name": "digits8"}, "seed": seed},
        config_hash=config_hash,
        metrics={"nll": Metric(value, 0.5, 10), "au": Metric(3.0)},
        curves={"train_bound": [-3.0, -2.0]},
    )


def test_metric_of_is_mean_and_standard_error() -> None:
    xs = [1.0, 2.0, 4.0, 7.0]
    m = Metric.of(xs)
    assert m.mean == pytest.approx(3.5)
    assert m.se == pytest.approx(statistics.stdev(xs) / 2.0)
    assert m.n == 4
    assert Metric.of([5.0]).se is None
    with pytest.raises(ValueError, match="at least one value"):
        Metric.of([])


def test_record_roundtrip(tmp_path: Path) -> None:
    rec = make_record()
    path = write_record(rec, tmp_path)
    assert path.parent == tmp_path / "records" / "s"
    back = load_record(path)
    assert back == rec
    assert json.loads(path.read_text())["schema_version"] == SCHEMA_VERSION
    assert not list(path.parent.glob(".*.tmp")), "temporary files must not stay behind"


def test_records_are_append_only(tmp_path: Path) -> None:
    paths = {write_record(make_record(value=v), tmp_path) for v in (1.0, 2.0, 3.0)}
    assert len(paths) == 3
    assert len(find_records(tmp_path, "s", "a", "f" * 64)) == 3
    assert find_records(tmp_path, "s", "b", "f" * 64) == []
    assert sorted(r.metrics["nll"].mean for r in load_records(tmp_path)) == [1.0, 2.0, 3.0]


def _write_many(args: tuple[str, int]) -> int:
    folder, worker = args
    for i in range(10):
        write_record(make_record(cell=f"c{worker}", seed=i, value=float(i)), folder)
    return worker


def test_concurrent_writers_never_corrupt(tmp_path: Path) -> None:
    with ProcessPoolExecutor(max_workers=2) as pool:
        list(pool.map(_write_many, [(str(tmp_path), w) for w in range(4)]))
    records = load_records(tmp_path)
    assert len(records) == 40
    assert {r.cell for r in records} == {"c0", "c1", "c2", "c3"}


def test_bad_records_raise_naming_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(RecordError, match="bad.json is not valid JSON"):
        load_record(bad)
    old = make_record().to_dict() | {"schema_version": 0}
    bad.write_text(json.dumps(old))
    with pytest.raises(RecordError, match="schema_version 0 is not supported"):
        load_record(bad)
    bad.write_text(json.dumps({"schema_version": SCHEMA_VERSION, "what": 1}))
    with pytest.raises(RecordError, match="not a vaebench run record"):
        load_record(bad)
    with pytest.raises(RecordError, match="does not exist"):
        load_record(tmp_path / "missing.json")
    with pytest.raises(RecordError, match="no results at"):
        load_records(tmp_path / "nowhere")


def test_nan_metrics_survive_a_roundtrip(tmp_path: Path) -> None:
    rec = make_record(value=math.nan)
    back = load_record(write_record(rec, tmp_path))
    assert math.isnan(back.metrics["nll"].mean)


def test_per_example_values_roundtrip_and_version_1_records_still_load(tmp_path: Path) -> None:
    rec = make_record()
    rec.per_example = {"nll": [80.5, 91.25, 77.0], "elbo": [-85.0, -95.5, -80.0]}
    rec.test_points = {"split": "test", "count": 3, "order": "test split order", "sha256": "ab" * 32}
    back = load_record(write_record(rec, tmp_path))
    assert back.per_example == rec.per_example and back.test_points == rec.test_points
    old = make_record().to_dict() | {"schema_version": 1}
    del old["per_example"], old["test_points"]
    path = tmp_path / "old.json"
    path.write_text(json.dumps(old))
    v1 = load_record(path)
    assert v1.schema_version == 1 and v1.per_example == {} and v1.test_points == {}
    assert v1.metrics == rec.metrics
