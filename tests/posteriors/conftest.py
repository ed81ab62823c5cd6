"""Shared fixtures for the posterior tests: float64 on CPU, a fixed seed, small shapes."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _float64(float64_and_seed: None) -> None:
    """Every test here runs in float64 from a fixed seed (the root conftest's fixture)."""
