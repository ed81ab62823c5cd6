"""The CI speed gate: threshold file checks, pass/fail decisions and messages."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

from vaebench.ops import fused_available

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"
needs_fused = pytest.mark.skipif(not fused_available(), reason="compiled library not loaded")


def load_gate():
    spec = importlib.util.spec_from_file_location("vaebench_gate", BENCH / "gate.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["vaebench_gate"] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def write(tmp: Path, checks: str) -> Path:
    path = tmp / "thresholds.yaml"
    path.write_text(f"device: cpu\ndtype: float32\nthreads: 1\nrepeats: 2\nrounds: 1\nretries: 0\nchecks:\n{checks}")
    return path


def test_shipped_thresholds_are_valid() -> None:
    cfg = load_gate().load_config(BENCH / "gate_thresholds.yaml")
    assert cfg["checks"] and all(c["min_speedup"] > 1 for c in cfg["checks"])
    assert {c["op"] for c in cfg["checks"]} == {"reparameterize", "gaussian_kl", "log_mean_exp", "bernoulli_head"}


@pytest.mark.parametrize(
    ("checks", "match"),
    [
        ("  - {op: log_mean_exp, case: train, mode: fwd}\n", "lacks \\['min_speedup'\\]"),
        ("  - {op: log_mean_exp, case: train, mode: sideways, min_speedup: 1}\n", "mode must be"),
        ("  []\n", "has no checks"),
    ],
)
def test_bad_threshold_files_are_named(tmp_path: Path, checks: str, match: str) -> None:
    with pytest.raises(SystemExit, match=match):
        load_gate().load_config(write(tmp_path, checks))


def test_gate_fails_below_and_passes_above_threshold(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    gate = load_gate()
    # A speedup of a billion cannot be met: the gate must fail and name the op.
    high = write(tmp_path, "  - {op: log_mean_exp, case: train, mode: fwd_bwd, min_speedup: 1.0e9}\n")
    out_json = tmp_path / "gate.json"
    assert gate.main(["--config", str(high), "--allow-reference", "--json", str(out_json)]) == 1
    err = capsys.readouterr().err
    assert "log_mean_exp fwd_bwd at train (64x256)" in err and "below the gate's" in err
    record = json.loads(out_json.read_text())
    assert record["checks"][0]["ok"] is False and record["checks"][0]["speedup"] > 0
    low = write(tmp_path, "  - {op: log_mean_exp, case: train, mode: fwd, min_speedup: 1.0e-9}\n")
    assert gate.main(["--config", str(low), "--allow-reference"]) == 0
    assert "gate: ok" in capsys.readouterr().out
    # --report never fails
    assert gate.main(["--config", str(high), "--report"]) == 0


def test_gate_needs_the_fused_kernels(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    gate = load_gate()
    from vaebench import ops

    monkeypatch.setattr(ops, "backend", lambda device=None: "reference")
    cfg = write(tmp_path, "  - {op: log_mean_exp, case: train, mode: fwd, min_speedup: 1.0e-9}\n")
    assert gate.main(["--config", str(cfg)]) == 1
    assert "fused kernels are not in use" in capsys.readouterr().err


def test_unknown_op_is_named(tmp_path: Path) -> None:
    cfg = write(tmp_path, "  - {op: frobnicate, case: target, mode: fwd, min_speedup: 1}\n")
    with pytest.raises(SystemExit, match="no benchmark for op 'frobnicate'; benchmarked ops: reparameterize"):
        load_gate().main(["--config", str(cfg), "--allow-reference"])
    cfg = write(tmp_path, "  - {op: log_mean_exp, case: huge, mode: fwd, min_speedup: 1}\n")
    with pytest.raises(SystemExit, match="has no case 'huge'; its cases: target"):
        load_gate().main(["--config", str(cfg), "--allow-reference"])


def fake_measure(gate, medians: list[float]):
    """A `measure` whose successive attempts have these median speedups (three rounds each)."""
    calls = iter(medians)

    def measure(check, cfg, slow_down=1):
        m = next(calls)
        return (64, 256), gate.Attempt([m * 0.9, m, m * 1.5], [1e-3, 1.1e-3, 1.2e-3], [1e-3 / m] * 3)

    return measure


def test_a_check_below_threshold_is_retried_and_passes_when_the_load_was_a_burst(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    gate = load_gate()
    monkeypatch.setattr(gate, "measure", fake_measure(gate, [1.2, 3.0]))
    cfg = write(tmp_path, "  - {op: log_mean_exp, case: target, mode: fwd, min_speedup: 2.0}\n").read_text()
    path = tmp_path / "retry.yaml"
    path.write_text(cfg.replace("retries: 0", "retries: 2"))
    assert gate.main(["--config", str(path), "--allow-reference"]) == 0
    out = capsys.readouterr().out
    assert "speedup  3.00x (median of 3 rounds 2.70-4.50x; min 2.00x, attempt 2)" in out


@pytest.mark.parametrize(
    ("load", "words"),
    [(9.0, "the machine was loaded: load average 9.0"), (0.5, "the machine was quiet: load average 0.5")],
)
def test_a_failure_says_whether_the_machine_was_loaded(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, load: float, words: str
) -> None:
    gate = load_gate()
    monkeypatch.setattr(gate, "measure", fake_measure(gate, [1.1, 1.0, 1.2]))
    monkeypatch.setattr(gate.os, "getloadavg", lambda: (load, load, load))
    monkeypatch.setattr(gate.os, "cpu_count", lambda: 2)
    path = tmp_path / "retry.yaml"
    path.write_text(
        write(tmp_path, "  - {op: log_mean_exp, case: target, mode: fwd, min_speedup: 2.0}\n")
        .read_text()
        .replace("retries: 0", "retries: 2")
    )
    assert gate.main(["--config", str(path), "--allow-reference"]) == 1
    err = capsys.readouterr().err
    assert "fused is 1.10x, 1.00x, 1.20x the reference in 3 attempt(s), below the gate's 2.00x" in err
    assert words in err and ("quieter machine" in err) == (load > 3)


@needs_fused
def test_a_really_slowed_op_fails_even_with_retries(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The fused log_mean_exp replaced by its reference (a lost kernel): about 1x, never 1.5x."""
    gate = load_gate()
    path = tmp_path / "slow.yaml"
    path.write_text(
        "device: cpu\nthreads: 1\nrepeats: 3\nrounds: 3\nretries: 1\nchecks:\n"
        "  - {op: log_mean_exp, case: train, mode: fwd, min_speedup: 1.5}\n"
    )
    assert gate.main(["--config", str(path), "--slow-down", "log_mean_exp=reference"]) == 1
    assert "in 2 attempt(s), below the gate's 1.50x" in capsys.readouterr().err
    with pytest.raises(SystemExit, match="--slow-down must be OP=N"):
        gate.main(["--config", str(path), "--slow-down", "log_mean_exp=x"])
