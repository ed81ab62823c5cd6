"""Speed of one training step (forward and backward; batch 100), ELBO K=1 and IWAE K=50, end to
end, against a hand-written eager step, torch.compile of it and the model's matmuls alone on the
same shapes (benchmarks/end_to_end.py).

    pytest benchmarks/bench_train_step.py --benchmark-only
    python benchmarks/bench_train_step.py [--batch 100] [--threads 2] [--rounds 5] [--repeats 5] [--clock wall]

A step is what a training loop runs per batch: zero_grad, the estimator's surrogate, its
backward and the Adam update, each provider on its own copy of the weights. vaebench's update is
the trainer's (`vaebench.trainer.build_optimizer`: Adam's fused kernel); the hand-written eager
step uses `torch.optim.Adam` as a user writes it (torch's default on a CPU: a Python loop over
the parameters), as does its compiled twin. Every update runs at lr = 0: the same arithmetic,
but the weights stay where they start, so every round times the same computation (a training
trajectory would change the cost as it goes: IWAE's normalized weights grow peaked and their
tiny gradients turn into denormal floats, several times slower per element). The matmuls:
every Linear layer's forward X W^T and backward dX = dY W, dW = dY^T X (encoder rows B,
decoder rows K x B). The script prints medians, best times and ratios, and appends them to
results/benchmarks/train_step.jsonl. `--clock cpu --threads 1` times the thread's CPU time
(vaebench.benchmarking.time_rounds with clock="cpu"), steadier on a loaded shared machine than
the wall clock.
Targets (issue 11; 2-core CPU, 2 threads, float32): >= 1.5x eager, within 1.5x of the matmuls.
"""

from __future__ import annotations

import argparse
import copy
import math
import os
import statistics
from collections.abc import Callable

import pytest
import torch
import torch.nn.functional as F
from common import THREADS, append_record
from end_to_end import EagerVAE, burda_model, digits, matmul_shapes, matmuls_call

from vaebench.benchmarking import time_rounds
from vaebench.config import TrainSection
from vaebench.estimators import ESTIMATORS
from vaebench.trainer import build_optimizer

PROVIDERS = ("vaebench", "vaebench-unfused", "eager", "compiled", "matmuls")
ESTIMATOR_CASES = {"elbo-k1": ("elbo", 1), "iwae-k50": ("iwae", 50)}


def eager_loss(eager: EagerVAE, estimator: str, k: int) -> Callable[[torch.Tensor], torch.Tensor]:
    """The hand-written loss: -mean ELBO with the analytic KL (K draws), or -mean IWAE bound."""

    def loss(x: torch.Tensor) -> torch.Tensor:
        mu, logvar = eager.encode(x)
        if estimator == "elbo":
            kl = 0.5 * (logvar.exp() + mu.square() - 1.0 - logvar).sum(-1)
            return -(_log_px(eager, x, mu, logvar, k) - kl).mean()
        log_w = eager.log_weights(x, mu, logvar, k)
        return -(torch.logsumexp(log_w, 0) - math.log(k)).mean()

    return loss


def _log_px(eager: EagerVAE, x: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor, k: int) -> torch.Tensor:
    """1/K sum_k log p(x | z_k), z_k ~ q: (B,)."""
    z = mu + torch.exp(0.5 * logvar) * torch.randn(k, *mu.shape, dtype=mu.dtype)
    h = z
    for layer in eager.dec[:-1]:
        h = torch.tanh(layer(h))
    logits = eager.dec[-1](h)
    return -F.binary_cross_entropy_with_logits(logits, x.expand_as(logits), reduction="none").sum(-1).mean(0)


