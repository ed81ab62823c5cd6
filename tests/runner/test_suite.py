"""Suite files: discovery across folders, schema checks, every shipped suite valid."""

from __future__ import annotations

from pathlib import Path

import pytest
from omegaconf import OmegaConf

from vaebench.config import RunConfig
from vaebench.runner.resolve import resolve_cells
from vaebench.runner.suite import SUITE_DIRS_ENV, SuiteError, available_suites, find_suite, load_suite

SHIPPED = sorted(available_suites())  # every suite file shipped in suites/, not a hand list


def test_shipped_suites_are_found() -> None:
    assert {"estimators", "exact", "flows", "iaf", "iwae", "kernels"} <= set(SHIPPED)


@pytest.mark.parametrize("name", SHIPPED)
def test_every_shipped_suite_resolves_in_every_budget(name: str) -> None:
    suite = load_suite(name)
    assert {"smoke", "quick", "paper"} <= set(suite.budgets), "every suite has the three budgets"
    assert suite.description and suite.version >= 1
    for budget in suite.budgets:
        cfg = OmegaConf.structured(RunConfig)
        cfg.suite = suite
        cfg.budget.name = budget
        cells = resolve_cells(cfg)
        assert cells and len({c.config_hash for c in cells}) == len(cells)


def test_user_folders_come_first(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "iaf.yaml").write_text("name: iaf\ndescription: my own\ncells: [{name: a}]\nbudgets: {quick: {}}\n")
    monkeypatch.setenv(SUITE_DIRS_ENV, str(tmp_path))
    assert find_suite("iaf") == tmp_path / "iaf.yaml"
    assert load_suite("iaf").description == "my own"


def test_unknown_suite_lists_known_ones() -> None:
    with pytest.raises(SuiteError, match="unknown suite 'iaff'; known: .*iaf.*suite_dirs"):
        find_suite("iaff")


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("name: bad\ncellz: []\n", "Key 'cellz' not in 'SuiteConfig'"),
        ("name: other\n", "declares name 'other'; it must be 'bad'"),
        ("name: bad\nversion: one\n", "version"),
        ("name: bad\ncells: [{name: a}, {name: a}]\n", "duplicate cell names"),
        (
            "name: bad\ncells: [{name: a}]\nbudgets: {smoke: {cells: [b]}}\n",
            "budget 'smoke' names unknown cells \\['b'\\]",
        ),
    ],
)
def test_malformed_suites_name_the_problem(tmp_path: Path, text: str, match: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(SuiteError, match=match):
        load_suite(path)


GRID_SUITE = """
name: gridded
description: a temporary suite with a grid
cells:
  - {name: explicit, config: {dataset: {name: digits8}}}
grid:
  name: "{posterior}@{dataset}"
  axes:
    dataset:
      digits28: {dataset: {name: digits28}}
      digits8: {dataset: {name: digits8}}
    posterior:
      diagonal: {posterior: {name: diagonal}}
      planar_2: {posterior: {name: planar, kwargs: {num_flows: 2}}}
budgets:
  smoke: {cells: [planar_2@digits8]}
  quick: {}
"""


def test_grid_expands_to_named_cells_after_the_explicit_ones(tmp_path: Path) -> None:
    path = tmp_path / "gridded.yaml"
    path.write_text(GRID_SUITE)
    suite = load_suite(path)
    assert [c.name for c in suite.cells] == [
        "explicit",
        "diagonal@digits28",
        "planar_2@digits28",
        "diagonal@digits8",
        "planar_2@digits8",
    ]
    planar = OmegaConf.to_container(suite.cells[4].config)
    assert planar == {"dataset": {"name": "digits8"}, "posterior": {"name": "planar", "kwargs": {"num_flows": 2}}}
    assert "grid" not in suite or suite.grid is None
    cfg = OmegaConf.structured(RunConfig)
    cfg.suite = suite
    cfg.budget.name = "smoke"
    (cell,) = resolve_cells(cfg)
    posterior = cell.config.posterior
    assert (cell.cell, posterior.name, posterior.kwargs.num_flows) == ("planar_2@digits8", "planar", 2)


def test_flows_grid_spells_every_family_on_every_dataset() -> None:
    suite = load_suite("flows")
    names = [c.name for c in suite.cells]
    assert len(names) == 63 and len(set(names)) == 63
    assert names[:2] == ["diagonal@digits28", "full_covariance@digits28"]
    assert names[-1] == "iaf_4@caltech101_silhouettes"


@pytest.mark.parametrize(
    ("grid", "match"),
    [
        ('{name: "{posterior}", axes: {posterior: {}}}', "axis 'posterior' has no labels"),
        ('{name: "{family}@{dataset}", axes: {dataset: {a: {}}}}', "must name every axis as"),
        ('{name: "x", axes: {}}', "grid has no axes"),
        ('{name: "{a}", axes: {a: {x: {}}}, colour: red}', "does not match the grid schema"),
    ],
)
def test_malformed_grids_name_the_problem(tmp_path: Path, grid: str, match: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(f"name: bad\ngrid: {grid}\n")
    with pytest.raises(SuiteError, match=match):
        load_suite(path)


@pytest.mark.parametrize(
    ("cell", "match"),
    [
        ("{dataset: {name: mnsit}}", r"cell 'c': dataset.name: unknown dataset 'mnsit'.*Did you mean 'mnist'"),
        ("{posterior: {name: planer}}", r"cell 'c': posterior.name: unknown posterior 'planer'"),
        ("{estimator: {name: iwea}}", r"cell 'c': estimator.name: unknown estimator 'iwea'"),
        ("{model: {name: mlp}}", r"cell 'c': model.name: unknown model 'mlp'"),
        ("{kernels: {ops: [log_mean_exp, softmax]}}", r"cell 'c': kernels.ops='softmax': not a benchmarked op"),
        (
            "{posterior: {name: planar}, estimator: {name: elbo}}",
            r"estimator 'elbo' does not work with the posterior family 'planar'; it supports elbo_mc, iwae, renyi",
        ),
    ],
)
def test_cells_are_checked_against_the_registries_when_a_suite_loads(tmp_path: Path, cell: str, match: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(f"name: bad\ncells: [{{name: c, config: {cell}}}]\nbudgets: {{paper: {{}}}}\n")
    with pytest.raises(SuiteError, match=match):
        load_suite(path)


def test_a_budget_layer_is_checked_with_the_cells_it_runs(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("name: bad\ncells: [{name: c}]\nbudgets: {paper: {config: {dataset: {name: omniglott}}}}\n")
    with pytest.raises(SuiteError, match=r"cell 'c' \(budget 'paper'\): dataset.name: unknown dataset 'omniglott'"):
        load_suite(path)
