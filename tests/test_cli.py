"""The `vaebench` command, in process: run (Hydra), cache/force, sweeps, errors, other commands."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from vaebench.cli import main
from vaebench.results import load_records

REPO = Path(__file__).resolve().parent.parent
# The smallest end-to-end suite (a user suite folder, found through suite_dirs=): two cells on
# 8x8 digits; the command line then makes it smaller still.
TINY_SUITE = """
name: tiny
description: two families on 8x8 digits, for the CLI tests
task: train_eval
metrics: [nll, elbo]
common: {dataset: {name: digits8}, model: {name: mlp_burda, kwargs: {hidden: [16], latent_dim: 4}},
         estimator: {name: elbo_mc}}
cells:
  - {name: diagonal, config: {posterior: {name: diagonal}}}
  - {name: planar, config: {posterior: {name: planar, kwargs: {num_flows: 2}}}}
budgets:
  smoke: {config: {dataset: {train_size: 100, test_size: 20}, train: {epochs: 1, batch_size: 20}}}
"""
TINY = [
    "suite=tiny",
    "budget=smoke",
    "progress=false",
    "dataset.train_size=40",
    "dataset.test_size=10",
    "eval.nll_samples=10",
    "eval.chunk_size=10",
    "eval.active_units_examples=20",
]


@pytest.fixture(scope="module")
def suite_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("suites")
    (folder / "tiny.yaml").write_text(TINY_SUITE)
    return folder


@pytest.fixture
def run(suite_dir: Path):
    def go(tmp: Path, *args: str) -> int:
        return main(["run", *TINY, f"results_dir={tmp}", f"suite_dirs=[{suite_dir}]", *args])

    return go


def test_run_writes_records_tables_and_caches(tmp_path: Path, capsys: pytest.CaptureFixture[str], run) -> None:
    assert run(tmp_path) == 0
    out = capsys.readouterr().out
    records = load_records(tmp_path)
    assert sorted(r.cell for r in records) == ["diagonal", "planar"]
    r = records[0]
    assert r.config["dataset"]["train_size"] == 40  # the command line wins over the suite
    assert r.environment["torch"] and r.wall_time_s > 0 and "nll" in r.metrics and r.metrics["nll"].se is not None
    assert (tmp_path / "tables" / "tiny.md").is_file() and "tables:" in out and "records:" in out
    assert not (Path.cwd() / "outputs").exists(), "Hydra must not write into the working directory"
    # the same config again: nothing recomputed
    assert run(tmp_path) == 0
    assert "cached" in capsys.readouterr().out and len(load_records(tmp_path)) == 2
    # force=true recomputes (append-only: a third record appears for that cell)
    assert run(tmp_path, "cells=[diagonal]", "force=true") == 0
    assert len(load_records(tmp_path)) == 3


def test_multirun_sweeps_seeds(tmp_path: Path, suite_dir: Path) -> None:
    args = ["run", "-m", *TINY, f"results_dir={tmp_path}", f"suite_dirs=[{suite_dir}]", "cells=[diagonal]", "seed=0,1"]
    assert main(args) == 0
    assert sorted(r.seed for r in load_records(tmp_path)) == [0, 1]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["suite=nope"], "nope"),
        (["suite=exact", "frobnicate=1"], "frobnicate"),
        (["suite=exact", "seed=abc"], "seed"),
        (["suite=exact", "train.epochz=3"], "epochz"),
        (["suite=exact", "dataset=nope"], "nope"),
        (["suite=exact", "budget=smoke", "cells=[zz]"], "has no cell ['zz']"),
        (
            [
                "suite=exact",
                "budget=smoke",
                "cells=[iwae]",
                "dataset=mnist",
                "dataset.data_dir=/nonexistent",
                "dataset.download=false",
                "progress=false",
            ],
            "mnist",
        ),
    ],
)
def test_errors_are_one_paragraph_without_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], expected: str
) -> None:
    code = main(["run", *args, f"results_dir={tmp_path}"])
    err = capsys.readouterr().err
    assert code != 0
    assert expected in err
    assert "Traceback" not in err


def test_no_suite_says_how_to_choose_one(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run"]) != 0
    err = capsys.readouterr().err
    assert "suite" in err and "iaf" in err


def test_debug_shows_the_traceback(tmp_path: Path) -> None:
    env = dict(os.environ, VAEBENCH_DEBUG="1", PYTHONPATH=str(REPO))
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "vaebench.cli",
            "run",
            "suite=exact",
            "budget=smoke",
            "cells=[zz]",
            f"results_dir={tmp_path}",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert proc.returncode != 0 and "Traceback" in proc.stderr and "ConfigError" in proc.stderr


def test_list_datasets_env(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for name in ("iaf", "flows", "iwae", "estimators", "kernels", "exact", "digits28", "planar", "dreg", "mlp_burda"):
        assert name in out
    assert main(["datasets", "digits8"]) == 0
    assert "digits8" in capsys.readouterr().out
    assert main(["env", "--json"]) == 0
    env = json.loads(capsys.readouterr().out)
    assert {"vaebench_version", "git_commit", "torch", "ops_backend", "build_info", "cpu"} <= set(env)
    assert main(["datasets", "nope"]) == 2
    assert "unknown dataset 'nope'" in capsys.readouterr().err


def test_leaderboard_and_compare_commands(tmp_path: Path, capsys: pytest.CaptureFixture[str], run) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    assert run(a, "cells=[diagonal]") == 0
    assert run(b, "cells=[diagonal]", "seed=1") == 0  # the same protocol, another seed
    assert run(tmp_path / "c", "cells=[diagonal]", "train.epochs=2") == 0  # another protocol
    capsys.readouterr()
    assert main(["leaderboard", "--results", str(a)]) == 0
    out = capsys.readouterr().out
    assert "tiny" in out and (a / "tables" / "tiny.csv").is_file() and (a / "tables" / "index.html").is_file()
    assert main(["compare", str(a), str(b), "--all"]) == 0
    out = capsys.readouterr().out
    assert "shared metrics with an error estimate moved" in out and "nll" in out and "nan" not in out
    assert main(["compare", str(a), str(tmp_path / "c")]) == 2
    assert "no protocol in common" in capsys.readouterr().err
    assert main(["compare", str(a), str(tmp_path / "missing")]) == 2
    assert "no results at" in capsys.readouterr().err


@pytest.mark.slow
def test_submitit_local_launcher(tmp_path: Path, suite_dir: Path) -> None:
    """The Slurm path's launcher, with submitit's local executor: a job in a subprocess."""
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher", reason="pip install vaebench[slurm]")
    args = [
        "run",
        "-m",
        *TINY,
        f"results_dir={tmp_path}",
        f"suite_dirs=[{suite_dir}]",
        "cells=[diagonal]",
        "seed=3",
        "hydra/launcher=submitit_local",
        "hydra.launcher.timeout_min=10",
    ]
    assert main(args) == 0
    assert [r.seed for r in load_records(tmp_path)] == [3]
    assert list((tmp_path / "hydra" / "multirun").rglob(".submitit")), "submitit logs go under results_dir"


@pytest.mark.slow
def test_ray_launcher(tmp_path: Path, suite_dir: Path) -> None:
    """The Ray path's launcher on a local Ray instance: two jobs in Ray worker processes."""
    pytest.importorskip("hydra_plugins.hydra_ray_launcher", reason="pip install vaebench[ray]")
    import ray

    args = [
        "run",
        "-m",
        *TINY,
        f"results_dir={tmp_path}",
        f"suite_dirs=[{suite_dir}]",
        "cells=[diagonal]",
        "seed=3,4",
        "hydra/launcher=ray",
        "+hydra.launcher.ray.init.num_cpus=2",
        "+hydra.launcher.ray.init.include_dashboard=false",
    ]
    try:
        assert main(args) == 0
    finally:
        ray.shutdown()
    assert sorted(r.seed for r in load_records(tmp_path)) == [3, 4]


def test_run_help_lists_the_groups(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--help"]) == 0
    out = capsys.readouterr().out
    assert "vaebench run suite=NAME" in out
    assert (
        "suite: estimators, exact, flows, iaf, iwae, kernels" in out
        and "posterior:" in out
        and "budget: paper, quick, smoke" in out
    )


def test_ctrl_c_says_how_to_resume(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import vaebench.runner.run as run_module

    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(run_module, "run_suite", interrupted)
    assert (
        main(["run", "suite=exact", "budget=smoke", f"results_dir={tmp_path}"]) == 2
    )  # issue 13: every user-caused stop exits 2
    err = capsys.readouterr().err
    assert "interrupted" in err and "resume" in err and "Traceback" not in err
