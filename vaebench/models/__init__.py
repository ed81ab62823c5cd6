"""Models: the VAE contract, encoders and decoders, likelihoods, priors, named architectures.

Build one by name with `build_model({"name": "mlp_burda"}, posterior="diagonal",
event_shape=(784,), likelihood="bernoulli")`; `MODELS.names()` and `LIKELIHOODS.names()`
list the choices.
"""

from .architectures import MODELS, build_model
from .conv import ConvDecoder, ConvEncoder
from .hierarchical import GaussianConditional, HierarchicalVAE
from .likelihoods import (
    LIKELIHOODS,
    BernoulliLikelihood,
    Categorical256Likelihood,
    DiscretizedLogisticLikelihood,
    GaussianLikelihood,
    Likelihood,
)
from .linear_gaussian import (
    AffineGaussianPosterior,
    LinearGaussianVAE,
    linear_gaussian_log_marginal,
    linear_gaussian_posterior,
)
from .mlp import MLP, MLPDecoder, MLPEncoder, glorot_init
from .priors import StandardNormalPrior
from .resnet import ResidualBlock, ResNetDecoder, ResNetEncoder
from .vae import (
    VAE,
    LogWeights,
    call_with_stopped_params,
    require_log_prob,
    stopped_log_prob,
)

__all__ = [
    "LIKELIHOODS",
    "MLP",
    "MODELS",
    "VAE",
    "AffineGaussianPosterior",
    "BernoulliLikelihood",
    "Categorical256Likelihood",
    "ConvDecoder",
    "ConvEncoder",
    "DiscretizedLogisticLikelihood",
    "GaussianConditional",
    "GaussianLikelihood",
    "HierarchicalVAE",
    "Likelihood",
    "LinearGaussianVAE",
    "LogWeights",
    "MLPDecoder",
    "MLPEncoder",
    "ResNetDecoder",
    "ResNetEncoder",
    "ResidualBlock",
    "StandardNormalPrior",
    "build_model",
    "call_with_stopped_params",
    "glorot_init",
    "linear_gaussian_log_marginal",
    "linear_gaussian_posterior",
    "require_log_prob",
    "stopped_log_prob",
]
