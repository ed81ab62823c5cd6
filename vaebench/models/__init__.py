"""Models: the VAE contract, encoders and decoders, likelihoods, priors, named architectures."""

from .likelihoods import (
    LIKELIHOODS,
    BernoulliLikelihood,
    Categorical256Likelihood,
    DiscretizedLogisticLikelihood,
    GaussianLikelihood,
    Likelihood,
)
from .mlp import MLP, MLPDecoder, MLPEncoder, glorot_init
from .priors import StandardNormalPrior
from .vae import VAE, LogWeights, require_log_prob, stopped_log_prob

__all__ = [
    "LIKELIHOODS",
    "MLP",
    "VAE",
    "BernoulliLikelihood",
    "Categorical256Likelihood",
    "DiscretizedLogisticLikelihood",
    "GaussianLikelihood",
    "Likelihood",
    "LogWeights",
    "MLPDecoder",
    "MLPEncoder",
    "StandardNormalPrior",
    "glorot_init",
    "require_log_prob",
    "stopped_log_prob",
]
