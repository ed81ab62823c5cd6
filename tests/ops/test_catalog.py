"""Every op in vaebench.ops.OPS has every part (STYLE.md "Ops"), and the hand lists that used to
name the ops are derived from OPS or checked against it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
import yaml

from vaebench import ops
from vaebench.benchmarking.op_benchmark import OP_BENCHMARKS
from vaebench.config import KernelsConfig
from vaebench.ops import OPS, reference

ROOT = Path(__file__).resolve().parents[2]
IDS = [op.name for op in OPS]


def _impl_block(text: str, key: str) -> str:
    """The body of `TORCH_LIBRARY_IMPL(vaebench, <key>, m) { ... }` in a kernel file."""
    match = re.search(rf"TORCH_LIBRARY_IMPL\(vaebench, {key}, m\) \{{(.*?)\n\}}", text, re.DOTALL)
    assert match, f"no TORCH_LIBRARY_IMPL(vaebench, {key}, m) block"
    return match.group(1)


@pytest.mark.parametrize("op", OPS, ids=IDS)
def test_every_part_is_there(op):
    files = op.files(ROOT)
    missing = [f"{part}: {path.relative_to(ROOT)}" for part, path in files.items() if not path.is_file()]
    assert not missing, f"op '{op.name}' lacks {', '.join(missing)}"
    schemas = (ROOT / "csrc" / "schemas.cpp").read_text()
    cpu = _impl_block(files["cpu kernel"].read_text(), "CPU")
    cuda = _impl_block(files["cuda kernel"].read_text(), "CUDA")
    wrapper = files["wrapper"].read_text()
    for kernel in op.kernels:
        assert f'm.def("{kernel}(' in schemas, f"{kernel}: no schema line in csrc/schemas.cpp"
        assert f'm.impl("{kernel}"' in cpu, f"{kernel}: no CPU kernel registered in csrc/{op.name}.cpp"
        assert f'm.impl("{kernel}"' in cuda, f"{kernel}: no CUDA kernel registered in csrc/cuda/{op.name}.cu"
        assert f'register_fake("vaebench::{kernel}")' in wrapper, f"{kernel}: no fake kernel in {files['wrapper'].name}"
    for function in op.functions:
        assert callable(getattr(ops, function, None)), f"vaebench.ops.{function} is missing"
        assert callable(getattr(reference, f"{function}_reference", None)), f"{function}_reference is missing"
    assert op.name in OP_BENCHMARKS, f"op '{op.name}' has no OP_BENCHMARKS entry (the benchmark setup factory)"


@pytest.mark.parametrize("op", OPS, ids=IDS)
def test_loaded_library_registers_every_kernel(op):
    if not ops.fused_available():
        pytest.skip("compiled library not loaded: the source files are checked above")
    keys = ["CPU"] + (["CUDA"] if ops.build_info()["cuda"] else [])
    for kernel in op.kernels:
        for key in keys:
            assert torch._C._dispatch_has_kernel_for_dispatch_key(f"vaebench::{kernel}", key), (kernel, key)


def test_every_schema_belongs_to_an_op():
    declared = set(re.findall(r'm\.def\("(\w+)\(', (ROOT / "csrc" / "schemas.cpp").read_text()))
    # build_info and the Philox stream's test hooks are not ops of their own.
    helpers = {"build_info", "philox4x32", "philox_normal"}
    assert declared - helpers == {kernel for op in OPS for kernel in op.kernels}


def test_the_derived_lists_follow_ops():
    assert KernelsConfig().ops == ops.op_names()
    assert set(OP_BENCHMARKS) == set(ops.op_names())
    gate = yaml.safe_load((ROOT / "benchmarks" / "gate_thresholds.yaml").read_text())
    gated = {check["op"] for check in gate["checks"]}
    assert gated <= set(ops.op_names()), f"the gate checks unknown ops: {gated - set(ops.op_names())}"
    assert gated == set(ops.op_names()), f"ops without a speed gate: {set(ops.op_names()) - gated}"
    ci = (ROOT / ".ci" / "run").read_text()
    assert "ops.OPS" in ci and '("reparameterize", "gaussian_kl"' not in ci
