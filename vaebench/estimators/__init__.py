"""Gradient estimators: configured objects that return a bound and a surrogate loss.

Build one by name with `build_estimator("iwae", num_samples=5)` (or
`ESTIMATORS.get("iwae")(num_samples=5)`); call it as `estimator(model, x) -> Estimate`.
"""

from .base import (
    ESTIMATORS,
    Estimate,
    Estimator,
    NonFiniteError,
    NonFiniteEstimateError,
    build_estimator,
    check_finite,
    supported_estimators,
    surrogate_with_value,
)
from .dreg import DReG
from .elbo import ELBO
from .elbo_mc import ELBOMC
from .iwae import IWAE
from .renyi import Renyi
from .score_function import ScoreFunction
from .stl import STL

__all__ = [
    "ELBO",
    "ELBOMC",
    "ESTIMATORS",
    "IWAE",
    "STL",
    "DReG",
    "Estimate",
    "Estimator",
    "NonFiniteError",
    "NonFiniteEstimateError",
    "Renyi",
    "ScoreFunction",
    "build_estimator",
    "check_finite",
    "supported_estimators",
    "surrogate_with_value",
]
