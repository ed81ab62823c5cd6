"""Benchmarks of the fused ops: the one setup factory of the kernels suite, the benchmark
scripts (benchmarks/bench_<op>.py), the speed gate and the asv suite.

Each op has one input maker (`<op>_inputs`, the only place that knows its benchmark inputs,
reference and fused functions) and named cases (`OP_BENCHMARKS[op].cases`). `setup_bench`
turns (op, provider, mode, size) into a ready-to-time `Bench`; `measure_op` times several in
alternating rounds with `time_rounds`. The definitions, the same for every user:

- providers: "reference" is eager PyTorch, the reference of vaebench.ops with the random draws
  it needs inside the timed call (reparameterize draws eps with torch.randn each call, as eager
  code must); "compiled" is torch.compile(reference, dynamic=False); "fused" is the vaebench.ops
  op, which draws its normals inside the kernel.
- modes: "fwd" calls the function under torch.no_grad(); "fwd_bwd" calls it and
  torch.autograd.grad of all its outputs (grad_output = ones) with respect to the inputs that
  require grad (nothing accumulates into .grad).
- setup, outside the timed region: inputs drawn from their own generator seeded with `seed`
  (on the CPU, then moved, so every device gets the same values and torch's global RNG is left
  alone), then three untimed calls (compilation, allocation, warm caches).
- inputs: mu ~ N(0, 1), logvar ~ N(0, 0.5^2) for reparameterize; mu, logvar (and a learned
  prior's mean and log-variance) ~ N(0, 1) for gaussian_kl; log_w ~ N(0, 10^2) for
  log_mean_exp, a spread like IWAE's log-weights early in training, where a few samples dominate;
  for bernoulli_head, features h ~ N(0, 0.5^2) (a tanh layer's range), weight ~ N(0, 1/H) (the
  Glorot scale), bias ~ N(0, 1), binary x ~ Bernoulli(0.3) (an MNIST digit's ink), x not
  differentiated.
- bytes moved (for GB/s), derived from the tensors: the least any implementation must move.
  fwd reads each input once and writes each output once. fwd_bwd is two passes, as autograd
  runs them: the forward as above, then the backward reads the inputs again (the least it can
  have saved), reads one gradient per output and writes one gradient per differentiated input:
  2 x inputs + 2 x outputs + gradients. Intermediates are not counted.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import torch
from torch import Tensor

from ..ops import (
    bernoulli_head,
    bernoulli_head_reference,
    gaussian_kl,
    gaussian_kl_reference,
    log_mean_exp,
    log_mean_exp_reference,
    reparameterize,
    reparameterize_reference,
)
from .throughput import _sync, time_rounds

__all__ = [
    "MODES",
    "OP_BENCHMARKS",
    "PROVIDERS",
    "Bench",
    "Case",
    "Measurement",
    "Mode",
    "OpBenchmark",
    "OpInputs",
    "Provider",
    "bernoulli_head_inputs",
    "gaussian_kl_inputs",
    "log_mean_exp_inputs",
    "measure_op",
    "reparameterize_inputs",
    "setup_bench",
]

Provider = Literal["reference", "compiled", "fused"]
Mode = Literal["fwd", "fwd_bwd"]
PROVIDERS: tuple[Provider, ...] = ("reference", "compiled", "fused")
MODES: tuple[Mode, ...] = ("fwd", "fwd_bwd")
Outputs = Tensor | tuple[Tensor, ...]
WARMUP_CALLS = 3  # compile, allocate, warm caches


@dataclass(frozen=True)
class OpInputs:
    """An op's inputs at one size and the reference and fused functions that take them
    positionally; the inputs that require grad are the ones differentiated in fwd_bwd."""

    reference: Callable[..., Outputs]
    fused: Callable[..., Outputs]
    inputs: list[Tensor]


def _normal(
    shape: tuple[int, ...],
    scale: float,
    dtype: torch.dtype,
    device: torch.device | str,
    generator: torch.Generator | None,
) -> Tensor:
    """scale * N(0, 1) drawn on the CPU (the same values on every device), a leaf requiring grad."""
    wide = torch.float64 if dtype == torch.float64 else torch.float32  # 16-bit: drawn in float32
    x = scale * torch.randn(shape, generator=generator, dtype=wide)
    return x.to(device=device, dtype=dtype).requires_grad_()


def reparameterize_inputs(
    size: tuple[int, ...],
    dtype: torch.dtype,
    device: torch.device | str,
    generator: torch.Generator | None = None,
) -> OpInputs:
    """size (K, B, D): mu, logvar: (B, D); both providers draw K samples each call."""
    k, b, d = size
    mu = _normal((b, d), 1.0, dtype, device, generator)
    logvar = _normal((b, d), 0.5, dtype, device, generator)

    def reference(m: Tensor, lv: Tensor) -> tuple[Tensor, Tensor]:
        eps = torch.randn((k, *m.shape), dtype=m.dtype, device=m.device)
        return reparameterize_reference(m, lv, eps)

    def fused(m: Tensor, lv: Tensor) -> tuple[Tensor, Tensor]:
        return reparameterize(m, lv, k)

    return OpInputs(reference, fused, [mu, logvar])


def gaussian_kl_inputs(
    size: tuple[int, ...],
    dtype: torch.dtype,
    device: torch.device | str,
    generator: torch.Generator | None = None,
    *,
    prior: bool = False,
) -> OpInputs:
    """size (B, D): mu, logvar: (B, D); with `prior`, a learned prior shared by the batch,
    prior_mu, prior_logvar: (D,); without, the standard normal."""
    b, d = size
    inputs = [_normal((b, d), 1.0, dtype, device, generator) for _ in range(2)]
    if prior:
        inputs += [_normal((d,), 1.0, dtype, device, generator) for _ in range(2)]
    return OpInputs(gaussian_kl_reference, gaussian_kl, inputs)


def log_mean_exp_inputs(
    size: tuple[int, ...],
    dtype: torch.dtype,
    device: torch.device | str,
    generator: torch.Generator | None = None,
) -> OpInputs:
    """size (K, B): log_w: (K, B), reduced over K."""
    k, b = size
    log_w = _normal((k, b), 10.0, dtype, device, generator)
    return OpInputs(lambda x: log_mean_exp_reference(x, 0), lambda x: log_mean_exp(x, 0), [log_w])


def bernoulli_head_inputs(
    size: tuple[int, ...],
    dtype: torch.dtype,
    device: torch.device | str,
    generator: torch.Generator | None = None,
) -> OpInputs:
    """size (K, B, H, D): h: (K, B, H), weight: (D, H), bias: (D,) and the data x: (B, D), read
    by each of the K samples (the decoder's last layer and its Bernoulli likelihood)."""
    k, b, h_dim, d = size
    h = _normal((k, b, h_dim), 0.5, dtype, device, generator)
    weight = _normal((d, h_dim), h_dim**-0.5, dtype, device, generator)
    bias = _normal((d,), 1.0, dtype, device, generator)
    wide = torch.float64 if dtype == torch.float64 else torch.float32
    x = torch.bernoulli(torch.full((b, d), 0.3, dtype=wide), generator=generator).to(device=device, dtype=dtype)
    return OpInputs(
        lambda hh, w, bb: bernoulli_head_reference(hh, w, bb, x),
        lambda hh, w, bb: bernoulli_head(hh, w, bb, x),
        [h, weight, bias],
    )


@dataclass(frozen=True)
class Case:
    """A named benchmark size of an op, with keyword options of its input maker."""

    size: tuple[int, ...]
    options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class OpBenchmark:
    """How one fused op is benchmarked: its input maker, the names of its size's dims, its
    named cases ("target" is the size its speed target is stated for) and how a kernels-suite
    size (K, B, D) maps to its own size."""

    op: str
    dims: tuple[str, ...]
    make_inputs: Callable[..., OpInputs]
    cases: Mapping[str, Case]
    from_kbd: Callable[[tuple[int, ...]], tuple[int, ...]]


def _kbd(op: str, size: tuple[int, ...], n: int) -> tuple[int, ...]:
    if len(size) < n:
        raise ValueError(f"{op} is timed at sizes ({', '.join('KBD'[:n])}), got {tuple(size)}")
    return tuple(size[:n])


def _gaussian_kl_rows(size: tuple[int, ...]) -> tuple[int, ...]:
    """(K, B, D) -> (K*B, D): the KL of each of K*B posteriors, one per sample of a K-sample batch."""
    k, b, d = _kbd("gaussian_kl", size, 3)
    return (k * b, d)


def _bernoulli_head_size(size: tuple[int, ...]) -> tuple[int, ...]:
    """(K, B, D) -> (K, B, D, 784): features of width D into a head over 784 binary pixels."""
    k, b, d = _kbd("bernoulli_head", size, 3)
    return (k, b, d, 784)


OP_BENCHMARKS: dict[str, OpBenchmark] = {
    "reparameterize": OpBenchmark(
        op="reparameterize",
        dims=("K", "B", "D"),
        make_inputs=reparameterize_inputs,
        cases={
            "target": Case((64, 256, 64)),
            "iwae-k5000-chunk": Case((500, 10, 50)),  # one 500-sample chunk of the K=5000 NLL
            "single-sample": Case((1, 4096, 256)),
        },
        from_kbd=lambda s: _kbd("reparameterize", s, 3),
    ),
    "gaussian_kl": OpBenchmark(
        op="gaussian_kl",
        dims=("B", "D"),
        make_inputs=gaussian_kl_inputs,
        cases={
            "target": Case((4096, 256)),
            "train": Case((256, 64)),
            "learned-prior": Case((4096, 256), {"prior": True}),
        },
        from_kbd=_gaussian_kl_rows,
    ),
    "bernoulli_head": OpBenchmark(
        op="bernoulli_head",
        dims=("K", "B", "H", "D"),
        make_inputs=bernoulli_head_inputs,
        # the Burda et al. MLP's last layer (200 -> 784): an IWAE K=50 training step of batch 100
        # (the target), an ELBO step, and one 500-sample chunk of 10 test points of the K=5000 NLL
        cases={
            "target": Case((50, 100, 200, 784)),
            "elbo": Case((1, 100, 200, 784)),
            "eval-chunk": Case((500, 10, 200, 784)),
        },
        from_kbd=_bernoulli_head_size,
    ),
    "log_mean_exp": OpBenchmark(
        op="log_mean_exp",
        dims=("K", "B"),
        make_inputs=log_mean_exp_inputs,
        # the target size, an IWAE training step, a K=5000 evaluation batch
        cases={"target": Case((5000, 1024)), "train": Case((64, 256)), "eval": Case((5000, 100))},
        from_kbd=lambda s: _kbd("log_mean_exp", s, 2),  # a D beyond (K, B) is ignored
    ),
}


@dataclass
class Bench:
    """A ready-to-time call of one provider of an op in one mode; setup and warm-up done."""

    call: Callable[[], object]
    inputs: Sequence[Tensor]
    nbytes: int  # bytes the op must move at least (see the module docstring), for GB/s


def _as_tuple(out: Outputs) -> tuple[Tensor, ...]:
    return out if isinstance(out, tuple) else (out,)


def _benchmark(op: str) -> OpBenchmark:
    if op not in OP_BENCHMARKS:
        raise ValueError(f"unknown op '{op}'; benchmarked ops: {', '.join(OP_BENCHMARKS)}")
    return OP_BENCHMARKS[op]


def setup_bench(
    op: str,
    provider: Provider,
    mode: Mode,
    size: tuple[int, ...],
    dtype: torch.dtype = torch.float32,
    device: torch.device | str = "cpu",
    seed: int = 0,
    **options: Any,
) -> Bench:
    """The one setup factory: `op`'s inputs at `size` (its own dims, `OP_BENCHMARKS[op].dims`;
    `options` go to its input maker), the provider's function, and warm-up, outside timing."""
    if provider not in PROVIDERS:
        raise ValueError(f"provider must be one of {', '.join(PROVIDERS)}, got '{provider}'")
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, got '{mode}'")
    device = torch.device(device)
    made = _benchmark(op).make_inputs(tuple(size), dtype, device, torch.Generator().manual_seed(seed), **options)
    fn = made.fused if provider == "fused" else made.reference
    if provider == "compiled":
        fn = torch.compile(made.reference, dynamic=False)
    inputs = made.inputs
    wrt = [t for t in inputs if t.requires_grad]

    if mode == "fwd":

        def call() -> object:
            with torch.no_grad():
                return fn(*inputs)

        with torch.no_grad():
            outs = _as_tuple(fn(*inputs))
        written: list[Tensor] = []
    else:
        outs, written = _as_tuple(fn(*inputs)), wrt
        grad_outs = [torch.ones_like(o) for o in outs]

        def call() -> object:
            return torch.autograd.grad(_as_tuple(fn(*inputs)), wrt, grad_outs)

    passes = 1 if mode == "fwd" else 2  # fwd_bwd: the backward reads inputs and grad_outputs again
    nbytes = passes * sum(t.numel() * t.element_size() for t in (*inputs, *outs)) + sum(
        t.numel() * t.element_size() for t in written
    )
    for _ in range(WARMUP_CALLS):
        call()
    _sync(device)
    return Bench(call, inputs, nbytes)


@dataclass
class Measurement:
    """Seconds of every timed call, keyed "provider/mode" (and the names of extra calls), and
    the bytes each provider and mode moves."""

    samples: dict[str, list[float]]
    nbytes: dict[str, int]

    def medians(self) -> dict[str, float]:
        return {k: statistics.median(v) for k, v in self.samples.items()}

    def bests(self) -> dict[str, float]:
        """Best times: other processes only ever add time, so on a shared machine the minimum
        is the steadier estimate of what a call costs."""
        return {k: min(v) for k, v in self.samples.items()}


def measure_op(
    op: str,
    size: tuple[int, ...],
    providers: Sequence[Provider] = PROVIDERS,
    modes: Sequence[Mode] = MODES,
    *,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str = "cpu",
    repeats: int = 20,
    rounds: int = 3,
    extra: Mapping[str, Callable[[], object]] | None = None,
    **options: Any,
) -> Measurement:
    """Sets up each of `providers` of `op` in each of `modes` at `size` (`setup_bench`), then times them
    (and the `extra` calls, e.g. a same-size copy) in `rounds` alternating rounds of `repeats`
    calls each (`time_rounds`)."""
    benches = {f"{p}/{m}": setup_bench(op, p, m, size, dtype, device, **options) for m in modes for p in providers}
    calls = {k: b.call for k, b in benches.items()} | dict(extra or {})
    samples = time_rounds(calls, device, repeats=repeats, rounds=rounds)
    return Measurement(samples, {k: b.nbytes for k, b in benches.items()})
