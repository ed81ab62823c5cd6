"""A config error on the paper budget surfaces fast (issue 13: in under 5 s): the command line's
suite is the only suite file read, Hydra composes once, and nothing that only a finished run
needs is imported.

Guarded by what the validation path loads, not by a timing that a loaded machine would flake."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from vaebench.cli import _suites_from_args

REPO = Path(__file__).resolve().parent.parent
# What a finished run, a leaderboard or a sweep needs, and a config error does not.
HEAVY = ("matplotlib", "pandas", "jinja2", "scipy", "ray", "submitit", "sklearn")

# argv: the heavy modules (JSON), the results folder, then the command line
PROBE = """
import json, sys
from hydra.core.config_store import ConfigStore
from vaebench.cli import main

from hydra._internal.hydra import Hydra

composed = []
compose = Hydra.compose_config
Hydra.compose_config = lambda self, *a, **k: composed.append(1) or compose(self, *a, **k)
heavy_names, results = json.loads(sys.argv[1]), sys.argv[2]
code = main(sys.argv[3:] + ["results_dir=" + results])
suites = sorted(name.removesuffix(".yaml") for name in ConfigStore.instance().list("suite"))
heavy = sorted(m for m in heavy_names if m in sys.modules)
print(json.dumps({"code": code, "suites": suites, "heavy": heavy, "composed": len(composed)}))
"""


def _probe(tmp_path: Path, *args: str) -> dict[str, object]:
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(HEAVY), str(tmp_path / "results"), *args],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=dict(os.environ, PYTHONPATH=str(REPO)),
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    out["stderr"] = proc.stderr
    return out


def test_a_paper_config_error_reads_one_suite_and_no_heavy_module(tmp_path: Path) -> None:
    out = _probe(tmp_path, "run", "suite=iaf", "budget=paper", "train.epochs=-1")
    assert out["code"] == 2
    assert "train.epochs=-1: must be an integer >= 0 or null" in str(out["stderr"])
    assert out["suites"] == ["iaf"]
    assert out["heavy"] == []
    assert out["composed"] == 1  # Hydra's mode-only composition is skipped (vaebench.cli._compose_once)


def test_without_a_suite_every_suite_is_a_choice(tmp_path: Path) -> None:
    out = _probe(tmp_path, "run", "budget=paper")
    assert out["code"] != 0 and "iaf" in str(out["stderr"])
    assert {"iaf", "flows", "iwae", "estimators", "kernels", "exact"} <= set(out["suites"])  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["suite=iaf", "budget=paper"], ["iaf"]),
        (["-m", "suite=iaf,flows", "seed=0,1"], ["iaf", "flows"]),
        (["suite=iaf", "suite=exact"], ["exact"]),  # the last one wins, as in Hydra
        (["budget=paper"], None),  # none named: Hydra's error lists every suite
        (["-m", "suite=glob(*)"], None),  # a pattern is matched against every suite
        (["suite=[iaf"], None),  # malformed: Hydra reports it, with every suite known
    ],
)
def test_the_suites_a_command_line_chooses(args: list[str], expected: list[str] | None) -> None:
    assert _suites_from_args(args) == expected
