"""vaebench.ops.reparameterize (fused CPU/CUDA kernels) against reparameterize_reference."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from scipy import stats

from vaebench.ops import reparameterize, reparameterize_reference
from vaebench.ops.reference import philox_normal_reference
from vaebench.ops.reparameterize import draw_seed

from .support import assert_close_lowprec, needs_cuda, needs_fused

# (K, batch shape, D): odd sizes 1, 7, 333, several batch dims, no batch dim, and a D longer
# than the kernels' 1024-element chunk.
SHAPES = [
    (1, (1,), 1),
    (7, (333,), 7),
    (3, (7,), 333),
    (333, (1,), 7),
    (2, (3, 5), 4),
    (5, (), 3),
    (2, (3,), 2500),
]


def fused_op(mu, logvar, k, seed, path_gradient=False):
    return torch.ops.vaebench.reparameterize(mu, logvar, k, seed, path_gradient)


def kernel_eps(shape: tuple[int, ...], dtype: torch.dtype, k: int, seed: torch.Tensor) -> torch.Tensor:
    """The kernel's own eps: z for mu = 0, logvar = 0 (sigma = exp(0) = 1 exactly, z = eps)."""
    zeros = torch.zeros(shape, dtype=dtype)
    eps, _ = fused_op(zeros, zeros, k, seed)
    return eps


def inputs(batch, d, dtype, seed=0, scale=1.0):
    g = torch.Generator().manual_seed(seed)
    mu = torch.randn((*batch, d), generator=g, dtype=torch.float64).to(dtype)
    logvar = (scale * torch.randn((*batch, d), generator=g, dtype=torch.float64)).to(dtype)
    return mu, logvar


def tolerances(dtype: torch.dtype) -> dict[str, float]:
    return {"rtol": 1e-5, "atol": 1e-5} if dtype == torch.float32 else {"rtol": 1e-12, "atol": 1e-12}


def run_and_grad(fn, mu, logvar, grad_z, grad_lq):
    m = mu.detach().clone().requires_grad_()
    lv = logvar.detach().clone().requires_grad_()
    z, lq = fn(m, lv)
    torch.autograd.backward([z, lq], [grad_z, grad_lq])
    return z.detach(), lq.detach(), m.grad, lv.grad


# ---- values and gradients against the reference, fed the kernel's eps --------------------------


@needs_fused
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("k,batch,d", SHAPES)
def test_eps_is_the_philox_stream(dtype, k, batch, d):
    seed = torch.tensor([2024, 11])
    eps = kernel_eps((*batch, d), dtype, k, seed)
    assert eps.shape == (k, *batch, d)
    assert torch.equal(eps.reshape(-1), torch.ops.vaebench.philox_normal(seed, 0, eps.numel(), dtype))
    truth = philox_normal_reference(seed, 0, eps.numel(), dtype)
    assert torch.allclose(eps.reshape(-1).double(), truth, rtol=4 * torch.finfo(dtype).eps, atol=0)


@needs_fused
@pytest.mark.parametrize("path_gradient", [False, True])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("k,batch,d", SHAPES)
def test_values_and_gradients_match_reference(dtype, path_gradient, k, batch, d):
    mu, logvar = inputs(batch, d, dtype)
    seed = torch.tensor([7, 3])
    eps = kernel_eps(mu.shape, dtype, k, seed)
    g = torch.Generator().manual_seed(1)
    grad_z = torch.randn((k, *batch, d), generator=g, dtype=dtype)
    grad_lq = torch.randn((k, *batch), generator=g, dtype=dtype)
    got = run_and_grad(lambda m, lv: fused_op(m, lv, k, seed, path_gradient), mu, logvar, grad_z, grad_lq)
    want = run_and_grad(lambda m, lv: reparameterize_reference(m, lv, eps, path_gradient), mu, logvar, grad_z, grad_lq)
    for name, a, b in zip(("z", "log_q", "grad_mu", "grad_logvar"), got, want, strict=True):
        torch.testing.assert_close(a, b, **tolerances(dtype), msg=lambda m, n=name: f"{n}: {m}")
    if dtype == torch.float32:
        # STYLE.md's low-precision rule: error vs the float64 truth (same eps, inputs) <= 2x the
        # error of the reference computed in float32, plus one ulp of the values' scale.
        truth = run_and_grad(
            lambda m, lv: reparameterize_reference(m, lv, eps.double(), path_gradient),
            mu.double(),
            logvar.double(),
            grad_z.double(),
            grad_lq.double(),
        )
        for a, b, t in zip(got, want, truth, strict=True):
            assert_close_lowprec(a, t, b)


