"""Suite files: discovery across folders, schema checks, every shipped suite valid."""

from __future__ import annotations

from pathlib import Path

import pytest
from omegaconf import OmegaConf

from vaebench.config import RunConfig
from vaebench.runner.resolve import resolve_cells
from vaebench.runner.suite import SUITE_DIRS_ENV, SuiteError, available_suites, find_suite, load_suite

SHIPPED = ["estimators", "exact", "flows", "iaf", "iwae", "kernels"]


def test_shipped_suites_are_found() -> None:
    assert set(SHIPPED) <= set(available_suites())


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
        ("name: bad\ncells: [{name: a}]\nbudgets: {smoke: {cells: [b]}}\n", "budget 'smoke' names unknown cells \\['b'\\]"),
    ],
)
def test_malformed_suites_name_the_problem(tmp_path: Path, text: str, match: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(SuiteError, match=match):
        load_suite(path)
