"""The fixtures the test folders share (one home for each), and this checkout on sys.path.

pytest imports this file first, and its folder (the repository root) goes on sys.path, so the
tests import this checkout's `vaebench` and the test folders import each other as the packages
`tests.<folder>` (relative imports: `from .eval_toy_models import ...`).

Folders opt into a fixture with an autouse fixture that requests it (tests/posteriors,
tests/datasets: float64; tests/evaluation: one thread); STYLE.md: tests default to float64 on CPU.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch

# The seed every float64 test starts from, so that a failure reproduces on its own.
TEST_SEED = 0


@pytest.fixture
def float64_and_seed() -> Iterator[None]:
    """float64 as the default dtype and torch's global RNG seeded TEST_SEED, restored afterwards."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    torch.manual_seed(TEST_SEED)
    yield
    torch.set_default_dtype(previous)


@pytest.fixture
def one_thread() -> Iterator[None]:
    """One intra-op thread: tiny models on a shared 2-core machine run ~50x faster than with two
    threads contending."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
