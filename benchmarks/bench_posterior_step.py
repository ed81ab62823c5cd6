"""Every posterior family's training step against diagonal's and against its own FLOPs.

    python benchmarks/bench_posterior_step.py [--rounds 5] [--steps 20] [--threads 1] [--clock cpu]
        [--record results/benchmarks/posterior_step.jsonl]

The step is the iaf/flows suites' protocol: MLP 784-200-200-50 (Burda et al.), batch 100 of
the embedded digits, the Monte Carlo ELBO with K=1, backward, the trainer's finite-gradient
check and one Adam step, in two versions: "loop" (per-tensor isfinite and torch's default
single-tensor Adam on a CPU: the trainer before) and "foreach" (one multi-tensor norm and
foreach Adam: vaebench.trainer now). Every family
is timed in this process, alternating families in rounds so all see the same machine noise
(the CPU is shared); each round times `--steps` steps, and the ratios are of the median rounds
(the best rounds are recorded too). FLOPs are the matmul FLOPs of one forward+backward counted
by torch.utils.flop_counter (elementwise work is not counted).

`--clock cpu` times the thread's CPU time (time.thread_time) instead of the wall clock: with
`--threads 1` it leaves out the time the process waits for a core, which on a loaded shared
machine is most of the wall time and differs from round to round (a wall-clock run at load 6-8
once put sylvester_h8 at 42.9x diagonal with foreach Adam and 21.0x with the loop; the CPU
clock gives about 21x for both). It still includes what other processes cost us in cache.

    time_ratio = t(family) / t(diagonal),  flop_ratio = F(family) / F(diagonal)
    excess = time_ratio / flop_ratio   (the target: <= 2, issue 11)
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

import torch

FAMILIES: dict[str, tuple[str, dict[str, object]]] = {
    "diagonal": ("diagonal", {}),
    "full_covariance": ("full_covariance", {}),
    "planar_4": ("planar", {"num_flows": 4}),
    "planar_16": ("planar", {"num_flows": 16}),
    "radial_8": ("radial", {"num_flows": 8}),
    "householder_1": ("householder", {"num_flows": 1}),
    "householder_8": ("householder", {"num_flows": 8}),
    "sylvester_h4": ("sylvester_householder", {"num_flows": 4}),
    "sylvester_h8": ("sylvester_householder", {"num_flows": 8}),
    "sylvester_t4": ("sylvester_triangular", {"num_flows": 4}),
    "sylvester_o4": ("sylvester_orthogonal", {"num_flows": 4}),
    "iaf_2": ("iaf", {"num_flows": 2}),
    "iaf_4": ("iaf", {"num_flows": 4}),
    "iaf_8": ("iaf", {"num_flows": 8}),
}


def make_step(family: str, kwargs: dict[str, object], x: torch.Tensor, foreach: bool = True):
    from vaebench.estimators import build_estimator
    from vaebench.models import build_model

    torch.manual_seed(0)
    model = build_model(
        "mlp_burda", posterior=family, posterior_kwargs=kwargs, event_shape=(1, 28, 28), likelihood="bernoulli"
    )
    estimator = build_estimator("elbo_mc", num_samples=1)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, eps=1e-4, foreach=foreach)

    def step() -> None:
        loss = estimator(model, x).surrogate
        opt.zero_grad(set_to_none=True)
        loss.backward()
        grads = [p.grad for p in model.parameters() if p.grad is not None]
        if foreach:
            ok = torch.stack([torch.isfinite(loss.detach()), *(torch.isfinite(n) for n in torch._foreach_norm(grads))])
        else:
            ok = torch.stack([torch.isfinite(loss.detach()), *(torch.isfinite(g).all() for g in grads)])
        assert bool(ok.all())
        opt.step()

    def flops() -> int:
        from torch.utils.flop_counter import FlopCounterMode

        with FlopCounterMode(display=False) as counter:
            estimator(model, x).surrogate.backward()
        model.zero_grad(set_to_none=True)
        return counter.get_total_flops()

    return step, flops


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--families", nargs="*", default=list(FAMILIES))
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    parser.add_argument(
        "--clock", choices=("wall", "cpu"), default="wall", help="cpu: the thread's CPU time (use with --threads 1)"
    )
    parser.add_argument("--record", default=None, help="append one JSON line (rows + environment) to this file")
    args = parser.parse_args()
    if "diagonal" not in args.families:
        parser.error("--families must include diagonal (every ratio is to it)")
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    clock = time.thread_time if args.clock == "cpu" else time.perf_counter
    from vaebench.datasets import load

    x = load("digits28").tensor("train")[:100]
    steps, flops = {}, {}
    keys = [(name, v) for name in args.families for v in ("loop", "foreach")]
    for name, v in keys:
        family, kwargs = FAMILIES[name]
        steps[name, v], count = make_step(family, kwargs, x, foreach=v == "foreach")
        flops[name] = count()
        for _ in range(3):  # warm-up
            steps[name, v]()
    rounds: dict[tuple[str, str], list[float]] = {key: [] for key in keys}
    load_before = os.getloadavg()[0]
    for _ in range(args.rounds):
        for key in keys:
            t0 = clock()
            for _ in range(args.steps):
                steps[key]()
            rounds[key].append((clock() - t0) / args.steps)
    median = {key: statistics.median(v) for key, v in rounds.items()}
    best = {key: min(v) for key, v in rounds.items()}
    loads = [load_before, os.getloadavg()[0]]
    rows = []
    print(
        f"{torch.get_num_threads()} threads, {args.clock} clock; median of {args.rounds} rounds of {args.steps} "
        f"steps; 1-minute load {loads[0]:.1f} before, {loads[1]:.1f} after"
    )
    print(
        f"{'family':16s} {'FLOP x':>7s} | {'loop ms':>8s} {'time x':>7s} {'excess':>7s} | "
        f"{'foreach ms':>10s} {'time x':>7s} {'excess':>7s}"
    )
    for name in args.families:
        fr = flops[name] / flops["diagonal"]
        row = {"family": name, "flop_ratio": fr, "gflop": flops[name] / 1e9}
        line = f"{name:16s} {fr:7.2f}"
        for v in ("loop", "foreach"):
            tr = median[name, v] / median["diagonal", v]
            row.update({f"{v}_ms": 1e3 * median[name, v], f"{v}_time_ratio": tr, f"{v}_excess": tr / fr})
            row[f"{v}_best_ms"] = 1e3 * best[name, v]
            row[f"{v}_best_excess"] = best[name, v] / best["diagonal", v] / fr
            line += f" | {1e3 * median[name, v]:{8 if v == 'loop' else 10}.2f} {tr:7.2f} {tr / fr:7.2f}"
        rows.append(row)
        print(line)
    if args.record:
        from vaebench.environment import environment

        line = {
            "benchmark": "posterior_step",
            "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "threads": torch.get_num_threads(),
            "clock": args.clock,
            "statistic": "median",  # *_ms, *_time_ratio, *_excess; *_best_* from the best rounds
            "rounds": args.rounds,
            "steps": args.steps,
            "batch_size": 100,
            "estimator": "elbo_mc K=1",
            "loadavg_1min": loads,
            "rows": rows,
            "environment": environment(),
        }
        with open(args.record, "a") as f:  # append-only, one line per run
            f.write(json.dumps(line) + "\n")


if __name__ == "__main__":
    main()
