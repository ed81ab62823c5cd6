"""The fused ops' benchmark setup factory: inputs, providers, modes, bytes moved, timing."""

from __future__ import annotations

import math

import pytest
import torch

from vaebench.benchmarking.op_benchmark import (
    MODES,
    OP_BENCHMARKS,
    measure_op,
    setup_bench,
)

from ..ops.support import needs_fused

# The smallest size of each op's own dims, odd so that no shape hides a transposition.
SMALL = {"reparameterize": (3, 5, 7), "gaussian_kl": (5, 7), "log_mean_exp": (3, 5), "bernoulli_head": (3, 5, 7, 9)}


def _outputs(fn, inputs):
    out = fn(*inputs)
    return out if isinstance(out, tuple) else (out,)


@needs_fused  # without the extension "fused" is the reference: comparing them would test nothing
@pytest.mark.parametrize(
    ("op", "options", "num_inputs"),
    [("gaussian_kl", {}, 2), ("gaussian_kl", {"prior": True}, 4), ("log_mean_exp", {}, 1), ("bernoulli_head", {}, 3)],
)
def test_reference_and_fused_agree(op: str, options: dict, num_inputs: int) -> None:
    made = OP_BENCHMARKS[op].make_inputs(SMALL[op], torch.float64, "cpu", torch.Generator().manual_seed(0), **options)
    assert len(made.inputs) == num_inputs
    assert all(t.is_leaf and t.requires_grad and t.dtype == torch.float64 for t in made.inputs)
    ref, fused = _outputs(made.reference, made.inputs), _outputs(made.fused, made.inputs)
    for r, f in zip(ref, fused, strict=True):
        torch.testing.assert_close(f, r)


@pytest.mark.parametrize("provider", ["reference", "fused"])
def test_reparameterize_draws_k_consistent_samples(provider: str) -> None:
    # The providers draw different normals: each output must be a valid (z, log q(z)) pair.
    k, b, d = SMALL["reparameterize"]
    made = OP_BENCHMARKS["reparameterize"].make_inputs((k, b, d), torch.float64, "cpu")
    mu, logvar = made.inputs
    z, log_q = _outputs(getattr(made, provider), made.inputs)
    assert z.shape == (k, b, d) and log_q.shape == (k, b)
    eps = (z - mu) / torch.exp(0.5 * logvar)
    expected = (-0.5 * eps.square() - 0.5 * logvar - 0.5 * math.log(2 * math.pi)).sum(-1)
    torch.testing.assert_close(log_q, expected)


def test_inputs_are_seeded_and_leave_the_global_rng_alone() -> None:
    state = torch.get_rng_state()
    a = setup_bench("log_mean_exp", "reference", "fwd", (3, 5), seed=1).inputs[0]
    b = setup_bench("log_mean_exp", "fused", "fwd_bwd", (3, 5), seed=1).inputs[0]
    c = setup_bench("log_mean_exp", "reference", "fwd", (3, 5), seed=2).inputs[0]
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert torch.equal(state, torch.get_rng_state())  # log_mean_exp draws nothing per call


@pytest.mark.parametrize("op", list(OP_BENCHMARKS))
@pytest.mark.parametrize("provider", ["reference", "fused"])
def test_fwd_and_fwd_bwd_calls(op: str, provider: str) -> None:
    size = SMALL[op]
    fwd = setup_bench(op, provider, "fwd", size, torch.float64)
    out = fwd.call()
    assert all(not o.requires_grad for o in (out if isinstance(out, tuple) else (out,)))  # under no_grad
    bwd = setup_bench(op, provider, "fwd_bwd", size, torch.float64)
    grads = bwd.call()
    assert [g.shape for g in grads] == [t.shape for t in bwd.inputs]
    assert all(t.grad is None for t in bwd.inputs)  # autograd.grad: nothing accumulates
    # bytes, 8 per float64: fwd reads the inputs and writes the outputs; fwd_bwd adds the
    # backward, which reads the inputs and one gradient per output, and writes the gradients
    n_in = sum(t.numel() for t in fwd.inputs)
    n_out = {  # z and log_q: (K, B, D), (K, B); kl: (B,); log_mean_exp: (B,)
        "reparameterize": lambda k, b, d: k * b * d + k * b,
        "gaussian_kl": lambda b, d: b,
        "log_mean_exp": lambda k, b: b,
        "bernoulli_head": lambda k, b, h, d: k * b,  # log p(x | h): (K, B); x is data, not an input
    }[op](*size)
    assert fwd.nbytes == 8 * (n_in + n_out)
    assert bwd.nbytes == 8 * (2 * n_in + 2 * n_out + n_in)


def test_compiled_provider_matches_the_reference() -> None:
    size = (3, 5)
    compiled = setup_bench("log_mean_exp", "compiled", "fwd_bwd", size, torch.float64)
    reference = setup_bench("log_mean_exp", "reference", "fwd_bwd", size, torch.float64)
    torch.testing.assert_close(compiled.call(), reference.call())


def test_cases_and_suite_sizes() -> None:
    for op, bench in OP_BENCHMARKS.items():
        assert bench.op == op and "target" in bench.cases
        for case in bench.cases.values():
            assert len(case.size) == len(bench.dims)
            small = bench.make_inputs(SMALL[op], torch.float32, "cpu", **case.options)
            assert small.inputs
    assert OP_BENCHMARKS["gaussian_kl"].cases["learned-prior"].options == {"prior": True}
    # a kernels-suite size (K, B, D) in each op's own dims
    assert OP_BENCHMARKS["reparameterize"].from_kbd((4, 8, 3)) == (4, 8, 3)
    assert OP_BENCHMARKS["gaussian_kl"].from_kbd((4, 8, 3)) == (32, 3)
    assert OP_BENCHMARKS["log_mean_exp"].from_kbd((4, 8, 3)) == (4, 8)
    assert OP_BENCHMARKS["log_mean_exp"].from_kbd((4, 8)) == (4, 8)
    assert OP_BENCHMARKS["bernoulli_head"].from_kbd((4, 8, 3)) == (4, 8, 3, 784)
    with pytest.raises(ValueError, match=r"gaussian_kl is timed at sizes \(K, B, D\), got \(4, 8\)"):
        OP_BENCHMARKS["gaussian_kl"].from_kbd((4, 8))


def test_measure_op_alternates_every_entry() -> None:
    calls = []
    extra = {"noop": lambda: calls.append(1)}
    m = measure_op("gaussian_kl", (5, 7), ("reference", "fused"), MODES, repeats=2, rounds=3, extra=extra)
    assert list(m.samples) == ["reference/fwd", "fused/fwd", "reference/fwd_bwd", "fused/fwd_bwd", "noop"]
    assert all(len(v) == 6 for v in m.samples.values()) and len(calls) == 6
    assert set(m.nbytes) == set(m.samples) - {"noop"}
    assert all(m.bests()[k] <= m.medians()[k] for k in m.samples)


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (("frob", "fused", "fwd", (3, 5)), "unknown op 'frob'; benchmarked ops: reparameterize"),
        (("log_mean_exp", "eager", "fwd", (3, 5)), "provider must be one of reference, compiled, fused, got 'eager'"),
        (("log_mean_exp", "fused", "bwd", (3, 5)), "mode must be one of fwd, fwd_bwd, got 'bwd'"),
    ],
)
def test_bad_arguments_are_named(args: tuple, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        setup_bench(*args)
