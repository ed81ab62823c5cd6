"""Leaderboards: run identity, duplicates, paired significance (hand-computed), every output format."""

from __future__ import annotations

import copy
import math
import re
import statistics
from pathlib import Path

import pandas as pd
import pytest

from vaebench.leaderboard import (
    aggregate,
    build_leaderboard,
    collect_rows,
    difference,
    marks,
    paired_difference,
    records_frame,
)
from vaebench.results import Metric, RunRecord, write_record
from vaebench.runner.identity import protocol_of, suite_resolution
from vaebench.runner.suite import load_suite

SHA = "ab" * 32


def suite_config(suite: str, budget: str, cell: str, seed: int = 0, **changes: object) -> dict:
    """The suite file's own resolved config for the cell, with dotted-key changes applied."""
    found = suite_resolution(suite, budget, cell)
    assert found is not None, (suite, budget, cell)
    config = copy.deepcopy(found[1])
    config["seed"] = seed
    for key, value in changes.items():
        *path, last = key.split(".")
        node = config
        for part in path:
            node = node[part]
        node[last] = value
    return config


def rec(
    cell: str,
    seed: int,
    nll: float | list[float],
    *,
    suite: str = "iaf",
    budget: str = "quick",
    created: str = "2026-01-01",
    config: dict | None = None,
    **changes: object,
) -> RunRecord:
    """A record with the suite's own config (plus changes); a list of nll values becomes per-example values."""
    values = nll if isinstance(nll, list) else None
    metric = Metric.of(values) if values is not None else Metric(float(nll), 0.3, 50)
    r = RunRecord(
        suite=suite,
        suite_version=int(load_suite(suite).version),  # the suite file's own version: no '[suite file now vN]'
        cell=cell,
        budget=budget,
        seed=seed,
        config=config if config is not None else suite_config(suite, budget, cell, seed, **changes),
        config_hash=f"{cell}-{seed}-{created}".ljust(64, "0"),
        metrics={"nll": metric},
        created=created,
    )
    k = r.config.get("eval", {}).get("nll_samples")
    r.notes = [f"test NLL estimated with K={k} importance samples"]
    if values is not None:
        r.per_example = {"nll": list(values)}
        r.test_points = {"split": "test", "count": len(values), "order": "test split order", "sha256": SHA}
    return r


# ---- identity -------------------------------------------------------------------------------------


def test_overrides_get_their_own_labelled_row() -> None:
    """README's `vaebench run suite=iaf train.epochs=3 eval.nll_samples=500 seed=3` vs the default quick runs."""
    records = [
        rec("diagonal", 0, 160.0),
        rec("diagonal", 1, 162.0),
        rec("diagonal", 3, 170.0, **{"train.epochs": 3, "eval.nll_samples": 500}),
    ]
    agg = aggregate(records_frame(records)).set_index("label")
    assert sorted(agg.index) == ["diagonal", "diagonal [eval.nll_samples=500, train.epochs=3]"]
    assert agg.loc["diagonal", "seeds"] == 2 and agg.loc["diagonal", "mean"] == pytest.approx(161.0)
    row = agg.loc["diagonal [eval.nll_samples=500, train.epochs=3]"]
    assert row["seeds"] == 1 and row["mean"] == pytest.approx(170.0)
    assert row["overrides"] == "eval.nll_samples=500, train.epochs=3"


def test_a_posterior_override_never_shares_the_real_cells_row() -> None:
    """`suite=flows posterior=planar +posterior.kwargs.num_flows=16` runs diagonal@digits8 as planar-16."""
    real = rec("diagonal@digits8", 0, 100.0, suite="flows")
    fake = rec(
        "diagonal@digits8",
        0,
        90.0,
        suite="flows",
        **{"posterior.name": "planar", "posterior.kwargs": {"num_flows": 16}},
    )
    rows = collect_rows([real, fake])
    assert len(rows) == 2 and all(len(r.runs) == 1 for r in rows)
    labels = sorted(r.protocol.label for r in rows)
    assert labels == ["diagonal@digits8", "diagonal@digits8 [posterior.kwargs.num_flows=16, posterior.name=planar]"]


