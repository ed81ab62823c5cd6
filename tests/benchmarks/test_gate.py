"""The CI speed gate: threshold file checks, pass/fail decisions and messages."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"


def load_gate():
    spec = importlib.util.spec_from_file_location("vaebench_gate", BENCH / "gate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def write(tmp: Path, checks: str) -> Path:
    path = tmp / "thresholds.yaml"
    path.write_text(f"device: cpu\ndtype: float32\nthreads: 1\nrepeats: 2\nrounds: 1\nchecks:\n{checks}")
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


def test_gate_needs_the_fused_kernels(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
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
