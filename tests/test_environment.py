"""What a run records about its environment."""

from __future__ import annotations

import re

import torch

from vaebench.environment import cpu_name, environment, git_commit, peak_memory_bytes


def test_environment_names_versions_devices_and_backend() -> None:
    env = environment("cpu")
    assert env["torch"] == torch.__version__ and env["device"] == "cpu"
    assert env["ops_backend"] in ("fused-cpu", "reference")
    assert isinstance(env["build_info"], dict) and env["cpu"] == cpu_name() and env["cpu_count"] >= 1
    if env["ops_backend"] == "reference":
        assert env["ops_load_error"]


def test_git_commit_of_the_checkout_and_outside(tmp_path) -> None:
    commit = git_commit()
    assert commit is None or re.fullmatch(r"[0-9a-f]{40}(\+dirty)?", commit)
    assert git_commit(tmp_path) is None


def test_peak_memory_is_positive_on_cpu() -> None:
    assert peak_memory_bytes("cpu") > 10_000_000  # a Python process with torch loaded