def test_the_protocol_ignores_seed_and_storage_but_not_semantics() -> None:
    a = rec("diagonal", 0, 1.0)
    b = rec("diagonal", 5, 1.0, **{"dataset.data_dir": "/data", "budget.description": "edited"})
    b.config["results_dir"] = "elsewhere"
    assert protocol_of(a) == protocol_of(b)
    assert protocol_of(a).hash != protocol_of(rec("diagonal", 0, 1.0, **{"train.lr": 3e-4})).hash


def test_records_of_an_older_suite_version_say_so() -> None:
    r = rec("diagonal", 0, 1.0)
    current = r.suite_version
    r.suite_version = current - 1
    assert protocol_of(r).overrides == (f"suite file now v{current}",)


def test_duplicate_records_of_one_seed_count_once() -> None:
    """Two concurrent sweeps wrote seed 0 twice: the newest counts, `seeds` is the distinct count."""
    records = [
        rec("diagonal", 0, 150.0, created="2026-01-01"),
        rec("diagonal", 0, 160.0, created="2026-02-01"),
        rec("diagonal", 1, 170.0),
    ]
    (row,) = collect_rows(records)
    assert row.seeds == [0, 1] and row.duplicates == 1
    agg = aggregate(records_frame(records)).iloc[0]
    assert agg["seeds"] == 2 and agg["duplicates"] == 1
    assert agg["mean"] == pytest.approx(165.0)  # the newer seed-0 record (160) and seed 1 (170)
    assert agg["se"] == pytest.approx(statistics.stdev([160.0, 170.0]) / math.sqrt(2))


def test_one_seed_shows_the_runs_own_error() -> None:
    agg = aggregate(records_frame([rec("diagonal", 0, 95.0)])).iloc[0]
    assert agg["se"] == pytest.approx(0.3) and agg["se_over"] == "examples"


# ---- significance ----------------------------------------------------------------------------------


def test_paired_difference_by_hand() -> None:
    # d_0 = [1, 1, 3], d_1 = [1, 2, 2]: D_0 = D_1 = 5/3, so v_seed = 0.
    # dbar = [1, 1.5, 2.5], Var = ((-2/3)^2 + (-1/6)^2 + (5/6)^2) / 2 = 7/12, v_ex = 7/36, se = sqrt(7)/6.
    # df = se^4 / (v_ex^2 / 2) = 2, t_{0.975, 2} = 4.302653 (table): CI = 5/3 -+ 1.897286.
    d = paired_difference(
        {0: [1.0, 2.0, 4.0], 1: [2.0, 2.0, 5.0]}, {0: [0.0, 1.0, 1.0], 1: [1.0, 0.0, 3.0]}, shared_points=True
    )
    assert d.diff == pytest.approx(5 / 3) and d.se == pytest.approx(math.sqrt(7) / 6)
    assert d.df == pytest.approx(2.0)
    assert d.low == pytest.approx(5 / 3 - 4.302653 * math.sqrt(7) / 6, abs=1e-5)
    assert d.high == pytest.approx(5 / 3 + 4.302653 * math.sqrt(7) / 6, abs=1e-5)
    assert d.significant is False and d.paired and d.seeds == 2 and d.examples == 3


def test_paired_difference_with_seed_variance_by_hand() -> None:
    # d_0 = [1, 2, 3] (D_0 = 2), d_1 = [3, 3, 3] (D_1 = 3): D = 2.5, v_seed = Var(2, 3) / 2 = 1/4;
    # dbar = [2, 2.5, 3], Var = 1/4, v_ex = 1/12; se^2 = 1/3; df = (1/9) / ((1/4)^2 / 1 + (1/12)^2 / 2) = 32/19.
    d = paired_difference({0: [1.0, 2.0, 3.0], 1: [3.0, 3.0, 3.0]}, {0: [0.0] * 3, 1: [0.0] * 3}, shared_points=True)
    assert d.diff == pytest.approx(2.5) and d.se == pytest.approx(math.sqrt(1 / 3)) and d.df == pytest.approx(32 / 19)
    # test points drawn per seed: Var_s(D_s) already holds the examples' error
    e = paired_difference({0: [1.0, 2.0, 3.0], 1: [3.0, 3.0, 3.0]}, {0: [0.0] * 3, 1: [0.0] * 3}, shared_points=False)
    assert e.se == pytest.approx(0.5) and e.df == pytest.approx(1.0)