@needs_fused
@pytest.mark.parametrize("path_gradient", [False, True])
@pytest.mark.parametrize("use", ["z", "log_q"])
def test_gradient_through_one_output(path_gradient, use):
    mu, logvar = inputs((7,), 5, torch.float64)
    seed = torch.tensor([5, 0])
    eps = kernel_eps(mu.shape, torch.float64, 3, seed)
    grads = []
    for fn in (
        lambda m, lv: fused_op(m, lv, 3, seed, path_gradient),
        lambda m, lv: reparameterize_reference(m, lv, eps, path_gradient),
    ):
        m, lv = mu.clone().requires_grad_(), logvar.clone().requires_grad_()
        z, lq = fn(m, lv)
        out = z if use == "z" else lq
        (out * torch.linspace(-1, 2, out.numel(), dtype=out.dtype).reshape(out.shape)).sum().backward()
        # the reference leaves mu.grad None where log q does not depend on mu: that is zero
        grads.append(tuple(torch.zeros_like(mu) if g is None else g for g in (m.grad, lv.grad)))
    for a, b in zip(*grads, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


@needs_fused
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_extreme_logvar(dtype):
    mu = torch.tensor([[0.0, 1.0, -3.0, 1e3], [2.0, -1.0, 0.5, 0.0]], dtype=dtype)
    logvar = torch.tensor([[80.0, -80.0, 40.0, -80.0], [-40.0, 80.0, 0.0, -60.0]], dtype=dtype)
    seed = torch.tensor([1, 2])
    eps = kernel_eps(mu.shape, dtype, 4, seed)
    for path_gradient in (False, True):
        got = run_and_grad(
            lambda m, lv, pg=path_gradient: fused_op(m, lv, 4, seed, pg),
            mu,
            logvar,
            torch.ones(4, 2, 4, dtype=dtype),
            torch.full((4, 2), 0.5, dtype=dtype),
        )
        want = run_and_grad(
            lambda m, lv, pg=path_gradient: reparameterize_reference(m, lv, eps, pg),
            mu,
            logvar,
            torch.ones(4, 2, 4, dtype=dtype),
            torch.full((4, 2), 0.5, dtype=dtype),
        )
        for a, b in zip(got, want, strict=True):
            assert torch.isfinite(a).all()
            torch.testing.assert_close(a, b, rtol=1e-5 if dtype == torch.float32 else 1e-12, atol=0)


@needs_fused
def test_non_contiguous_inputs():
    base_mu, base_lv = inputs((6,), 9, torch.float64)
    mu, logvar = base_mu.t(), base_lv.t()  # (9, 6), non-contiguous
    assert not mu.is_contiguous()
    seed = torch.tensor([3, 3])
    want = run_and_grad(
        lambda m, lv: fused_op(m, lv, 2, seed),
        mu.contiguous(),
        logvar.contiguous(),
        torch.ones(2, 9, 6, dtype=torch.float64),
        torch.ones(2, 9, dtype=torch.float64),
    )
    got = run_and_grad(
        lambda m, lv: fused_op(m, lv, 2, seed),
        mu,
        logvar,
        torch.ones(2, 9, 6, dtype=torch.float64),
        torch.ones(2, 9, dtype=torch.float64),
    )
    for a, b in zip(got, want, strict=True):
        assert torch.equal(a, b)


@needs_fused
def test_empty_batch():
    mu = torch.zeros(0, 4, dtype=torch.float64)
    z, lq = fused_op(mu, mu, 3, torch.tensor([0, 0]))
    assert z.shape == (3, 0, 4) and lq.shape == (3, 0)


@needs_fused
@pytest.mark.parametrize("path_gradient", [False, True])
def test_gradcheck(path_gradient):
    mu, logvar = inputs((3,), 4, torch.float64)
    seed = torch.tensor([11, 0])

    def fn(m, lv):
        if path_gradient:
            # The STL gradient of log q is not the derivative of its value (that is the point of it;
            # test_values_and_gradients_match_reference checks it), so only z is checked here.
            return fused_op(m, lv, 2, seed, True)[0]
        return fused_op(m, lv, 2, seed, False)

    assert torch.autograd.gradcheck(fn, (mu.requires_grad_(), logvar.requires_grad_()))


@needs_fused
@pytest.mark.parametrize("path_gradient", [False, True])
def test_second_order(path_gradient):
    """Double backward: gradgradcheck, and equal to autograd through the reference."""
    mu, logvar = inputs((3,), 4, torch.float64)
    seed = torch.tensor([13, 1])
    eps = kernel_eps(mu.shape, torch.float64, 2, seed)
    weights = torch.linspace(-1.0, 1.0, 2 * 3 * 4, dtype=torch.float64).reshape(2, 3, 4)

    def scalar(fn, m, lv):
        z, lq = fn(m, lv)
        return (weights * z).sum() + (z.square().sum(-1) * lq).sum()

    hvps = []
    for fn in (
        lambda m, lv: fused_op(m, lv, 2, seed, path_gradient),
        lambda m, lv: reparameterize_reference(m, lv, eps, path_gradient),
    ):
        m, lv = mu.clone().requires_grad_(), logvar.clone().requires_grad_()
        g_m, g_lv = torch.autograd.grad(scalar(fn, m, lv), (m, lv), create_graph=True)
        hvps.append(torch.autograd.grad((g_m * g_lv).sum(), (m, lv)))
    for a, b in zip(*hvps, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)
    if path_gradient:
        # The path-gradient backward's own derivative follows the reference's semantics (eps
        # moves with z inside log q), not the derivative of the backward kernel's value, so
        # only the comparison above applies.
        return
    gz = torch.randn(2, 3, 4, dtype=torch.float64, requires_grad=True)
    gl = torch.randn(2, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(
        lambda a, b, m, lv: torch.ops.vaebench.reparameterize_backward(a, b, m, lv, seed, 2, False),
        (gz, gl, mu.clone().requires_grad_(), logvar.clone().requires_grad_()),
    )


@needs_fused
@pytest.mark.parametrize("path_gradient", [False, True])
def test_opcheck(path_gradient):
    mu, logvar = inputs((5,), 3, torch.float64)
    seed = torch.tensor([11, 0])
    torch.library.opcheck(
        torch.ops.vaebench.reparameterize.default,
        (mu.requires_grad_(), logvar.requires_grad_(), 4, seed, path_gradient),
    )
    torch.library.opcheck(
        torch.ops.vaebench.reparameterize_backward.default,
        (torch.randn(4, 5, 3, dtype=torch.float64), None, mu.detach(), logvar.detach(), seed, 4, path_gradient),
    )


@needs_fused
def test_torch_compile_fullgraph():
    mu, logvar = inputs((8,), 4, torch.float32)
    seed = torch.tensor([21, 0])

    def loss(m, lv):
        z, lq = torch.ops.vaebench.reparameterize(m, lv, 3, seed, True)
        return (z.square().sum(-1) - lq).mean()

    def public(m, lv):
        z, lq = reparameterize(m, lv, 3, path_gradient=True)
        return (z.square().sum(-1) - lq).mean()

    torch._dynamo.reset()
    compiled = torch.compile(loss, fullgraph=True)
    results = []
    for fn in (loss, compiled):
        m, lv = mu.clone().requires_grad_(), logvar.clone().requires_grad_()
        out = fn(m, lv)
        out.backward()
        results.append((out.detach(), m.grad, lv.grad))
    for a, b in zip(*results, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    # the public wrapper, seed drawn inside the graph, also traces without graph breaks
    m, lv = mu.clone().requires_grad_(), logvar.clone().requires_grad_()
    out = torch.compile(public, fullgraph=True)(m, lv)
    out.backward()
    assert torch.isfinite(out) and torch.isfinite(m.grad).all() and torch.isfinite(lv.grad).all()


# ---- determinism: threads, capability copies -----------------------------------------------------


def _digest(tensors) -> str:
    h = hashlib.sha256()
    for t in tensors:
        h.update(t.detach().contiguous().numpy().tobytes())
    return h.hexdigest()


_CAPABILITY_SCRIPT = textwrap.dedent(
    """
    import hashlib, json, torch
    import vaebench.ops as ops
    out = {"capability": ops.build_info()["cpu_capability"]}
    for dtype in (torch.float32, torch.float64):
        h = hashlib.sha256()
        g = torch.Generator().manual_seed(0)
        mu = torch.randn(37, 333, generator=g, dtype=dtype)
        lv = torch.randn(37, 333, generator=g, dtype=dtype)
        m, l = mu.requires_grad_(), lv.requires_grad_()
        z, lq = torch.ops.vaebench.reparameterize(m, l, 5, torch.tensor([123, 4]), True)
        torch.autograd.backward([z, lq], [torch.ones_like(z), torch.ones_like(lq)])
        for t in (z, lq, m.grad, l.grad, torch.ops.vaebench.philox_normal(torch.tensor([9, 9]), 3, 5001, dtype)):
            h.update(t.detach().contiguous().numpy().tobytes())
        out[str(dtype)] = h.hexdigest()
    print(json.dumps(out))
    """
)


@needs_fused
def test_every_cpu_capability_gives_the_same_bits():
    """Normals, z, log_q and the gradients are bit-identical in the DEFAULT, AVX2 and AVX-512 copies."""
    available = torch.ops.vaebench.build_info()
    caps = json.loads(available)["cpu_capabilities"].lower().split(",")
    results = {}
    for cap in caps:
        env = {**os.environ, "VAEBENCH_CPU_CAPABILITY": cap, "OMP_NUM_THREADS": "1"}
        proc = subprocess.run(
            [sys.executable, "-c", _CAPABILITY_SCRIPT],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert proc.returncode == 0, proc.stderr
        results[cap] = json.loads(proc.stdout.strip().splitlines()[-1])
    ran = {r["capability"] for r in results.values()}
    digests = {json.dumps({k: v for k, v in r.items() if k != "capability"}, sort_keys=True) for r in results.values()}
    assert len(digests) == 1, results
    if len(ran) < len(caps):
        pytest.skip(f"this CPU runs only {sorted(ran)} of the compiled {caps} (the ones it ran agreed)")


@needs_fused
@pytest.mark.parametrize("k,b,d", [(16, 64, 33), (200, 3, 33)])  # the second splits K in the backward
def test_thread_count_does_not_change_the_bits(k, b, d):
    mu, logvar = inputs((b,), d, torch.float32)
    seed = torch.tensor([8, 8])
    before = torch.get_num_threads()
    digests = []
    try:
        for n in (1, 2):
            torch.set_num_threads(n)
            digests.append(
                _digest(
                    run_and_grad(
                        lambda m, lv: fused_op(m, lv, k, seed, True), mu, logvar, torch.ones(k, b, d), torch.ones(k, b)
                    )
                )
            )
    finally:
        torch.set_num_threads(before)
    assert digests[0] == digests[1]


# ---- the sampler ---------------------------------------------------------------------------


@needs_fused
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_eps_distribution(dtype):
    """Moments and a Kolmogorov-Smirnov test of 2^18 eps against N(0, 1)."""
    eps = kernel_eps((64, 64), dtype, 64, draw_seed(torch.Generator().manual_seed(3))).reshape(-1).double().numpy()
    n = eps.size
    # 5-sigma bands of the sample moments' standard errors (a false alarm ~ 1e-6 per check)
    assert abs(eps.mean()) < 5 / np.sqrt(n)
    assert abs(eps.var() - 1) < 5 * np.sqrt(2 / n)
    assert abs(stats.skew(eps)) < 5 * np.sqrt(6 / n)
    assert abs(stats.kurtosis(eps)) < 5 * np.sqrt(24 / n)
    assert stats.kstest(eps, "norm").pvalue > 1e-4


@needs_fused
def test_eps_independent_across_samples_batch_and_dims():
    eps = kernel_eps((256, 16), torch.float32, 64, torch.tensor([77, 0])).double()  # (K, B, D)
    n = eps.numel()
    bound = 5 / np.sqrt(n)  # 5 standard errors of a correlation of independent N(0, 1) pairs
    pairs = {
        "across K": (eps[:-1], eps[1:]),
        "across batch": (eps[:, :-1], eps[:, 1:]),
        "across D (neighbours in a Philox block)": (eps[..., :-1], eps[..., 1:]),
        "across D, 2 apart": (eps[..., :-2], eps[..., 2:]),
        "squares across D (Box-Muller pair)": (eps[..., 0::2] ** 2 - 1, eps[..., 1::2] ** 2 - 1),
    }
    for name, (a, b) in pairs.items():
        corr = float((a * b).mean() / (a.std() * b.std()))
        assert abs(corr) < bound * np.sqrt(n / a.numel()) * (np.sqrt(2) if "squares" in name else 1), name


@needs_fused
def test_generator_semantics():
    mu, logvar = inputs((4,), 3, torch.float64)
    g = torch.Generator().manual_seed(5)
    z1, _ = reparameterize(mu, logvar, 2, generator=g)
    z2, _ = reparameterize(mu, logvar, 2, generator=g)
    assert not torch.equal(z1, z2), "successive calls must draw fresh samples"
    g.manual_seed(5)
    z1b, _ = reparameterize(mu, logvar, 2, generator=g)
    assert torch.equal(z1, z1b), "the same seed must repeat the samples"
    torch.manual_seed(9)
    a, _ = reparameterize(mu, logvar, 2)
    b, _ = reparameterize(mu, logvar, 2)
    torch.manual_seed(9)
    a2, _ = reparameterize(mu, logvar, 2)
    assert torch.equal(a, a2) and not torch.equal(a, b)
    # successive calls are independent draws
    g.manual_seed(1)
    zeros = torch.zeros(64, 64, dtype=torch.float64)
    e1, _ = reparameterize(zeros, zeros, 8, generator=g)
    e2, _ = reparameterize(zeros, zeros, 8, generator=g)
    assert abs(float(torch.corrcoef(torch.stack([e1.reshape(-1), e2.reshape(-1)]))[0, 1])) < 5 / np.sqrt(e1.numel())


def test_reference_path_without_library():
    """VAEBENCH_DISABLE_FUSED=1: torch.randn + the reference, same API and checks."""
    script = textwrap.dedent(
        """
        import torch, vaebench.ops as ops
        assert ops.backend("cpu") == "reference"
        mu, lv = torch.zeros(3, 2, dtype=torch.float64), torch.zeros(3, 2, dtype=torch.float64)
        z, lq = ops.reparameterize(mu, lv, 4, generator=torch.Generator().manual_seed(0))
        eps = torch.randn(4, 3, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
        assert torch.equal(z, eps)
        torch.testing.assert_close(lq, ops.reparameterize_reference(mu, lv, eps)[1])
        try:
            ops.reparameterize(mu, lv, 0)
        except ValueError as e:
            assert "num_samples" in str(e)
        else:
            raise AssertionError("no error for num_samples=0")
        print("ok")
        """
    )
    env = {**os.environ, "VAEBENCH_DISABLE_FUSED": "1"}
    proc = subprocess.run(
        [sys.executable, "-W", "ignore", "-c", script],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr


# ---- errors ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "mu,logvar,k,exc,match",
    [
        (
            torch.zeros(4, 3),
            torch.zeros(4, 5),
            1,
            ValueError,
            r"logvar must have the shape of mu .* \(4, 5\) and \(4, 3\)",
        ),
        (torch.zeros(4, 3), torch.zeros(4, 3, dtype=torch.float64), 1, TypeError, "logvar must have the dtype of mu"),
        (torch.zeros(4, 3, dtype=torch.int64), torch.zeros(4, 3), 1, TypeError, "mu must be a floating-point tensor"),
        (torch.zeros(4, 3), torch.zeros(4, 3, device="meta"), 1, ValueError, "logvar must be on the device of mu"),
        (torch.zeros(4, 3), torch.zeros(4, 3), 0, ValueError, "num_samples must be an int >= 1, got 0"),
        (torch.zeros(4, 3), torch.zeros(4, 3), 2.0, ValueError, "num_samples must be an int >= 1"),
        (torch.zeros(4, 0), torch.zeros(4, 0), 1, ValueError, "D >= 1"),
        (torch.zeros(()), torch.zeros(()), 1, ValueError, "at least 1 dim"),
    ],
)
def test_wrapper_errors_name_the_argument(mu, logvar, k, exc, match):
    with pytest.raises(exc, match=match):
        reparameterize(mu, logvar, k)


@needs_fused
@pytest.mark.parametrize(
    "mu,logvar,k,seed,match",
    [
        (
            torch.zeros(4, 3),
            torch.zeros(4, 5),
            1,
            torch.tensor([0, 0]),
            r"logvar must have the shape of mu, got \[4, 5\] and \[4, 3\]",
        ),
        (
            torch.zeros(4, 3),
            torch.zeros(4, 3, dtype=torch.float64),
            1,
            torch.tensor([0, 0]),
            "logvar must have the dtype of mu",
        ),
        (
            torch.zeros(4, 3, dtype=torch.int32),
            torch.zeros(4, 3, dtype=torch.int32),
            1,
            torch.tensor([0, 0]),
            "mu must be a floating-point tensor",
        ),
        (torch.zeros(4, 3), torch.zeros(4, 3), 0, torch.tensor([0, 0]), "num_samples must be >= 1, got 0"),
        (torch.zeros(4, 0), torch.zeros(4, 0), 1, torch.tensor([0, 0]), "D >= 1"),
        (torch.zeros(4, 3), torch.zeros(4, 3), 1, torch.tensor([0]), "seed must be a CPU int64 tensor"),
        (
            torch.zeros(4, 3, dtype=torch.float16),
            torch.zeros(4, 3, dtype=torch.float16),
            1,
            torch.tensor([0, 0]),
            "on CPU mu must be float32 or float64",
        ),
    ],
)
def test_kernel_errors_name_the_argument(mu, logvar, k, seed, match):
    with pytest.raises(RuntimeError, match=match):
        fused_op(mu, logvar, k, seed)


@needs_fused
def test_backward_kernel_checks_grad_shapes():
    mu = torch.zeros(4, 3)
    with pytest.raises(RuntimeError, match=r"grad_z must be \(K, \*batch, D\)"):
        torch.ops.vaebench.reparameterize_backward(torch.zeros(2, 4, 4), None, mu, mu, torch.tensor([0, 0]), 2, False)
    with pytest.raises(RuntimeError, match=r"grad_log_q must be \(K, \*batch\)"):
        torch.ops.vaebench.reparameterize_backward(None, torch.zeros(3, 4), mu, mu, torch.tensor([0, 0]), 2, False)


# ---- CUDA ------------------------------------------------------------------------------------


@pytest.mark.cuda
@needs_cuda
@needs_fused
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("k,batch,d", [(3, (7,), 333), (7, (33,), 7), (2, (3,), 2500), (1, (1,), 1)])
@pytest.mark.parametrize("path_gradient", [False, True])
def test_cuda_samples_equal_cpu_samples(dtype, k, batch, d, path_gradient):
    if not json.loads(torch.ops.vaebench.build_info())["cuda"]:
        pytest.fail("a CUDA device is visible but the library was built without CUDA kernels")
    cpu_dtype = torch.float64 if dtype == torch.float64 else torch.float32
    mu, logvar = inputs(batch, d, dtype)
    seed = torch.tensor([31, 7])
    g = torch.Generator().manual_seed(2)
    grad_z = torch.randn((k, *batch, d), generator=g).to(dtype)
    grad_lq = torch.randn((k, *batch), generator=g).to(dtype)
    # CPU run on the same (rounded) inputs in the float type the CUDA kernel computes in
    cpu = run_and_grad(
        lambda m, lv: fused_op(m, lv, k, seed, path_gradient),
        mu.to(cpu_dtype),
        logvar.to(cpu_dtype),
        grad_z.to(cpu_dtype),
        grad_lq.to(cpu_dtype),
    )
    cuda = run_and_grad(
        lambda m, lv: fused_op(m, lv, k, seed, path_gradient), mu.cuda(), logvar.cuda(), grad_z.cuda(), grad_lq.cuda()
    )
    # the samples: bit for bit (half types: the float32 z rounded once)
    assert torch.equal(cuda[0].cpu(), cpu[0].to(dtype))
    # sums run in another order on the GPU
    tol = {torch.float64: 1e-12, torch.float32: 1e-5}.get(dtype, 1e-2)
    for a, b in zip(cuda[1:], cpu[1:], strict=True):
        torch.testing.assert_close(
            a.cpu().to(cpu_dtype), b.to(dtype).to(cpu_dtype), rtol=tol, atol=tol * max(1.0, float(b.abs().max()))
        )


@pytest.mark.cuda
@needs_cuda
@needs_fused
def test_cuda_default_generator_gives_cpu_samples():
    mu, logvar = inputs((5,), 6, torch.float32)
    torch.manual_seed(4)
    z_cpu, _ = reparameterize(mu, logvar, 3)
    torch.manual_seed(4)
    z_cuda, _ = reparameterize(mu.cuda(), logvar.cuda(), 3)
    assert torch.equal(z_cuda.cpu(), z_cpu)
