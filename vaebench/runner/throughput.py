"""Throughput measurements of the kernels suite: each fused op vs eager and torch.compile.

Providers (as in the benchmarks/): "reference" (eager PyTorch: torch.randn + the reference
formula), "compiled" (torch.compile of the same function), "fused" (vaebench.ops). Times are
medians of `repeats` timed calls after one warm-up call (CUDA synchronized around each),
setup outside the timed region; achieved bandwidth counts each input and output tensor read or written once.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from ..evaluation.throughput import time_calls
from ..results import Metric

if TYPE_CHECKING:
    from .resolve import ResolvedCell
    from .tasks import RunContext, TaskResult

__all__ = ["OPS", "end_to_end_throughput", "median_seconds", "op_throughput"]


def _reparameterize(size: tuple[int, ...], dtype: torch.dtype, device: torch.device):
    from .. import ops

    k, b, d = size
    mu = torch.randn(b, d, dtype=dtype, device=device, requires_grad=True)
    logvar = (0.1 * torch.randn(b, d, dtype=dtype, device=device)).requires_grad_()

    def reference() -> tuple[Tensor, Tensor]:
        eps = torch.randn(k, b, d, dtype=dtype, device=device)
        return ops.reparameterize_reference(mu, logvar, eps)

    def fused() -> tuple[Tensor, Tensor]:
        return ops.reparameterize(mu, logvar, num_samples=k)

    nbytes = (2 * b * d + k * b * d + k * b) * mu.element_size()
    return {"reference": reference, "fused": fused}, (mu, logvar), nbytes


def _gaussian_kl(size: tuple[int, ...], dtype: torch.dtype, device: torch.device):
    from .. import ops

    k, b, d = size
    n = k * b  # rows: K*B posteriors of dimension D
    mu = torch.randn(n, d, dtype=dtype, device=device, requires_grad=True)
    logvar = (0.1 * torch.randn(n, d, dtype=dtype, device=device)).requires_grad_()
    fns = {"reference": lambda: ops.gaussian_kl_reference(mu, logvar), "fused": lambda: ops.gaussian_kl(mu, logvar)}
    return fns, (mu, logvar), (2 * n * d + n) * mu.element_size()


def _log_mean_exp(size: tuple[int, ...], dtype: torch.dtype, device: torch.device):
    from .. import ops

    k, b = size[0], size[1]
    log_w = (3 * torch.randn(k, b, dtype=dtype, device=device)).requires_grad_()
    fns = {"reference": lambda: ops.log_mean_exp_reference(log_w, 0), "fused": lambda: ops.log_mean_exp(log_w, 0)}
    return fns, (log_w,), (k * b + b) * log_w.element_size()


OPS: dict[str, Callable] = {  # type: ignore[type-arg]
    "reparameterize": _reparameterize,
    "gaussian_kl": _gaussian_kl,
    "log_mean_exp": _log_mean_exp,
}


def _first(out: Tensor | tuple[Tensor, ...]) -> Tensor:
    return out[0] if isinstance(out, tuple) else out


def _loss(out: Tensor | tuple[Tensor, ...]) -> Tensor:
    return sum((o.sum() for o in out), torch.zeros(())) if isinstance(out, tuple) else out.sum()


def median_seconds(fn: Callable[[], object], repeats: int, device: torch.device) -> float:
    """Median wall time of `repeats` calls of `fn` after one warm-up call (CUDA synchronized)."""
    return statistics.median(time_calls(fn, device, warmup=1, repeats=max(1, repeats)))


def op_throughput(
    op: str, size: tuple[int, ...], providers: list[str], repeats: int, dtype: str, device: torch.device,
    *, prefix_op: bool = True,
) -> dict[str, Metric]:
    """Median times (ms), achieved bandwidth (GB/s) and speedups of `op` at `size`, fwd and fwd+bwd.

    Metric names are `[op/]KxBxD/provider/mode_ms`, `.../provider/fwd_GBps` and
    `.../fused_speedup_vs_{reference,compiled}/mode` (time of the other / time of fused).
    """
    if op not in OPS:
        raise ValueError(f"kernels.ops: unknown op '{op}'; known: {', '.join(OPS)}")
    unknown = sorted(set(providers) - {"reference", "compiled", "fused"})
    if unknown:
        raise ValueError(f"kernels.providers: unknown {unknown}; use reference, compiled, fused")
    fns, inputs, nbytes = OPS[op](size, getattr(torch, dtype), device)
    if "compiled" in providers:
        fns["compiled"] = torch.compile(fns["reference"], dynamic=False)
    tag = "x".join(map(str, size))
    tag = f"{op}/{tag}" if prefix_op else tag
    out: dict[str, Metric] = {}
    times: dict[tuple[str, str], float] = {}
    for provider in providers:
        fn = fns[provider]

        def fwd_bwd(fn: Callable[[], object] = fn) -> None:
            for t in inputs:
                t.grad = None
            _loss(fn()).backward()  # type: ignore[arg-type]

        for mode, call in (("fwd", fn), ("fwd_bwd", fwd_bwd)):
            s = median_seconds(call, repeats, device)
            times[provider, mode] = s
            out[f"{tag}/{provider}/{mode}_ms"] = Metric(1e3 * s, None, repeats)
        out[f"{tag}/{provider}/fwd_GBps"] = Metric(nbytes / times[provider, "fwd"] / 1e9, None, repeats)
    for other in ("reference", "compiled"):
        if "fused" in providers and other in providers:
            for mode in ("fwd", "fwd_bwd"):
                out[f"{tag}/fused_speedup_vs_{other}/{mode}"] = Metric(
                    times[other, mode] / times["fused", mode], None, repeats
                )
    return out


def end_to_end_throughput(cell: ResolvedCell, ctx: RunContext) -> TaskResult:
    """Examples per second of one training step, or of the K-sample evaluation."""
    from .. import evaluation
    from . import adapters
    from .tasks import TaskResult

    cfg = cell.config
    data = adapters.load_data(cfg, cell.seed)
    model = adapters.build_model(cfg, data).to(ctx.device)
    x = evaluation.take_examples(data.train, cfg.train.batch_size, device=ctx.device)
    if cfg.kernels.measure == "train_step":
        th = evaluation.train_step_throughput(model, adapters.build_estimator(cfg), x, repeats=cfg.kernels.repeats)
        name = f"train_step_examples_per_s@K={cfg.estimator.num_samples}"
    else:
        th = evaluation.evaluation_throughput(
            model, x, num_samples=cfg.eval.nll_samples, chunk_size=cfg.eval.chunk_size, repeats=max(1, cfg.kernels.repeats // 10)
        )
        name = f"evaluation_examples_per_s@K={cfg.eval.nll_samples}"
    per_s = th.batch_size / th.seconds_median
    return TaskResult({name: Metric(per_s, None, th.repeats)}, {}, [*data.notes, f"{th.what} on {th.device}"], {})