def test_paired_difference_rejects_mismatched_examples() -> None:
    with pytest.raises(ValueError, match="expected 3"):
        paired_difference({0: [1.0, 2.0, 3.0]}, {0: [1.0, 2.0]}, shared_points=True)
    with pytest.raises(ValueError, match="needs a common seed"):
        paired_difference({0: [1.0]}, {1: [1.0]}, shared_points=True)


def test_marks_best_and_ties_paired_but_not_unpaired() -> None:
    # Y - X = [.5, -.5, .5, .5]: mean .25, se = sqrt(.25/4) = .25, df 3, t = 3.182446 -> [-.546, 1.046]: a tie.
    # Z - X = [1, 1, 1, 1.2]: mean 1.05, se = sqrt(.01/4) = .05 -> [.891, 1.209]: worse than the best.
    x, y, z = [10.0, 20.0, 30.0, 40.0], [10.5, 19.5, 30.5, 40.5], [11.0, 21.0, 31.0, 41.2]
    rows = collect_rows([rec("diagonal", 0, x), rec("planar_4", 0, y), rec("iaf_2", 0, z)])
    by = {r.protocol.cell: i for i, r in enumerate(rows)}
    m = marks(rows, "nll")
    assert (m[by["diagonal"]], m[by["planar_4"]], m[by["iaf_2"]]) == ("best", "tie", "")
    d = difference(rows[by["planar_4"]], rows[by["diagonal"]], "nll")
    assert d is not None and d.diff == pytest.approx(0.25) and d.se == pytest.approx(0.25)
    assert d.high == pytest.approx(0.25 + 3.182446 * 0.25, abs=1e-5)
    # without per-example values the same runs are not distinguishable: se ~ sd(x)/2 = 6.5 per row
    unpaired = collect_rows([rec("diagonal", 0, x), rec("planar_4", 0, y), rec("iaf_2", 0, z)])
    for r in unpaired:
        for run in r.runs.values():
            run.per_example = {}
    m = marks(unpaired, "nll")
    assert sorted(m.values()) == ["best", "tie", "tie"]
    d = difference(unpaired[by["iaf_2"]], unpaired[by["diagonal"]], "nll")
    assert d is not None and not d.paired and d.se > 5


def test_different_test_points_do_not_pair() -> None:
    a, b = rec("diagonal", 0, [1.0, 2.0, 3.0]), rec("planar_4", 0, [2.0, 3.0, 4.5])
    b.test_points = dict(b.test_points, sha256="cd" * 32)
    rb, ra = collect_rows([b])[0], collect_rows([a])[0]
    d = difference(rb, ra, "nll")
    assert d is not None and not d.paired


# ---- the files ------------------------------------------------------------------------------------


def _board(tmp_path: Path):
    x, y = [150.0, 160.0, 170.0, 180.0], [151.0, 161.0, 171.5, 181.0]
    for seed, shift in ((0, 0.0), (1, 2.0), (2, -1.0)):
        write_record(rec("diagonal", seed, [v + shift for v in x]), tmp_path)
        write_record(rec("planar_4", seed, [v + shift for v in y]), tmp_path)
    write_record(rec("diagonal", 3, 175.0, **{"train.epochs": 3, "eval.nll_samples": 500}), tmp_path)
    return build_leaderboard(tmp_path)["iaf"]


def test_every_format_carries_protocol_notes_and_marks(tmp_path: Path) -> None:
    board = _board(tmp_path)
    tables = tmp_path / "tables"
    names = sorted(p.name for p in board.paths)
    assert {"iaf.md", "iaf.html", "iaf.tex", "iaf.csv", "index.html"} <= set(names)
    md = (tables / "iaf.md").read_text()
    assert (
        "**Protocol**" in md and "| NLL importance samples K | varies by row: 500; 1,000 | **deviates**: 5,000 |" in md
    )
    assert "diagonal [eval.nll_samples=500, train.epochs=3]" in md
    assert "baseline" in md and "best" in md and "85.54" not in md  # iwae's reference, not iaf's
    assert "89.9" in md and "(reference)" in md  # iaf's published reference rows
    assert "- test NLL estimated with K=1000 importance samples (diagonal, planar_4)" in md
    assert "- test NLL estimated with K=500 importance samples (diagonal [eval.nll_samples=500, train.epochs=3])" in md
    tex = (tables / "iaf.tex").read_text()
    assert r"\toprule" in tex and r"\midrule" in tex and r"\bottomrule" in tex and r"$\pm$" in tex
    assert "±" not in tex and "Protocol ---" in tex and "published protocol: 5,000" in tex
    assert not re.search(r"\d\.\d{5,}", tex), "LaTeX shows more digits than the errors justify"
    html = (tables / "iaf.html").read_text()
    assert 'class="board sortable"' in html and 'class="protocol"' in html and "deviates from the published" in html
    assert 'tr class="reference"' in html
    for src in re.findall(r'<img src="([^"]+)"', html):
        assert (tables / src).is_file(), src
    assert "runs/" not in html
    csv = pd.read_csv(tables / "iaf.csv", dtype=str, keep_default_na=False)
    assert set(csv["kind"]) == {"protocol", "note", "run", "reference"}
    runs = csv[csv["kind"] == "run"]
    assert all(re.fullmatch(r"\d+", v) for v in runs["seeds"]) and all(
        re.fullmatch(r"\d+", v) for v in runs["suite_version"]
    )
    nll = runs[(runs["metric"] == "nll") & (runs["row"] == "planar_4")].iloc[0]
    assert nll["seeds"] == "3" and nll["paired"] == "True" and float(nll["diff"]) == pytest.approx(1.125)


