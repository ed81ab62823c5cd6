"""Shared fixtures for the posterior tests: float64 on CPU, a fixed seed, small shapes."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True)
def float64_and_seed():
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    torch.manual_seed(0)
    yield
    torch.set_default_dtype(previous)
