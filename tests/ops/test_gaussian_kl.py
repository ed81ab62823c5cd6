"""vaebench.ops.gaussian_kl against gaussian_kl_reference."""

from __future__ import annotations

import pytest
import torch

from vaebench.ops import gaussian_kl, gaussian_kl_reference
from vaebench.ops.support import FUSED_DTYPES

from .support import assert_close_lowprec, needs_cuda, needs_fused


@pytest.fixture(autouse=True)
def _seed() -> None:
    # Every draw reproducible: the low-precision rule compares maxima of rounding errors, whose
    # tails vary from draw to draw (on average the fused error equals the reference's).
    torch.manual_seed(0)


# (batch shape, D, prior_mu shape, prior_logvar shape); None = standard normal half.
CASES = [
    ((1,), 1, None, None),
    ((7,), 333, None, None),
    ((333,), 7, None, None),
    ((5, 3), 7, None, None),
    ((7,), 5, (5,), (5,)),  # shared prior
    ((7,), 5, (1, 5), (5,)),
    ((4, 3), 33, (33,), None),  # one half given
    ((4, 3), 33, None, (1, 1, 33)),
    ((7,), 5, (7, 5), (7, 5)),  # one prior per row
    ((4, 3), 6, (4, 1, 6), (4, 3, 6)),  # partly broadcast
    ((4, 3), 6, (3, 6), (1, 6)),
]


def make(batch, D, pm_shape, pl_shape, dtype=torch.float64, seed=0, scale=1.0):
    gen = torch.Generator().manual_seed(seed)

    def rnd(shape):
        return None if shape is None else scale * torch.randn(shape, dtype=dtype, generator=gen)

    return rnd((*batch, D)), rnd((*batch, D)), rnd(pm_shape), rnd(pl_shape)


def kl_and_grads(fn, inputs, grad_out):
    leaves = [None if t is None else t.detach().clone().requires_grad_() for t in inputs]
    kl = fn(*leaves)
    present = [t for t in leaves if t is not None]
    grads = torch.autograd.grad(kl, present, grad_out.to(kl.dtype))
    return kl.detach(), grads


@needs_fused  # without the extension the op is its reference: comparing them would test nothing
@pytest.mark.parametrize("batch,D,pm,pl", CASES)
def test_matches_reference_float64(batch, D, pm, pl):
    inputs = make(batch, D, pm, pl)
    grad_out = torch.randn(batch, dtype=torch.float64, generator=torch.Generator().manual_seed(10))
    kl, grads = kl_and_grads(gaussian_kl, inputs, grad_out)
    kl_ref, grads_ref = kl_and_grads(gaussian_kl_reference, inputs, grad_out)
    assert kl.shape == batch
    torch.testing.assert_close(kl, kl_ref, rtol=1e-12, atol=1e-12)
    for g, g_ref, t in zip(grads, grads_ref, [t for t in inputs if t is not None], strict=True):
        assert g.shape == t.shape
        torch.testing.assert_close(g, g_ref, rtol=1e-12, atol=1e-12)


@needs_fused  # without the extension the op is its reference: comparing them would test nothing
@pytest.mark.parametrize("batch,D,pm,pl", CASES)
def test_float32_within_twice_reference_error(batch, D, pm, pl):
    inputs = make(batch, D, pm, pl, seed=1)
    inputs32 = [None if t is None else t.float() for t in inputs]
    grad_out = torch.randn(batch, dtype=torch.float64, generator=torch.Generator().manual_seed(10))
    kl64, grads64 = kl_and_grads(gaussian_kl_reference, inputs, grad_out)
    kl_ref, grads_ref = kl_and_grads(gaussian_kl_reference, inputs32, grad_out)
    kl, grads = kl_and_grads(gaussian_kl, inputs32, grad_out)
    assert_close_lowprec(kl, kl64, kl_ref)
    for g, g64, g_ref in zip(grads, grads64, grads_ref, strict=True):
        assert_close_lowprec(g, g64, g_ref)


@pytest.mark.parametrize("pm,pl", [(None, None), ((3,), (1, 3)), ((4, 3), (4, 3))])
def test_gradcheck(pm, pl):
    inputs = [None if t is None else t.requires_grad_() for t in make((4,), 3, pm, pl, seed=2)]
    assert torch.autograd.gradcheck(gaussian_kl, tuple(inputs))


@pytest.mark.parametrize("pm,pl", [(None, None), ((3,), (1, 3)), ((4, 3), None)])
def test_gradgradcheck(pm, pl):
    inputs = [None if t is None else t.requires_grad_() for t in make((4,), 3, pm, pl, seed=9)]
    assert torch.autograd.gradgradcheck(gaussian_kl, tuple(inputs))