def test_paired_difference_in_the_table_matches_the_hand_formula(tmp_path: Path) -> None:
    board = _board(tmp_path)
    (t,) = board.tables
    row = next(r for r in t.raw if r["row"] == "planar_4")
    # d_{s,n} = [1, 1, 1.5, 1] for every seed: v_seed = 0; dbar = [1, 1, 1.5, 1], Var = 1/16, v_ex = 1/64
    assert row["diff"] == pytest.approx(1.125) and row["diff se"] == pytest.approx(0.125)
    assert row["paired"] is True


def test_empty_results_give_no_boards(tmp_path: Path) -> None:
    assert build_leaderboard(tmp_path) == {}


def test_metrics_named_by_k_are_plotted_on_log_axes(tmp_path: Path) -> None:
    for cell, snr in (("iwae", [0.5, 0.03]), ("dreg", [0.5, 0.7])):
        r = rec(cell, 0, 1.0, suite="estimators")
        r.metrics = {f"encoder_snr@K={k}": Metric(v, 0.01, 10) for k, v in zip((1, 5), snr, strict=True)}
        write_record(r, tmp_path)
    board = build_leaderboard(tmp_path)["estimators"]
    (png,) = [p for p in board.paths if p.name.endswith("__vs_K.png")]
    assert png.stat().st_size > 1000
    assert f'src="{png.name}"' in (tmp_path / "tables" / "estimators.html").read_text()


def test_kernels_are_a_long_table(tmp_path: Path) -> None:
    r = rec("log_mean_exp", 0, 1.0, suite="kernels")
    r.suite_version = 2
    r.metrics = {
        "64x256x64/reference/fwd_ms": Metric(2.0),
        "64x256x64/fused/fwd_ms": Metric(0.5),
        "64x256x64/fused/fwd_GBps": Metric(12.5),
        "64x256x64/fused_speedup_vs_reference/fwd": Metric(4.0),
    }
    write_record(r, tmp_path)
    board = build_leaderboard(tmp_path)["kernels"]
    (t,) = board.tables
    assert t.columns[:4] == ["op", "size", "provider", "mode"]
    fused = next(c for c in t.cells if c["provider"] == "fused")
    assert fused["op"] == "log_mean_exp" and fused["GB/s"] == "12.5" and fused["speedup vs reference"] == "4.00x"
    assert "nan" not in (tmp_path / "tables" / "kernels.md").read_text().lower()
    assert any(p.name.endswith("__time_vs_size.png") for p in board.paths)


def test_a_bias_ranks_by_its_distance_from_zero() -> None:
    """exact suite: the best estimator has the bias nearest 0, not the most negative one."""
    rows = collect_rows([rec(c, 0, 1.0, suite="exact", budget="quick") for c in ("elbo_mc", "iwae")])
    for r, values in zip(rows, ([-0.5, -0.6, -0.4, -0.5], [-0.01, 0.02, -0.03, 0.0]), strict=True):
        run = next(iter(r.runs.values()))
        run.metrics = {"bias@K=5": Metric.of(values)}
    m = marks(rows, "bias@K=5")
    assert m[[r.protocol.cell for r in rows].index("iwae")] == "best"
