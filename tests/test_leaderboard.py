"""Leaderboards: mean and standard error over seeds, reference rows, the files written."""

from __future__ import annotations

import math
import statistics
from pathlib import Path

import pandas as pd
import pytest

from vaebench.leaderboard import aggregate, build_leaderboard, records_frame
from vaebench.results import Metric, RunRecord, write_record


def rec(cell: str, seed: int, nll: float, suite: str = "iwae", created: str = "2026-01-01", h: str | None = None) -> RunRecord:
    return RunRecord(
        suite=suite, suite_version=1, cell=cell, budget="smoke", seed=seed,
        config={"dataset": {"name": "digits28"}}, config_hash=h or f"{cell}-{seed}".ljust(64, "0"),
        metrics={"nll": Metric(nll, 0.3, 50)}, created=created,
    )


def test_aggregate_over_seeds() -> None:
    values = [90.0, 91.0, 93.5]
    frame = records_frame([rec("iwae_k5_l1", s, v) for s, v in enumerate(values)] + [rec("vae_k5_l1", 0, 95.0)])
    agg = aggregate(frame).set_index("cell")
    row = agg.loc["iwae_k5_l1"]
    assert row["mean"] == pytest.approx(statistics.mean(values))
    assert row["se"] == pytest.approx(statistics.stdev(values) / math.sqrt(3))
    assert row["seeds"] == 3
    # one seed: the run's own standard error (over test examples) is what there is
    assert agg.loc["vae_k5_l1", "se"] == pytest.approx(0.3)


def test_only_the_newest_record_of_a_config_counts() -> None:
    frame = records_frame([rec("a", 0, 1.0, created="2026-01-01", h="x" * 64), rec("a", 0, 2.0, created="2026-02-01", h="x" * 64)])
    assert list(frame["mean"]) == [2.0]


def test_build_writes_tables_with_reference_rows(tmp_path: Path) -> None:
    for s, v in enumerate([90.0, 92.0]):
        write_record(rec("iwae_k5_l1", s, v), tmp_path)
    boards = build_leaderboard(tmp_path)
    board = boards["iwae"]
    names = sorted(p.name for p in board.paths)
    assert names == ["iwae.csv", "iwae.html", "iwae.md", "iwae.tex"]
    assert all(p.parent == tmp_path / "tables" for p in board.paths)
    assert "91 ± 1" in board.markdown
    # Burda et al.'s IWAE k=5 one-layer number comes from suites/iwae.yaml, marked V
    assert "85.54" in board.markdown and "published reference numbers" in board.markdown
    csv = pd.read_csv(tmp_path / "tables" / "iwae.csv")
    refs = csv[csv["kind"] == "reference"]
    assert set(refs["status"]) <= {"V", "unverified"} and len(refs) > 0
    assert "<table" in (tmp_path / "tables" / "iwae.html").read_text()
    assert r"\begin{tabular}" in (tmp_path / "tables" / "iwae.tex").read_text()


def test_empty_results_give_no_boards(tmp_path: Path) -> None:
    assert build_leaderboard(tmp_path) == {}


def test_html_embeds_the_runs_plots(tmp_path: Path) -> None:
    r = rec("iwae_k5_l1", 0, 90.0)
    r.artifacts = {"plot": "runs/iwae/iwae_k5_l1__abc/gradient_stats.png"}
    write_record(r, tmp_path)
    build_leaderboard(tmp_path)
    page = (tmp_path / "tables" / "iwae.html").read_text()
    assert '<img src="../runs/iwae/iwae_k5_l1__abc/gradient_stats.png"' in page


def test_metrics_named_by_k_are_plotted(tmp_path: Path) -> None:
    for cell, snr in (("iwae", [0.5, 0.3]), ("dreg", [0.5, 0.7])):
        r = rec(cell, 0, 1.0, suite="estimators")
        r.metrics = {f"encoder_snr@K={k}": Metric(v, 0.01, 10) for k, v in zip((1, 5), snr)}
        write_record(r, tmp_path)
    board = build_leaderboard(tmp_path)["estimators"]
    png = tmp_path / "tables" / "estimators_vs_K.png"
    assert png in board.paths and png.stat().st_size > 1000
    assert 'src="estimators_vs_K.png"' in (tmp_path / "tables" / "estimators.html").read_text()
