"""Loading the compiled extension, and which path (fused or reference) the ops take.

The library `vaebench/_C.so` registers the ops under `torch.ops.vaebench`. If it is missing
(a source checkout that was never built, or a torch it was not built against), `import
vaebench` still works: every op falls back to its pure-PyTorch reference and one warning says
so. `VAEBENCH_LIBRARY=/path/to/_C.so` loads a library from elsewhere (development builds);
`VAEBENCH_DISABLE_FUSED=1` forces the reference path.

Where it looks: `VAEBENCH_LIBRARY`, then beside the imported package, then in the installed
vaebench distribution. The last one matters when Python imports the source checkout in place
of the installed package (running `python -m pytest` from the repository root after
`pip install .` puts the checkout first on sys.path): the checkout has no library of its own.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import warnings
from functools import cache
from pathlib import Path
from typing import Literal

import torch

__all__ = [
    "backend",
    "build_info",
    "fused_available",
    "fused_device_types",
    "library_path",
    "load_error",
]

Backend = Literal["fused-cpu", "fused-cuda", "reference"]

_PACKAGE_DIR = Path(__file__).resolve().parent.parent
_load_error: str | None = None


def library_path() -> Path | None:
    """The compiled library that is (or would be) loaded, or None when there is none."""
    env = os.environ.get("VAEBENCH_LIBRARY")
    if env:
        return Path(env)
    candidates = sorted(_PACKAGE_DIR.glob("_C*.so"))
    return candidates[0] if candidates else _installed_library()


def _installed_library() -> Path | None:
    """The library of the installed vaebench distribution, if there is one."""
    try:
        dist = importlib.metadata.distribution("vaebench")
    except importlib.metadata.PackageNotFoundError:
        return None
    for file in dist.files or ():
        if file.parts[:-1] == ("vaebench",) and file.name.startswith("_C") and file.suffix == ".so":
            path = Path(str(dist.locate_file(file)))
            if path.exists():
                return path
    return None


@cache
def _load() -> bool:
    global _load_error
    path = library_path()
    if os.environ.get("VAEBENCH_DISABLE_FUSED", "") not in ("", "0"):
        _load_error = "disabled by VAEBENCH_DISABLE_FUSED"  # warned below like any other cause
    elif path is None or not path.exists():
        _load_error = (
            f"no compiled library at {path or _PACKAGE_DIR / '_C.so'}; build it with "
            "`pip install --no-build-isolation .` (see README)"
        )
    else:
        try:
            torch.ops.load_library(str(path))
        except OSError as exc:  # built against another torch, or a missing shared library
            _load_error = f"could not load {path}: {exc}"
    if _load_error is not None:
        warnings.warn(
            f"vaebench: fused kernels unavailable ({_load_error}); the ops run their pure-PyTorch reference instead.",
            RuntimeWarning,
            stacklevel=3,
        )
        return False
    return True


def fused_available() -> bool:
    """True when the compiled ops are registered under torch.ops.vaebench."""
    return _load()


def load_error() -> str | None:
    """Why the compiled library is not in use, or None when it is."""
    _load()
    return _load_error


def build_info() -> dict[str, object]:
    """What the loaded library holds: CUDA kernels, CPU capabilities, the torch it was built with."""
    if not _load():
        return {"cuda": False, "cpu_capabilities": "", "cpu_capability": "", "torch": ""}
    return json.loads(torch.ops.vaebench.build_info())


def backend(device: torch.device | str | None = None) -> Backend:
    """Which path the ops take for tensors on `device` (default: CUDA if available, else CPU).

    "fused-cuda" needs a library built with CUDA kernels and a visible GPU; "fused-cpu" the
    compiled library; otherwise "reference".
    """
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(device)
    if not _load():
        return "reference"
    if device.type == "cuda":
        # without a usable GPU (no driver) a CUDA tensor cannot exist: no kernel would run
        return "fused-cuda" if build_info()["cuda"] and torch.cuda.is_available() else "reference"
    return "fused-cpu"


def fused_device_types() -> frozenset[str]:
    """Device types ("cpu", "cuda") the loaded library has kernels for; empty without one.

    Op wrappers read it once at import into a module constant, which torch.compile treats as a
    constant (no graph break on the choice between the fused and the reference path).
    """
    if not _load():
        return frozenset()
    return frozenset({"cpu", "cuda"} if build_info()["cuda"] else {"cpu"})
