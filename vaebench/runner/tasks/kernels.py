"""The `kernels` task: throughput of each fused op vs eager and torch.compile, and end-to-end steps.

Inputs, providers ("reference", "compiled", "fused"), modes, warm-up and bytes moved come from
the fused ops' one benchmark setup factory, `vaebench.benchmarking.op_benchmark` (shared with
benchmarks/); a suite size (K, B, D) becomes each op's own size by `OpBenchmark.from_kbd`.
Times are medians of `repeats` calls of each provider and mode, all timed in one round after
their warm-up.
"""

from __future__ import annotations

from typing import cast

import torch

from ... import evaluation, ops
from ...benchmarking import (
    MODES,
    OP_BENCHMARKS,
    PROVIDERS,
    Provider,
    evaluation_throughput,
    measure_op,
    train_step_throughput,
)
from ...results import Metric
from .. import adapters
from ..resolve import ResolvedCell
from .base import TASKS, RunContext, TaskResult

__all__ = ["end_to_end_throughput", "kernels", "op_throughput"]

# One evaluation call runs K / chunk_size passes of the model (10 at the kernels suite's K=5000,
# chunk 500) where a training step runs one: a tenth of the repeats times about as many passes.
EVALUATION_REPEATS_DIVISOR = 10


def op_throughput(
    op: str,
    size: tuple[int, ...],
    providers: list[str],
    repeats: int,
    dtype: str,
    device: torch.device,
    *,
    prefix_op: bool = True,
) -> dict[str, Metric]:
    """Median times (ms), achieved bandwidth (GB/s) and speedups of `op` at `size`, fwd and fwd+bwd.

    Metric names are `[op/]KxBxD/provider/mode_ms`, `.../provider/fwd_GBps` and
    `.../fused_speedup_vs_{reference,compiled}/mode` (time of the other / time of fused).
    """
    if op not in OP_BENCHMARKS:
        raise ValueError(f"kernels.ops: unknown op '{op}'; known: {', '.join(OP_BENCHMARKS)}")
    unknown = sorted(set(providers) - set(PROVIDERS))
    if unknown:
        raise ValueError(f"kernels.providers: unknown {unknown}; use {', '.join(PROVIDERS)}")
    op_size = OP_BENCHMARKS[op].from_kbd(tuple(size))
    checked = cast("list[Provider]", providers)
    m = measure_op(op, op_size, checked, dtype=getattr(torch, dtype), device=device, repeats=max(1, repeats), rounds=1)
    seconds = m.medians()
    tag = "x".join(map(str, size))
    tag = f"{op}/{tag}" if prefix_op else tag
    out: dict[str, Metric] = {}
    for provider in providers:
        for mode in MODES:
            out[f"{tag}/{provider}/{mode}_ms"] = Metric(1e3 * seconds[f"{provider}/{mode}"], None, repeats)
        gbps = m.nbytes[f"{provider}/fwd"] / seconds[f"{provider}/fwd"] / 1e9
        out[f"{tag}/{provider}/fwd_GBps"] = Metric(gbps, None, repeats)
    for other in ("reference", "compiled"):
        if "fused" in providers and other in providers:
            for mode in MODES:
                out[f"{tag}/fused_speedup_vs_{other}/{mode}"] = Metric(
                    seconds[f"{other}/{mode}"] / seconds[f"fused/{mode}"], None, repeats
                )
    return out


def end_to_end_throughput(cell: ResolvedCell, ctx: RunContext) -> TaskResult:
    """Examples per second of one training step, or of the K-sample evaluation."""
    cfg = cell.config
    data = adapters.load_data(cfg, cell.seed)
    model = adapters.model_from_config(cfg, data).to(ctx.device)
    x = evaluation.take_examples(data.train, cfg.train.batch_size, device=ctx.device)
    if cfg.kernels.measure == "train_step":
        estimator = adapters.estimator_from_config(cfg)
        th = train_step_throughput(model, estimator, x, repeats=cfg.kernels.repeats)
        name = f"train_step_examples_per_s@K={cfg.estimator.num_samples}"
    else:
        th = evaluation_throughput(
            model,
            x,
            num_samples=cfg.eval.nll_samples,
            chunk_size=cfg.eval.chunk_size,
            repeats=max(1, cfg.kernels.repeats // EVALUATION_REPEATS_DIVISOR),
        )
        name = f"evaluation_examples_per_s@K={cfg.eval.nll_samples}"
    per_s = th.batch_size / th.seconds_median
    return TaskResult({name: Metric(per_s, None, th.repeats)}, {}, [*data.notes, f"{th.what} on {th.device}"], {})


@TASKS.register("kernels", "throughput of each fused op vs eager and torch.compile; end-to-end steps")
def kernels(cell: ResolvedCell, ctx: RunContext) -> TaskResult:
    cfg = cell.config
    kc = cfg.kernels
    if kc.measure in ("train_step", "evaluation"):
        return end_to_end_throughput(cell, ctx)
    if kc.measure != "ops":
        raise ValueError(f"kernels.measure must be 'ops', 'train_step' or 'evaluation', got '{kc.measure}'")
    metrics: dict[str, Metric] = {}
    notes = [
        f"vaebench.ops backend: {ops.backend(ctx.device)}",
        f"{ctx.device} timings, {torch.get_num_threads()} threads, median of {kc.repeats} repeats",
    ]
    for op in kc.ops:
        for size in kc.sizes:
            metrics.update(
                op_throughput(
                    op, tuple(size), list(kc.providers), kc.repeats, kc.dtype, ctx.device, prefix_op=len(kc.ops) > 1
                )
            )
    return TaskResult(metrics, {}, notes, {})
