"""The registries a run config chooses from, by config group name."""

from __future__ import annotations

from typing import Any

from ..datasets import DATASETS
from ..estimators import ESTIMATORS
from ..models import MODELS
from ..posteriors import POSTERIORS
from ..registry import Registry

__all__ = ["registries"]


def registries() -> dict[str, Registry[Any]]:
    """Config group -> registry: dataset, model, posterior, estimator."""
    return {"dataset": DATASETS, "model": MODELS, "posterior": POSTERIORS, "estimator": ESTIMATORS}
