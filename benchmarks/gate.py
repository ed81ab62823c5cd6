"""The CI speed gate: fail when a fused op loses its speedup over the reference, not when the
machine is busy.

    python benchmarks/gate.py [--config benchmarks/gate_thresholds.yaml] [--report] [--json OUT]

For each check in the thresholds file, the fused op and its eager reference are set up once
(the fused ops' one setup factory, vaebench.benchmarking.op_benchmark, which also holds each op's
named cases) and timed call by call, alternating reference and fused, in `rounds` rounds of
`repeats` pairs. Each round gives one ratio, speedup = best time(reference) / best time(fused)
within the round: neighbouring calls see the same load, and load from other processes only
adds time. The decision is on the median of the rounds' ratios:

- pass when median >= min_speedup;
- otherwise retry (`retries` times, new rounds): a burst of load that hit one attempt passes on
  the next, while a fused op that really lost its speedup fails every attempt;
- fail when every attempt's median is below min_speedup. The message then says whether the
  machine was loaded (load average per CPU, the spread of the reference's time over rounds),
  so a failure under load is told apart from one on a quiet machine.

Exit 0 when every check passes; exit 1 with one line per failure otherwise, or when the fused
kernels are not loaded. `--report` prints the table and always exits 0 (to derive thresholds).
`--slow-down OP=N` makes the fused OP run N times per call, `OP=reference` replaces it by the
reference: the gate's own test that a really slowed op still fails (never used in CI).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
from collections.abc import Callable
from dataclasses import dataclass
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
    from vaebench.benchmarking.op_benchmark import OP_BENCHMARKS

    if op not in OP_BENCHMARKS:
        raise SystemExit(f"gate: no benchmark for op '{op}'; benchmarked ops: {', '.join(OP_BENCHMARKS)}")
    cases = OP_BENCHMARKS[op].cases
    if case not in cases:
        raise SystemExit(f"gate: {op} has no case '{case}'; its cases: {', '.join(cases)}")
    return cases[case]


@dataclass
class Attempt:
    """One attempt at a check: the per-round speedups and best times (seconds) per round."""

    speedups: list[float]
    reference_s: list[float]
    fused_s: list[float]

    @property
    def median(self) -> float:
        return statistics.median(self.speedups)


def _slowed(call: Callable[[], object], times: int) -> Callable[[], object]:
    def call_n_times() -> object:
        out = None
        for _ in range(times):
            out = call()
        return out

    return call_n_times


def measure(check: dict[str, Any], cfg: dict[str, Any], slow_down: int | str = 1) -> tuple[tuple[int, ...], Attempt]:
    """The case's size and one attempt: `rounds` rounds of `repeats` alternating call pairs.

    `slow_down`: N runs the fused call N times; "reference" replaces it by the reference (a
    kernel lost to a fallback). Only the gate's own tests use it.
    """
    import torch

    from vaebench.benchmarking.op_benchmark import setup_bench
    from vaebench.benchmarking.throughput import time_rounds

    case = bench_case(check["op"], check["case"])
    mode, device = check["mode"], cfg.get("device", "cpu")
    dtype = getattr(torch, cfg.get("dtype", "float32"))
    benches = {
        p: setup_bench(check["op"], p, mode, case.size, dtype, device, **case.options) for p in ("reference", "fused")
    }
    fused = benches["reference"].call if slow_down == "reference" else _slowed(benches["fused"].call, int(slow_down))
    calls = {"reference": benches["reference"].call, "fused": fused}
    attempt = Attempt([], [], [])
    for _ in range(int(cfg.get("rounds", 7))):
        best = {p: math.inf for p in calls}
        for _ in range(int(cfg.get("repeats", 10))):  # call by call: a pair sees the same load
            for p, call in calls.items():
                best[p] = min(best[p], time_rounds({p: call}, device, repeats=1)[p][0])
        attempt.speedups.append(best["reference"] / best["fused"])
        attempt.reference_s.append(best["reference"])
        attempt.fused_s.append(best["fused"])
    return case.size, attempt


def machine_load(attempts: list[Attempt]) -> tuple[bool, str]:
    """Whether the machine was loaded while measuring, and the evidence in words.

    Loaded: a 1-minute load average of at least 1 per CPU beyond this process, or a reference
    time whose best and worst round differ by more than 50% (the reference did not change, so
    its spread is the machine's).
    """
    cpus = os.cpu_count() or 1
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
    ref = [t for a in attempts for t in a.reference_s]
    spread = (max(ref) / min(ref) - 1) if ref else 0.0
    loaded = load >= cpus + 1 or spread > 0.5
    words = f"load average {load:.1f} on {cpus} CPUs, the reference's best time varied {100 * spread:.0f}% over rounds"
    return loaded, ("the machine was loaded: " if loaded else "the machine was quiet: ") + words


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", type=Path, default=DEFAULT_CONFIG)
    parser.add_argument("--report", action="store_true", help="print the speedups; never fail")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    parser.add_argument(
        "--allow-reference",
        action="store_true",
        help="run even when the fused kernels are not loaded (tests of the gate itself)",
    )
    parser.add_argument(
        "--slow-down",
        action="append",
        default=[],
        metavar="OP=N",
        help="run the fused OP N times per call, or OP=reference: replace it by the reference "
        "(the gate's own test that a slowed op fails; never in CI)",
    )
    args = parser.parse_args(argv)
    cfg = load_config(args.config)
    slow: dict[str, int | str] = {}
    for item in args.slow_down:
        op, _, n = item.partition("=")
        if n != "reference" and (not n.isdigit() or int(n) < 1):
            raise SystemExit(f"gate: --slow-down must be OP=N (N >= 1) or OP=reference, got {item!r}")
        slow[op] = n if n == "reference" else int(n)

    import torch

    from vaebench import ops

    torch.set_num_threads(int(cfg.get("threads", torch.get_num_threads())))
    device = cfg.get("device", "cpu")
    backend = ops.backend(device)
    if backend == "reference" and not (args.report or args.allow_reference):
        print(
            f"gate: FAIL: the fused kernels are not in use on {device} ({ops.load_error()}); "
            "build the extension (pip install --no-build-isolation .) before running the gate",
            file=sys.stderr,
        )
        return 1
    retries = int(cfg.get("retries", 2))
    rows, failures, all_attempts = [], [], []
    for check in cfg["checks"]:
        minimum = float(check["min_speedup"])
        attempts: list[Attempt] = []
        for _ in range(1 + (0 if args.report else retries)):
            shape, attempt = measure(check, cfg, slow.get(check["op"], 1))
            attempts.append(attempt)
            if attempt.median >= minimum:
                break
        all_attempts += attempts
        last = attempts[-1]
        ok = last.median >= minimum
        size = f"{check['case']} ({'x'.join(map(str, shape))})"
        rows.append(
            {
                **check,
                "size": size,
                "speedup": last.median,
                "ok": ok,
                "attempts": len(attempts),
                "round_speedups": [a.speedups for a in attempts],
                "reference_ms": 1e3 * min(last.reference_s),
                "fused_ms": 1e3 * min(last.fused_s),
            }
        )
        tries = f", attempt {len(attempts)}" if len(attempts) > 1 else ""
        print(
            f"{'ok  ' if ok else 'FAIL'} {check['op']:<15} {size:<28} {check['mode']:<8} reference "
            f"{1e3 * min(last.reference_s):8.3f} ms  fused {1e3 * min(last.fused_s):8.3f} ms  speedup "
            f"{last.median:5.2f}x (median of {len(last.speedups)} rounds {min(last.speedups):.2f}-"
            f"{max(last.speedups):.2f}x; min {minimum:.2f}x{tries})"
        )
        if not ok:
            medians = ", ".join(f"{a.median:.2f}x" for a in attempts)
            failures.append(
                f"{check['op']} {check['mode']} at {size}: fused is {medians} the reference in "
                f"{len(attempts)} attempt(s), below the gate's {minimum:.2f}x ({args.config.name})"
            )
    loaded, load_words = machine_load(all_attempts)
    if args.json:
        from vaebench.environment import environment

        args.json.write_text(
            json.dumps(
                {
                    "backend": backend,
                    "checks": rows,
                    "loaded": loaded,
                    "load": load_words,
                    "environment": environment(device),
                },
                indent=2,
                default=str,
            )
        )
    if failures and not args.report:
        hint = (
            "; rerun it on a quieter machine before blaming the kernel"
            if loaded
            else "; on a quiet machine this is the kernel: profile it with `pytest benchmarks/bench_<op>.py "
            "--benchmark-only`, and if the machine changed, re-derive the thresholds with --report"
        )
        print(
            "gate: FAIL: a fused op lost its speedup over the reference:\n  "
            + "\n  ".join(failures)
            + f"\n{load_words}{hint}.",
            file=sys.stderr,
        )
        return 1
    if args.report:
        print(
            f"gate: report only ({len(rows)} checks, backend {backend}, {len(failures)} below threshold); {load_words}"
        )
    else:
        print(f"gate: ok ({len(rows)} checks, backend {backend}); {load_words}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
