"""Every failure that is the user's: one paragraph with the cause and the fix, exit code 2.

Only real bugs say "internal error" (exit code 1). One test per case of issue 13.
"""

from __future__ import annotations

import errno
import shutil
from pathlib import Path

import pytest

import vaebench.runner.run as run_module
from vaebench.cli import main
from vaebench.results import records_dir

TINY_SUITE = """
name: tiny
description: one family on 8x8 digits, for the CLI error tests
task: train_eval
metrics: [nll]
common: {dataset: {name: digits8}, model: {name: mlp_burda, kwargs: {hidden: [8], latent_dim: 2}},
         estimator: {name: elbo_mc}}
cells:
  - {name: diagonal, config: {posterior: {name: diagonal}}}
budgets:
  smoke: {config: {dataset: {train_size: 20, test_size: 10}, train: {epochs: 1, batch_size: 10},
                   eval: {nll_samples: 5, chunk_size: 5, active_units_examples: 10}}}
"""


@pytest.fixture(scope="module")
def suite_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("suites")
    (folder / "tiny.yaml").write_text(TINY_SUITE)
    return folder


def tiny(suite_dir: Path, results: Path, *args: str) -> list[str]:
    return [
        "run",
        "suite=tiny",
        "budget=smoke",
        "progress=false",
        f"suite_dirs=[{suite_dir}]",
        f"results_dir={results}",
        *args,
    ]


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory, suite_dir: Path) -> Path:
    """A results folder with one finished run of the tiny suite (copied by the tests that damage it)."""
    results = tmp_path_factory.mktemp("finished")
    assert main(tiny(suite_dir, results)) == 0
    return results


