"""Which path the ops take: the compiled library is really there when CI says it must be,
VAEBENCH_DISABLE_FUSED falls back cleanly, and every CPU capability copy gives the same results."""

from __future__ import annotations

import math
import os
import subprocess
import sys
import textwrap

import pytest
import torch

from vaebench.ops import OPS, backend, build_info, fused_available, load_error

REQUIRE_FUSED = os.environ.get("VAEBENCH_REQUIRE_FUSED", "") not in ("", "0")


def run_python(code: str, *args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,  # the callers assert on returncode with stderr in the message
    )


def test_backend_is_consistent_and_fused_when_required():
    if REQUIRE_FUSED:
        # CI sets VAEBENCH_REQUIRE_FUSED=1: an install without the kernels must fail here.
        assert fused_available(), f"fused kernels required but not loaded: {load_error()}"
        assert backend("cpu") == "fused-cpu"
        assert build_info()["cpu_capabilities"], build_info()
    if fused_available():
        assert backend("cpu") == "fused-cpu" and load_error() is None
        info = build_info()
        assert "DEFAULT" in info["cpu_capabilities"].split(",")
        assert info["cpu_capability"] in ("default", "avx2", "avx512")
        assert info["torch"].split("+")[0] == torch.__version__.split("+")[0]
        for op in (kernel for parts in OPS for kernel in parts.kernels):
            assert torch._C._dispatch_has_kernel_for_dispatch_key(f"vaebench::{op}", "CPU"), op
    else:
        assert backend("cpu") == "reference" and load_error()


def test_disable_fused_warns_once_and_uses_the_reference():
    proc = run_python(
        """
        import warnings
        import torch
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            import vaebench.ops as ops
            x = torch.randn(50, 4, dtype=torch.float64)
            mu, lv = torch.randn(3, 5, dtype=torch.float64), torch.randn(3, 5, dtype=torch.float64)
            got = (ops.log_mean_exp(x, 0), *ops.importance_weights(x, 0), ops.gaussian_kl(mu, lv))
            ref = (ops.log_mean_exp_reference(x, 0), *ops.importance_weights_reference(x, 0),
                   ops.gaussian_kl_reference(mu, lv))
        assert all(torch.equal(a, b) for a, b in zip(got, ref))
        ours = [w for w in caught if "vaebench" in str(w.message)]
        assert len(ours) == 1, [str(w.message) for w in ours]
        assert "VAEBENCH_DISABLE_FUSED" in str(ours[0].message)
        assert ops.backend("cpu") == "reference" and not ops.fused_available()
        print("ok")
        """,
        VAEBENCH_DISABLE_FUSED="1",
    )
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr


_CAPABILITY_SCRIPT = """
    import sys, torch
    from vaebench.ops import bernoulli_head, build_info, gaussian_kl, importance_weights, log_mean_exp
    assert build_info()["cpu_capability"] == sys.argv[2], build_info()
    out = {}
    for name, (op, args) in torch.load(sys.argv[1]).items():
        if op == "head":
            h, w, b = (t.clone().requires_grad_() for t in args[:3])
            y = bernoulli_head(h, w, b, args[3], tile_rows=args[4])
            out[name] = (y.detach(), *torch.autograd.grad(y, (h, w, b), torch.ones_like(y)))
            continue
        a, b = (t.clone().requires_grad_() for t in args[:2]) if op == "kl" else (args[0].clone().requires_grad_(), args[1])
        y = gaussian_kl(a, b, *args[2:]) if op == "kl" else log_mean_exp(a, b)
        grads = torch.autograd.grad(y, (a, b) if op == "kl" else (a,), torch.ones_like(y))
        out[name] = (y.detach(), *grads, *(importance_weights(*args) if op == "lme" else ()))
    torch.save(out, sys.argv[1] + "." + sys.argv[2])
"""


@pytest.mark.skipif(
    not fused_available(),
    reason="compiled library not loaded (checked above when required)",
)
def test_every_cpu_capability_agrees(tmp_path):
    caps = [c.lower() for c in build_info()["cpu_capabilities"].split(",")]
    gen = torch.Generator().manual_seed(0)
    cases = {}
    for dtype in (torch.float32, torch.float64):
        # columns, long rows, short rows (the CPU kernel's three walks)
        for dim, shape in ((0, (333, 67)), (1, (67, 333)), (1, (67, 37))):
            cases[f"lme-{dtype}-{dim}-{shape[dim]}"] = (
                "lme",
                (20 * torch.randn(shape, dtype=dtype, generator=gen), dim),
            )
        dead = torch.randn(5, 3, dtype=dtype, generator=gen)
        dead[:, 1] = -math.inf
        cases[f"lme-dead-{dtype}"] = ("lme", (dead, 0))
        mu, lv = (torch.randn(67, 37, dtype=dtype, generator=gen) for _ in range(2))
        pm, pl = (torch.randn(37, dtype=dtype, generator=gen) for _ in range(2))
        cases[f"kl-{dtype}"] = ("kl", (mu, lv))
        cases[f"kl-prior-{dtype}"] = ("kl", (mu, lv, pm, pl))
        # the head: D across the vector widths (37 = 2 x 16 + 5), tiles that cut the x period
        h, w = torch.randn(6, 5, 11, dtype=dtype, generator=gen), torch.randn(37, 11, dtype=dtype, generator=gen)
        x = torch.bernoulli(torch.full((5, 37), 0.3, dtype=dtype), generator=gen)
        cases[f"head-{dtype}"] = ("head", (h, w, torch.randn(37, dtype=dtype, generator=gen), x, 4))
    path = tmp_path / "cases.pt"
    torch.save(cases, path)
    results = {}
    for cap in caps:
        proc = run_python(_CAPABILITY_SCRIPT, str(path), cap, VAEBENCH_CPU_CAPABILITY=cap)
        assert proc.returncode == 0, f"{cap}: {proc.stderr[-2000:]}"
        results[cap] = torch.load(f"{path}.{cap}")
    for cap, res in results.items():
        for name in cases:
            for a, b in zip(results["default"][name], res[name], strict=True):
                tol = 1e-12 if a.dtype == torch.float64 else 3e-6
                torch.testing.assert_close(
                    b,
                    a,
                    rtol=tol,
                    atol=tol,
                    msg=lambda m, cap=cap, name=name: f"{cap} vs default, {name}: {m}",
                )


def test_library_is_found_in_the_installed_distribution_when_the_checkout_has_none(tmp_path, monkeypatch):
    # `pip install .` then `python -m pytest` from the repository root imports the checkout,
    # which has no _C.so; the installed distribution's library must be found instead.
    import importlib.metadata

    from vaebench.ops import library

    site = tmp_path / "site-packages"
    (site / "vaebench").mkdir(parents=True)
    so = site / "vaebench" / "_C.so"
    so.write_bytes(b"")

    class FakeDistribution:
        files = (
            importlib.metadata.PackagePath("vaebench/__init__.py"),
            importlib.metadata.PackagePath("vaebench/_C.so"),
        )

        def locate_file(self, path):
            return site / path

    monkeypatch.delenv("VAEBENCH_LIBRARY", raising=False)
    monkeypatch.setattr(library, "_PACKAGE_DIR", tmp_path / "checkout")
    monkeypatch.setattr(importlib.metadata, "distribution", lambda name: FakeDistribution())
    assert library.library_path() == so

    def not_installed(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "distribution", not_installed)
    assert library.library_path() is None
