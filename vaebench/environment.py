"""Where a run runs: the device `device=` names, and what a run records about the machine
(versions, commit, devices, CPU, the ops' backend)."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

import torch

import vaebench
from vaebench import ops

__all__ = ["cpu_name", "environment", "git_commit", "peak_memory_bytes", "resolve_device"]

_REPO = Path(__file__).resolve().parent.parent


def git_commit(path: str | os.PathLike[str] = _REPO) -> str | None:
    """The checkout's commit (with '+dirty' when tracked files changed), None outside git."""
    try:
        sha = subprocess.run(
            ["git", "-C", str(path), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(path), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{sha}+dirty" if dirty else sha


def cpu_name() -> str:
    """The CPU model as the OS reports it (/proc/cpuinfo on Linux)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def resolve_device(name: str) -> torch.device:
    """`device=` -> torch.device; "auto" is CUDA when visible, else CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ValueError(f"device='{name}' is not a device; use cpu, cuda, cuda:N or auto") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device='{name}' but no CUDA device is visible; use device=cpu or device=auto")
    return device


def peak_memory_bytes(device: torch.device | str = "cpu") -> int | None:
    """Peak memory of this process: CUDA allocator peak on a GPU, max RSS on the CPU."""
    device = torch.device(device)
    if device.type == "cuda" and torch.cuda.is_available():
        return int(torch.cuda.max_memory_allocated(device))
    try:
        import resource

        # ru_maxrss is in kilobytes on Linux, bytes on macOS.
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return int(rss if sys.platform == "darwin" else rss * 1024)
    except (ImportError, OSError):
        return None


def environment(device: torch.device | str | None = None) -> dict[str, Any]:
    """The environment recorded with every run (and printed by `vaebench env`)."""
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(device)
    cuda = torch.cuda.is_available()
    return {
        "vaebench_version": vaebench.__version__,
        "git_commit": git_commit(),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "torch": torch.__version__,
        "torch_cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if cuda else None,
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" and cuda else cpu_name(),
        "cuda_available": cuda,
        "gpu_count": torch.cuda.device_count() if cuda else 0,
        "cpu": cpu_name(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "ops_backend": ops.backend(device),
        "ops_load_error": ops.load_error(),
        "build_info": ops.build_info(),
        "hostname": platform.node(),
    }
