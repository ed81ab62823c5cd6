"""Every posterior family's training step against diagonal's and against its own FLOPs.

    python benchmarks/bench_posterior_step.py [--rounds 5] [--steps 20] [--record results/benchmarks/posterior_step.jsonl]

The step is the iaf/flows suites' protocol: MLP 784-200-200-50 (Burda et al.), batch 100 of
the embedded digits, the Monte Carlo ELBO with K=1, backward, the trainer's finite-gradient
check and one Adam step, in two versions: "loop" (per-tensor isfinite and torch's default
single-tensor Adam on a CPU: the trainer before) and "foreach" (one multi-tensor norm and
foreach Adam: vaebench.trainer now). Every family
is timed in this process, alternating families in rounds so all see the same machine noise
(the CPU is shared), best round of `--steps` steps each. FLOPs are the matmul FLOPs of one
forward+backward counted by torch.utils.flop_counter (elementwise work is not counted).

    time_ratio = t(family) / t(diagonal),  flop_ratio = F(family) / F(diagonal)
    excess = time_ratio / flop_ratio   (the target: <= 2, issue 11)
"""

from __future__ import annotations

import argparse
import json
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
    parser.add_argument("--record", default=None, help="append one JSON line (rows + environment) to this file")
    args = parser.parse_args()
    from vaebench.datasets import load

    x = load("digits28").tensor("train")[:100]
    steps, flops, best = {}, {}, {}
    keys = [(name, v) for name in args.families for v in ("loop", "foreach")]
    for name, v in keys:
        family, kwargs = FAMILIES[name]
        steps[name, v], count = make_step(family, kwargs, x, foreach=v == "foreach")
        flops[name] = count()
        for _ in range(3):  # warm-up
            steps[name, v]()
        best[name, v] = float("inf")
    for _ in range(args.rounds):
        for key in keys:
            t0 = time.perf_counter()
            for _ in range(args.steps):
                steps[key]()
            best[key] = min(best[key], (time.perf_counter() - t0) / args.steps)
    rows = []
    print(f"{torch.get_num_threads()} threads; best of {args.rounds} rounds of {args.steps} steps")
    print(
        f"{'family':16s} {'FLOP x':>7s} | {'loop ms':>8s} {'time x':>7s} {'excess':>7s} | "
        f"{'foreach ms':>10s} {'time x':>7s} {'excess':>7s}"
    )
    for name in args.families:
        fr = flops[name] / flops["diagonal"]
        row = {"family": name, "flop_ratio": fr, "gflop": flops[name] / 1e9}
        line = f"{name:16s} {fr:7.2f}"
        for v in ("loop", "foreach"):
            tr = best[name, v] / best["diagonal", v]
            row.update({f"{v}_ms": 1e3 * best[name, v], f"{v}_time_ratio": tr, f"{v}_excess": tr / fr})
            line += f" | {1e3 * best[name, v]:{8 if v == 'loop' else 10}.2f} {tr:7.2f} {tr / fr:7.2f}"
        rows.append(row)
        print(line)
    if args.record:
        from vaebench.environment import environment

        line = {
            "benchmark": "posterior_step",
            "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "threads": torch.get_num_threads(),
            "rounds": args.rounds,
            "steps": args.steps,
            "batch_size": 100,
            "estimator": "elbo_mc K=1",
            "rows": rows,
            "environment": environment(),
        }
        with open(args.record, "a") as f:  # append-only, one line per run
            f.write(json.dumps(line) + "\n")


if __name__ == "__main__":
    main()
