"""Locating the first non-finite value inside a posterior: `detect_nonfinite()`.

Flows are a common source of NaNs in VAE training, and a NaN found in the loss says nothing
about where it was born. Inside `with detect_nonfinite():` every posterior checks its base
parameters and, after each flow layer, the sample z and that layer's log|det|, and raises
`NonFiniteError` at the first non-finite one, naming the family, the layer and the quantity:

    with detect_nonfinite():
        z, log_q = posterior.rsample_and_log_prob(h, num_samples=8)
    # NonFiniteError: planar: layer 2 produced a non-finite log|det| (3 of 40 entries) ...

Outside the context the checks cost nothing (each is one flag lookup), so a trainer can run
fast and re-run the failing batch under the context, or keep it on while debugging. Each
check that does run costs one reduction and one device-to-host sync.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar

import torch
from torch import Tensor

from ..errors import NonFiniteError, NonFinitePosteriorError

__all__ = ["NonFiniteError", "NonFinitePosteriorError", "check_finite", "detect_nonfinite", "detecting_nonfinite"]

_ENABLED: ContextVar[bool] = ContextVar("vaebench_detect_nonfinite", default=False)


@contextlib.contextmanager
def detect_nonfinite(enabled: bool = True) -> Iterator[None]:
    """Within the context, posteriors raise `NonFiniteError` at the first non-finite value.

    Nestable; `detect_nonfinite(False)` turns the checks off inside an enabled region.
    Context-local (a `ContextVar`), so threads and async tasks do not leak it to each other.
    """
    token = _ENABLED.set(enabled)
    try:
        yield
    finally:
        _ENABLED.reset(token)


def detecting_nonfinite() -> bool:
    """Whether `detect_nonfinite()` is active here."""
    return _ENABLED.get()


def check_finite(value: Tensor, family: str, layer: int | None, quantity: str) -> None:
    """Raise `NonFinitePosteriorError` (a `NonFiniteError`) if detection is on and `value` holds a
    NaN or infinity."""
    if not _ENABLED.get():
        return
    bad = ~torch.isfinite(value.detach())
    num_bad = int(bad.sum())
    if num_bad:
        kinds = []
        if bool(torch.isnan(value.detach()).any()):
            kinds.append("NaN")
        if bool(torch.isinf(value.detach()).any()):
            kinds.append("inf")
        raise NonFinitePosteriorError(
            family,
            layer,
            quantity,
            f"{num_bad} of {value.numel()} entries are {' and '.join(kinds)}",
        )