@needs_fused  # without the extension the op is its reference: comparing them would test nothing
def test_grads_only_where_asked():
    mu, lv, pm, pl = make((6,), 4, (4,), (4,), seed=3)
    mu.requires_grad_()
    pl.requires_grad_()
    kl = gaussian_kl(mu, lv, pm, pl)
    g_mu, g_pl = torch.autograd.grad(kl.sum(), (mu, pl))
    _, (g_mu_ref, _, _, g_pl_ref) = kl_and_grads(
        gaussian_kl_reference, (mu, lv, pm, pl), torch.ones(6, dtype=torch.float64)
    )
    torch.testing.assert_close(g_mu, g_mu_ref)
    torch.testing.assert_close(g_pl, g_pl_ref)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_extreme_logvar(dtype):
    gen = torch.Generator().manual_seed(4)
    mu = torch.randn(16, 9, dtype=torch.float64, generator=gen)
    lv = torch.empty(16, 9, dtype=torch.float64).uniform_(-80, 80, generator=gen)
    lv[0, :2] = torch.tensor([-80.0, 80.0])
    for prior in (
        (None, None),
        (
            torch.zeros(9, dtype=torch.float64),
            torch.full((9,), 5.0, dtype=torch.float64),
        ),
    ):
        inputs = (mu, lv, *prior)
        cast = [None if t is None else t.to(dtype) for t in inputs]
        grad_out = torch.rand(16, dtype=torch.float64, generator=gen) + 0.5
        kl64, grads64 = kl_and_grads(gaussian_kl_reference, inputs, grad_out)
        kl, grads = kl_and_grads(gaussian_kl, cast, grad_out)
        assert torch.isfinite(kl).all() and all(torch.isfinite(g).all() for g in grads)
        if dtype == torch.float64:
            torch.testing.assert_close(kl, kl64, rtol=1e-12, atol=0)
        else:
            kl_ref, grads_ref = kl_and_grads(gaussian_kl_reference, cast, grad_out)
            assert_close_lowprec(kl, kl64, kl_ref)
            for g, g64, g_ref in zip(grads, grads64, grads_ref, strict=True):
                assert_close_lowprec(g, g64, g_ref)


def test_kl_is_zero_at_the_prior_and_positive_elsewhere():
    mu, lv, pm, pl = make((5,), 8, (8,), (8,), seed=5)
    torch.testing.assert_close(
        gaussian_kl(pm.expand(5, 8), pl.expand(5, 8), pm, pl),
        torch.zeros(5, dtype=torch.float64),
    )
    assert (gaussian_kl(mu, lv, pm, pl) > 0).all()


@needs_fused  # without the extension the op is its reference: comparing them would test nothing
def test_non_contiguous_inputs():
    gen = torch.Generator().manual_seed(12)
    base = torch.randn(12, 2, 40, dtype=torch.float64, generator=gen)
    mu, lv = base[:, 0, ::2], base[:, 1, 1::2]
    pm = torch.randn(40, dtype=torch.float64, generator=gen)[::2]
    pl = torch.randn(20, 12, dtype=torch.float64, generator=gen).T
    assert not any(t.is_contiguous() for t in (mu, lv, pm, pl))
    grad_out = torch.randn(12, dtype=torch.float64, generator=torch.Generator().manual_seed(11))
    kl, grads = kl_and_grads(gaussian_kl, (mu, lv, pm, pl), grad_out)
    kl_ref, grads_ref = kl_and_grads(gaussian_kl_reference, (mu, lv, pm, pl), grad_out)
    torch.testing.assert_close(kl, kl_ref)
    for g, g_ref in zip(grads, grads_ref, strict=True):
        torch.testing.assert_close(g, g_ref)


def test_torch_compile_fullgraph():
    def elbo_kl(mu: torch.Tensor, lv: torch.Tensor, pm: torch.Tensor) -> torch.Tensor:
        return gaussian_kl(mu, lv).sum() + gaussian_kl(mu, lv, pm, None).sum()

    mu, lv, pm, _ = make((6,), 5, (5,), None, seed=6)
    leaves = [t.requires_grad_() for t in (mu, lv, pm)]
    compiled = torch.compile(elbo_kl, fullgraph=True, backend="aot_eager")
    y = compiled(*leaves)
    grads = torch.autograd.grad(y, leaves)
    y_ref = gaussian_kl_reference(mu, lv).sum() + gaussian_kl_reference(mu, lv, pm, None).sum()
    grads_ref = torch.autograd.grad(y_ref, leaves)
    torch.testing.assert_close(y, y_ref)
    for g, g_ref in zip(grads, grads_ref, strict=True):
        torch.testing.assert_close(g, g_ref)


