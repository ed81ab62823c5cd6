"""Records are never a single point of failure: scan, skip and report damaged or foreign files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vaebench.results import (
    Metric,
    RecordError,
    RunRecord,
    load_record,
    load_records,
    records_dir,
    scan_records,
    usable_records,
    write_record,
)


def make_record(cell: str = "a", value: float = 1.0) -> RunRecord:
    return RunRecord(
        suite="s",
        suite_version=1,
        cell=cell,
        budget="smoke",
        seed=0,
        config={},
        config_hash="f" * 64,
        metrics={"nll": Metric(value, 0.5, 10)},
    )


def damaged_folder(tmp: Path) -> tuple[Path, dict[str, str]]:
    """A results folder with two good records and one file of each kind of damage -> expected reason."""
    write_record(make_record("a"), tmp)
    write_record(make_record("b"), tmp)
    folder = records_dir(tmp, "s")
    good = json.loads(next(folder.glob("a__*.json")).read_text())
    bad = {
        "array.json": ("[1, 2, 3]", "the file holds a JSON array, a record is an object"),
        "truncated.json": (json.dumps(good)[:40], "is not valid JSON"),
        "abc.json": (
            json.dumps({**good, "metrics": {"nll": {"mean": "abc", "se": None, "n": 1}}}),
            "metrics.nll.mean must be a number, got 'abc'",
        ),
        "foreign.json": (json.dumps({"schema_version": 1, "hello": "world"}), "not a vaebench run record"),
        "future.json": (json.dumps({**good, "schema_version": 99}), "schema_version 99 is not supported"),
        "binary.json": (b"\xff\xfe\x00garbage", "is not valid JSON"),
    }
    for name, (content, _) in bad.items():
        path = folder / name
        path.write_bytes(content) if isinstance(content, bytes) else path.write_text(content)
    (folder / "folder.json").mkdir()  # a folder named like a record
    reasons = {name: reason for name, (_, reason) in bad.items()}
    reasons["folder.json"] = "cannot be read"
    return folder, reasons


def test_scan_returns_good_records_and_every_problem(tmp_path: Path) -> None:
    folder, reasons = damaged_folder(tmp_path)
    records, problems = scan_records(tmp_path)
    assert sorted(r.cell for r in records) == ["a", "b"]
    assert {p.path.name for p in problems} == set(reasons)
    for p in problems:
        assert reasons[p.path.name] in p.reason, (p.path.name, p.reason)
        assert p.path.parent == folder and str(p).startswith(str(p.path))


def test_each_damaged_record_names_its_file(tmp_path: Path) -> None:
    folder, reasons = damaged_folder(tmp_path)
    for name in reasons:
        with pytest.raises(RecordError, match=str(folder / name).replace(".", r"\.")):
            load_record(folder / name)


def test_usable_records_report_and_skip_unless_strict(tmp_path: Path) -> None:
    _, reasons = damaged_folder(tmp_path)
    seen: list[str] = []
    records = usable_records(tmp_path, report=seen.append)
    assert len(records) == 2 and len(seen) == 1
    assert f"skipped {len(reasons)} file(s)" in seen[0] and all(name in seen[0] for name in reasons)
    with pytest.raises(RecordError) as info:
        usable_records(tmp_path, strict=True)
    assert all(name in str(info.value) for name in reasons)  # every problem at once, not the first
    with pytest.raises(RecordError, match="array.json"):
        load_records(tmp_path)


def test_a_clean_folder_reports_nothing(tmp_path: Path) -> None:
    write_record(make_record("a"), tmp_path)
    seen: list[str] = []
    assert len(usable_records(tmp_path, report=seen.append)) == 1 and seen == []