@pytest.fixture
def no_work(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """Fails a test if a run starts: config errors must surface before any work."""
    calls: list[object] = []
    monkeypatch.setattr(run_module, "execute", lambda *a, **k: calls.append(a) or pytest.fail("a run started"))
    return calls


def one_paragraph(err: str) -> str:
    assert "Traceback" not in err and "internal error" not in err and "HYDRA_FULL_ERROR" not in err, err
    return err


def test_bad_eval_values_fail_before_training_naming_the_keys(
    tmp_path: Path, suite_dir: Path, capsys: pytest.CaptureFixture[str], no_work: list[object]
) -> None:
    assert main(tiny(suite_dir, tmp_path, "eval.nll_samples=0", "eval.chunk_size=0")) == 2
    err = one_paragraph(capsys.readouterr().err)
    assert "eval.nll_samples=0: must be an integer >= 1" in err and "eval.chunk_size=0" in err
    assert "2 problems" in err and no_work == []


def test_unknown_key_lists_the_section_without_hydras_append_hint(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["run", "suite=iaf", "budget=paper", "train.epochz=3", f"results_dir={tmp_path}"]) == 2
    err = one_paragraph(capsys.readouterr().err)
    assert "did you mean 'epochs'" in err and "valid keys: batch_size" in err and "+train.epochz" not in err


def test_results_dir_that_is_a_file(tmp_path: Path, suite_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    file = tmp_path / "a_file"
    file.write_text("not a folder")
    assert main(tiny(suite_dir, file)) == 2
    err = one_paragraph(capsys.readouterr().err)
    assert f"results_dir='{file}': {file} is a file, not a folder" in err and "results_dir=PATH" in err


def test_results_dir_that_cannot_be_created(
    tmp_path: Path, suite_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    file = tmp_path / "a_file"
    file.write_text("x")
    assert main(tiny(suite_dir, file / "results")) == 2
    assert "cannot be created" in one_paragraph(capsys.readouterr().err)


@pytest.mark.parametrize(
    ("code", "cause"),
    [
        (errno.ENOSPC, "the disk is full"),
        (errno.EACCES, "permission denied"),
        (errno.EROFS, "the file system is read-only"),
    ],
)
def test_os_errors_while_writing_a_record(
    tmp_path: Path,
    suite_dir: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    code: int,
    cause: str,
) -> None:
    target = tmp_path / "records" / "tiny" / "diagonal.json"

    def fail(record: object, results_dir: object) -> None:
        raise OSError(code, "simulated", str(target))

    monkeypatch.setattr(run_module, "write_record", fail)
    assert main(tiny(suite_dir, tmp_path)) == 2
    err = one_paragraph(capsys.readouterr().err)
    assert err.startswith(f"vaebench: error: {cause} ({target}): ") and err.count("\n") == 1


def test_missing_data_is_named_before_any_work(
    tmp_path: Path, suite_dir: Path, capsys: pytest.CaptureFixture[str], no_work: list[object]
) -> None:
    assert (
        main(
            tiny(
                suite_dir, tmp_path, "dataset=mnist", f"dataset.data_dir={tmp_path / 'data'}", "dataset.download=false"
            )
        )
        == 2
    )
    err = one_paragraph(capsys.readouterr().err)
    assert "t10k-images-idx3-ubyte.gz" in err and "dataset.download=true" in err


def test_ctrl_c_is_a_user_stop(
    tmp_path: Path, suite_dir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def interrupt(*a: object, **k: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(run_module, "execute", interrupt)
    assert main(tiny(suite_dir, tmp_path)) == 2
    assert "interrupted (Ctrl-C)" in one_paragraph(capsys.readouterr().err)


def test_a_bug_says_internal_error_with_exit_1(
    tmp_path: Path, suite_dir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def bug(*a: object, **k: object) -> None:
        raise ZeroDivisionError("oops")

    monkeypatch.setattr(run_module, "execute", bug)
    assert main(tiny(suite_dir, tmp_path)) == 1
    err = capsys.readouterr().err
    assert "internal error (ZeroDivisionError: oops)" in err and "VAEBENCH_DEBUG=1" in err


def test_dry_run_prints_the_cells_and_an_estimate_without_running(
    finished: Path, tmp_path: Path, suite_dir: Path, capsys: pytest.CaptureFixture[str], no_work: list[object]
) -> None:
    results = tmp_path / "r"
    shutil.copytree(finished, results)
    before = sorted(records_dir(results).rglob("*.json"))
    assert main(tiny(suite_dir, results, "--dry-run")) == 0
    out = capsys.readouterr().out
    assert "config valid, 1 run(s)" in out and "cached" in out and "estimated total: 0 s" in out
    assert main(tiny(suite_dir, results, "train.epochs=3", "--dry-run")) == 0  # new: scaled from the earlier run
    out = capsys.readouterr().out
    assert (
        "new" in out and "scaled by work units from 1 earlier run(s)" in out and "estimated total: unknown" not in out
    )
    assert main(["validate", *tiny(suite_dir, tmp_path / "empty")[1:]]) == 0
    assert "estimated total: unknown" in capsys.readouterr().out
    assert sorted(records_dir(results).rglob("*.json")) == before and not (tmp_path / "empty" / "records").exists()


def test_a_damaged_record_is_recomputed_by_run(
    finished: Path, tmp_path: Path, suite_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    results = tmp_path / "r"
    shutil.copytree(finished, results)
    (record,) = records_dir(results, "tiny").glob("*.json")
    record.write_text(record.read_text()[:100])  # torn by hand
    assert main(tiny(suite_dir, results)) == 0
    out = capsys.readouterr().out
    assert "damaged record skipped, recomputing" in out and record.name in out.replace("\n", "")
    assert "new" in out
    fresh = [p for p in records_dir(results, "tiny").glob("*.json") if p != record]
    assert len(fresh) == 1 and record.exists()  # a new record beside the damaged one (append-only)


def test_leaderboard_compare_and_records_check_skip_damaged_files(
    finished: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    results = tmp_path / "r"
    shutil.copytree(finished, results)
    folder = records_dir(results, "tiny")
    (folder / "list.json").write_text("[1,2,3]")
    (good,) = [p for p in folder.glob("diagonal__*.json")]
    (folder / "abc.json").write_text(good.read_text().replace('"mean": ', '"mean": "abc", "x": ', 1))
    assert main(["leaderboard", "--results", str(results)]) == 0
    captured = capsys.readouterr()
    assert "skipped 2 file(s)" in captured.err and "list.json" in captured.err and "abc.json" in captured.err
    assert "diagonal" in captured.out
    assert main(["leaderboard", "--results", str(results), "--strict"]) == 2
    assert "2 damaged or foreign file(s)" in one_paragraph(capsys.readouterr().err)
    assert main(["compare", str(results), str(results), "--all"]) == 0
    assert "skipped 2 file(s)" in capsys.readouterr().err
    assert main(["compare", str(results), str(results), "--strict"]) == 2
    capsys.readouterr()
    assert main(["records", "check", str(results)]) == 2
    out = capsys.readouterr().out
    assert "list.json: not a vaebench run record" in out and "abc.json" in out
    assert "1 readable record(s), 2 problem(s)" in out
    (folder / "list.json").unlink()
    (folder / "abc.json").unlink()
    assert main(["records", "check", str(results)]) == 0


def test_a_truncated_checkpoint_is_user_data_not_a_bug(
    finished: Path, tmp_path: Path, suite_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    results = tmp_path / "r"
    shutil.copytree(finished, results)
    shutil.rmtree(records_dir(results))  # the run is unfinished again: it resumes from its checkpoint
    (checkpoint,) = (results / "runs").rglob("last.pt")
    checkpoint.write_bytes(checkpoint.read_bytes()[:50])
    assert main(tiny(suite_dir, results)) == 2
    err = one_paragraph(capsys.readouterr().err)
    assert "CheckpointError" in err and str(checkpoint) in err and "delete it to start over" in err