@needs_fused
@pytest.mark.parametrize("pm,pl", [(None, None), ((5,), None), ((1, 5), (5,)), ((3, 5), (3, 5))])
def test_opcheck(pm, pl):
    mu, lv, p_mu, p_lv = make((3,), 5, pm, pl, seed=7)
    args = tuple(None if t is None else t.requires_grad_() for t in (mu, lv, p_mu, p_lv))
    torch.library.opcheck(torch.ops.vaebench.gaussian_kl.default, args)
    detached = tuple(None if t is None else t.detach() for t in args)
    torch.library.opcheck(
        torch.ops.vaebench.gaussian_kl_backward.default,
        (torch.randn(3, dtype=torch.float64), *detached, True),
    )


@pytest.mark.parametrize(
    "args,error,match",
    [
        (
            (torch.zeros(4, 3), torch.zeros(4, 5)),
            ValueError,
            r"logvar must have the shape of mu, got \[?\(?4, 5",
        ),
        (
            (torch.zeros(4, 3), torch.zeros(4, 3), torch.zeros(4)),
            ValueError,
            "prior_mu must end in the latent dim D=3",
        ),
        (
            (torch.zeros(4, 3), torch.zeros(4, 3), None, torch.zeros(2, 3)),
            ValueError,
            "prior_logvar must broadcast to mu's shape",
        ),
        (
            (torch.zeros(4, 3), torch.zeros(4, 3, dtype=torch.float64)),
            TypeError,
            "logvar must have the dtype of mu",
        ),
        (
            (
                torch.zeros(4, 3, dtype=torch.int32),
                torch.zeros(4, 3, dtype=torch.int32),
            ),
            TypeError,
            "mu must be a floating-point tensor",
        ),
        (
            (torch.zeros(4, 0), torch.zeros(4, 0)),
            ValueError,
            "mu must hold D >= 1 latent dims",
        ),
        (
            (torch.tensor(0.0), torch.tensor(0.0)),
            ValueError,
            r"mu must be \(\*batch, D\) with at least 1 dim",
        ),
        (
            (torch.zeros(4, 3), torch.zeros(4, 3), torch.zeros(3, dtype=torch.float64)),
            TypeError,
            "prior_mu must have the dtype of mu",
        ),
    ],
)
def test_errors_name_the_argument(args, error, match):
    with pytest.raises(error, match=match):  # the same type on the fused and the reference path
        gaussian_kl(*args)


def test_cpu_half_runs_the_reference():
    """vaebench.ops.support.FUSED_DTYPES: CPU half has no kernel, so the wrapper takes the reference."""
    mu, logvar = torch.randn(2, 3).half(), torch.randn(2, 3).half()
    assert torch.equal(gaussian_kl(mu, logvar), gaussian_kl_reference(mu, logvar, None, None))


@needs_fused
def test_the_cpu_kernel_refuses_half_as_fused_dtypes_says():
    assert torch.float16 not in FUSED_DTYPES["cpu"]
    with pytest.raises(RuntimeError, match="on CPU mu must be float32 or float64, got Half"):
        torch.ops.vaebench.gaussian_kl(
            torch.zeros(2, 3, dtype=torch.half), torch.zeros(2, 3, dtype=torch.half), None, None
        )


@pytest.mark.cuda
@needs_cuda
@pytest.mark.cuda
def test_cuda_backward_beyond_one_grid():
    """8.5M rows: more row blocks (128 rows each) than one grid's 65535, launched in parts; the
    shared prior's gradient sums the partial sums of all of them."""
    inputs = make((8_500_000,), 1, (1,), (1,), seed=12)
    grad_out = torch.randn(8_500_000, dtype=torch.float64, generator=torch.Generator().manual_seed(13))
    _, grads64 = kl_and_grads(gaussian_kl_reference, inputs, grad_out)
    _, grads = kl_and_grads(gaussian_kl, [t.cuda() for t in inputs], grad_out.cuda())
    for g, g64 in zip(grads, grads64, strict=True):
        torch.testing.assert_close(g.cpu(), g64, rtol=1e-10, atol=1e-10)


@needs_cuda
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64])
@pytest.mark.parametrize(
    "batch,D,pm,pl",
    [
        ((4096,), 256, None, None),
        ((333,), 7, (7,), (1, 7)),
        ((5, 3), 33, (5, 1, 33), (33,)),
    ],
)
def test_cuda_matches_reference(dtype, batch, D, pm, pl):
    inputs = make(batch, D, pm, pl, seed=8)
    grad_out = torch.randn(batch, dtype=torch.float64, generator=torch.Generator().manual_seed(10))
    kl64, grads64 = kl_and_grads(gaussian_kl_reference, inputs, grad_out)
    cast = [None if t is None else t.to("cuda", dtype) for t in inputs]
    kl_ref, grads_ref = kl_and_grads(gaussian_kl_reference, cast, grad_out.cuda())
    kl, grads = kl_and_grads(gaussian_kl, cast, grad_out.cuda())
    assert_close_lowprec(kl.cpu(), kl64, kl_ref.cpu())
    for g, g64, g_ref in zip(grads, grads64, grads_ref, strict=True):
        assert_close_lowprec(g.cpu(), g64, g_ref.cpu())
