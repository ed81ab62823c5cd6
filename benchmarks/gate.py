"""The CI speed gate: fail when a fused op loses its speedup over the reference.

    python benchmarks/gate.py [--config benchmarks/gate_thresholds.yaml] [--report] [--json OUT]

For each check in the thresholds file, the fused op and its eager reference are timed in this
process (same inputs, from the fused ops' one setup factory, vaebench.evaluation.op_benchmark,
which also holds each op's named cases), alternating in rounds so both see the same machine noise;
speedup = best time(reference) / best time(fused) (load from other processes only adds time,
so best times are the steadier estimate on a shared machine). Exit 0
when every speedup meets its `min_speedup`; exit 1 with one line per failure otherwise, or
when the fused kernels are not loaded at all. `--report` prints the table and always exits 0
(for deriving thresholds).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
DEFAULT_CONFIG = HERE / "gate_thresholds.yaml"


def load_config(path: Path) -> dict[str, Any]:
    import yaml

    if not path.is_file():
        raise SystemExit(f"gate: thresholds file {path} does not exist; pass --config PATH")
    cfg = yaml.safe_load(path.read_text())
    for i, check in enumerate(cfg.get("checks") or []):
        missing = {"op", "case", "mode", "min_speedup"} - set(check)
        if missing:
            raise SystemExit(f"gate: {path}: check #{i} lacks {sorted(missing)}: {check}")
        if check["mode"] not in ("fwd", "fwd_bwd"):
            raise SystemExit(f"gate: {path}: check #{i}: mode must be 'fwd' or 'fwd_bwd', got {check['mode']!r}")
    if not cfg.get("checks"):
        raise SystemExit(f"gate: {path} has no checks")
    return cfg


def bench_case(op: str, case: str) -> Any:
    """The named case of `op` (its size and input options), as benchmarks/bench_<op>.py runs it."""
    from vaebench.evaluation.op_benchmark import OP_BENCHMARKS

    if op not in OP_BENCHMARKS:
        raise SystemExit(f"gate: no benchmark for op '{op}'; benchmarked ops: {', '.join(OP_BENCHMARKS)}")
    cases = OP_BENCHMARKS[op].cases
    if case not in cases:
        raise SystemExit(f"gate: {op} has no case '{case}'; its cases: {', '.join(cases)}")
    return cases[case]


def measure(check: dict[str, Any], cfg: dict[str, Any]) -> tuple[tuple[int, ...], dict[str, float]]:
    """The case's size and the best (and median) seconds of its reference and fused paths.

    `measure_op` sets both up through the one setup factory (warm-up outside timing) and
    alternates them in rounds.
    """
    import torch

    from vaebench.evaluation.op_benchmark import measure_op

    case = bench_case(check["op"], check["case"])
    mode = check["mode"]
    timed = measure_op(
        check["op"],
        case.size,
        ("reference", "fused"),
        (mode,),
        dtype=getattr(torch, cfg.get("dtype", "float32")),
        device=cfg.get("device", "cpu"),
        repeats=int(cfg.get("repeats", 30)),
        rounds=int(cfg.get("rounds", 3)),
        **case.options,
    )
    # Best times: other processes on a shared machine only ever add time, so the minimum is
    # the steadier estimate of what each path costs (the medians are reported beside it).
    best, median = timed.bests(), timed.medians()
    return case.size, {p: best[f"{p}/{mode}"] for p in ("reference", "fused")} | {
        f"{p}_median": median[f"{p}/{mode}"] for p in ("reference", "fused")
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", type=Path, default=DEFAULT_CONFIG)
    parser.add_argument("--report", action="store_true", help="print the speedups; never fail")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    parser.add_argument("--allow-reference", action="store_true",
                        help="run even when the fused kernels are not loaded (tests of the gate itself)")
    args = parser.parse_args(argv)
    cfg = load_config(args.config)

    import torch

    from vaebench import ops

    torch.set_num_threads(int(cfg.get("threads", torch.get_num_threads())))
    device = cfg.get("device", "cpu")
    backend = ops.backend(device)
    if backend == "reference" and not (args.report or args.allow_reference):
        print(f"gate: FAIL: the fused kernels are not in use on {device} ({ops.load_error()}); "
              "build the extension (pip install --no-build-isolation .) before running the gate", file=sys.stderr)
        return 1
    rows, failures = [], []
    for check in cfg["checks"]:
        shape, t = measure(check, cfg)
        speedup = t["reference"] / t["fused"]
        ok = speedup >= float(check["min_speedup"])
        size = f"{check['case']} ({'x'.join(map(str, shape))})"
        rows.append({**check, "size": size, "reference_ms": 1e3 * t["reference"], "fused_ms": 1e3 * t["fused"],
                     "reference_median_ms": 1e3 * t["reference_median"], "fused_median_ms": 1e3 * t["fused_median"],
                     "speedup": speedup, "median_speedup": t["reference_median"] / t["fused_median"], "ok": ok})
        print(f"{'ok  ' if ok else 'FAIL'} {check['op']:<15} {size:<28} {check['mode']:<8} reference "
              f"{1e3 * t['reference']:8.3f} ms  fused {1e3 * t['fused']:8.3f} ms  speedup {speedup:5.2f}x "
              f"(min {float(check['min_speedup']):.2f}x)")
        if not ok:
            failures.append(
                f"{check['op']} {check['mode']} at {size}: fused is {speedup:.2f}x the reference, below the "
                f"gate's {float(check['min_speedup']):.2f}x ({args.config.name})"
            )
    if args.json:
        from vaebench.environment import environment

        args.json.write_text(json.dumps({"backend": backend, "checks": rows, "environment": environment(device)},
                                        indent=2, default=str))
    if failures and not args.report:
        print("gate: FAIL: a fused op lost its speedup over the reference:\n  " + "\n  ".join(failures)
              + "\nProfile it with `pytest benchmarks/bench_<op>.py --benchmark-only`; if the machine "
              "changed, re-derive the thresholds with --report.", file=sys.stderr)
        return 1
    if args.report:
        print(f"gate: report only ({len(rows)} checks, backend {backend}, {len(failures)} below threshold)")
    else:
        print(f"gate: ok ({len(rows)} checks, backend {backend})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
