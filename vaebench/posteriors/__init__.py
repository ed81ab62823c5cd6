"""Posterior families q(z | x): one family per module, all sharing `Posterior`.

Each family registers itself in `POSTERIORS`; build one by name with
`POSTERIORS.get(name)(feature_dim=H, latent_dim=D, **kwargs)`. `detect_nonfinite()` makes
every family raise `NonFiniteError` at the first NaN/inf, naming the family, layer and
quantity.
"""

from .base import POSTERIORS, Posterior, standard_normal_log_prob
from .diagonal import DiagonalGaussian
from .flow import AmortizedFlow
from .full_covariance import FullCovarianceGaussian
from .householder import HouseholderFlow
from .iaf import IAF
from .made import MADE, MaskedLinear
from .nonfinite import (
    NonFiniteError,
    check_finite,
    detect_nonfinite,
    detecting_nonfinite,
)
from .planar import PlanarFlow
from .radial import RadialFlow
from .sylvester import (
    HouseholderSylvesterFlow,
    OrthogonalSylvesterFlow,
    SylvesterFlow,
    TriangularSylvesterFlow,
    bjorck_orthogonalize,
)

__all__ = [
    "IAF",
    "MADE",
    "POSTERIORS",
    "AmortizedFlow",
    "DiagonalGaussian",
    "FullCovarianceGaussian",
    "HouseholderFlow",
    "HouseholderSylvesterFlow",
    "MaskedLinear",
    "NonFiniteError",
    "OrthogonalSylvesterFlow",
    "PlanarFlow",
    "Posterior",
    "RadialFlow",
    "SylvesterFlow",
    "TriangularSylvesterFlow",
    "bjorck_orthogonalize",
    "check_finite",
    "detect_nonfinite",
    "detecting_nonfinite",
    "standard_normal_log_prob",
]