def step_calls(case: str, batch: int = 100) -> tuple[dict[str, Callable[[], object]], float]:
    """Every provider's training step for one estimator case, and the matmuls' GFLOP."""
    estimator, k = ESTIMATOR_CASES[case]
    model = burda_model()
    unfused = copy.deepcopy(model)
    unfused.fused_head = False
    x = digits("train", batch)
    est = ESTIMATORS.get(estimator)(num_samples=k)
    xf = x.flatten(1)
    train_section = TrainSection(lr=1e-3, eps=1e-4)

    def frozen(opt: torch.optim.Optimizer) -> torch.optim.Optimizer:
        for group in opt.param_groups:
            group["lr"] = 0.0  # the update's work without its effect (module docstring)
        return opt

    def vaebench_step(m: torch.nn.Module) -> Callable[[], None]:
        opt = frozen(build_optimizer(m.parameters(), train_section))

        def step() -> None:
            opt.zero_grad(set_to_none=True)
            est(m, x).surrogate.backward()
            opt.step()

        return step

    def eager_step(compile_loss: bool) -> Callable[[], None]:
        m = copy.deepcopy(model)
        loss = eager_loss(EagerVAE(m), estimator, k)
        fn = torch.compile(loss, dynamic=False) if compile_loss else loss
        opt = frozen(torch.optim.Adam(m.parameters(), lr=train_section.lr, eps=train_section.eps))

        def step() -> None:
            opt.zero_grad(set_to_none=True)
            fn(xf).backward()
            opt.step()

        return step

    matmuls, gflop = matmuls_call(matmul_shapes(model, batch, k * batch), backward=True)
    calls = {
        "vaebench": vaebench_step(model),
        "vaebench-unfused": vaebench_step(unfused),
        "eager": eager_step(compile_loss=False),
        "compiled": eager_step(compile_loss=True),
        "matmuls": matmuls,
    }
    return calls, gflop


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("case", list(ESTIMATOR_CASES))
def test_train_step(benchmark, provider: str, case: str) -> None:
    torch.set_num_threads(THREADS)
    calls, _ = step_calls(case)
    calls[provider]()  # compile, allocate
    benchmark.group = f"train step {case}, batch 100"
    benchmark(calls[provider])


def measure(
    batch: int = 100, threads: int = THREADS, rounds: int = 5, repeats: int = 5, clock: str = "wall"
) -> dict[str, object]:
    """Medians, best times and ratios of every provider for each estimator case; `clock` "wall"
    or "cpu" (the thread's CPU time, for one thread)."""
    if clock not in ("wall", "cpu"):
        raise ValueError(f"clock must be 'wall' or 'cpu', got {clock!r}")
    torch.set_num_threads(threads)
    result: dict[str, object] = {
        "batch": batch,
        "threads": threads,
        "rounds": rounds,
        "repeats": repeats,
        "clock": clock,
        "loadavg_1min_before": os.getloadavg()[0],
    }
    for case in ESTIMATOR_CASES:
        calls, gflop = step_calls(case, batch)
        samples = time_rounds(calls, "cpu", repeats=repeats, rounds=rounds, warmup=2, clock=clock)
        med = {k: statistics.median(v) for k, v in samples.items()}
        best = {k: min(v) for k, v in samples.items()}
        r: dict[str, object] = {"matmul_gflop": gflop, "seconds": med, "best_seconds": best}
        for stat, t in (("", med), ("best_", best)):
            r[f"{stat}speedup_vs_eager"] = t["eager"] / t["vaebench"]
            r[f"{stat}speedup_vs_compiled"] = t["compiled"] / t["vaebench"]
            r[f"{stat}speedup_vs_unfused"] = t["vaebench-unfused"] / t["vaebench"]
            r[f"{stat}time_over_matmuls"] = t["vaebench"] / t["matmuls"]
        # Each round's own ratio (its calls saw the same load): the median over rounds.
        per_round = {k: [sum(v[i : i + repeats]) for i in range(0, len(v), repeats)] for k, v in samples.items()}
        r["round_median_speedup_vs_eager"] = statistics.median(
            e / v for e, v in zip(per_round["eager"], per_round["vaebench"], strict=True)
        )
        result[case] = r
    result["loadavg_1min"] = os.getloadavg()[0]
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--threads", type=int, default=THREADS)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--clock", choices=("wall", "cpu"), default="wall", help="cpu: the thread's CPU time")
    parser.add_argument("--no-record", action="store_true", help="do not append to results/benchmarks")
    args = parser.parse_args()
    result = measure(args.batch, args.threads, args.rounds, args.repeats, args.clock)
    for case in ESTIMATOR_CASES:
        r = result[case]
        print(case)
        for k in r["seconds"]:
            print(f"  {k:18s} median {r['seconds'][k] * 1e3:8.2f} ms   best {r['best_seconds'][k] * 1e3:8.2f} ms")
        for k, v in r.items():
            if isinstance(v, float):
                print(f"  {k:32s} {v:8.3f}")
    if not args.no_record:
        print("recorded in", append_record("train_step", result))


if __name__ == "__main__":
    main()
