"""Named model architectures (the MODELS registry) and `build_model`, the runner's factory.

A config names an architecture and its options, a posterior family and a likelihood:

    build_model({"name": "mlp_burda", "latent_dim": 50}, posterior="planar",
                posterior_kwargs={"num_layers": 10}, event_shape=(784,), likelihood="bernoulli")
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from torch import Tensor

from ..posteriors import POSTERIORS, Posterior
from ..registry import Registry
from .conv import ConvDecoder, ConvEncoder
from .hierarchical import GaussianConditional, HierarchicalVAE
from .likelihoods import LIKELIHOODS, GaussianLikelihood, Likelihood
from .linear_gaussian import LinearGaussianVAE
from .mlp import MLP, MLPDecoder, MLPEncoder
from .resnet import ResNetDecoder, ResNetEncoder
from .vae import VAE

__all__ = ["MODELS", "PosteriorFactory", "build_model"]


class PosteriorFactory(Protocol):
    def __call__(self, feature_dim: int, latent_dim: int) -> Posterior: ...


MODELS: Registry[Callable[..., VAE]] = Registry("model")


@MODELS.register("mlp_burda", "784-200-200-50 tanh MLP VAE, one stochastic layer (Burda et al. 2015)")
def mlp_burda(
    *,
    event_shape: tuple[int, ...],
    make_posterior: PosteriorFactory,
    likelihood: Likelihood,
    latent_dim: int = 50,
    hidden: Sequence[int] = (200, 200),
    activation: str = "tanh",
) -> VAE:
    """One stochastic layer: encoder x-200-200 -> posterior -> z (50); decoder 50-200-200-x."""
    encoder = MLPEncoder(event_shape, hidden, activation)
    decoder = MLPDecoder(latent_dim, event_shape, likelihood.num_params, tuple(reversed(hidden)), activation)
    return VAE(encoder, make_posterior(encoder.feature_dim, latent_dim), decoder, likelihood, event_shape)


@MODELS.register(
    "mlp_burda_2layer",
    "two stochastic layers (100, 50): q x-200-200-100-100-100-50, p mirrored (Burda et al. 2015)",
)
def mlp_burda_2layer(
    *,
    event_shape: tuple[int, ...],
    make_posterior: PosteriorFactory,
    likelihood: Likelihood,
    latent_dims: Sequence[int] = (100, 50),
    hidden: Sequence[int] = (200, 200),
    hidden2: Sequence[int] = (100, 100),
    activation: str = "tanh",
) -> VAE:
    """q(z1 | x): x-200-200 -> 100; q(z2 | z1): 100-100-100 -> 50; p(z1 | z2): 50-100-100 -> 100
    (Gaussian, learned); p(x | z1): 100-200-200-x. Both posteriors from the chosen family."""
    if len(latent_dims) != 2:
        raise ValueError(f"mlp_burda_2layer: latent_dims must be (D1, D2), got {tuple(latent_dims)}")
    d1, d2 = (int(d) for d in latent_dims)
    encoder = MLPEncoder(event_shape, hidden, activation)
    encoder2 = MLP([d1, *hidden2], activation, activate_last=True)
    return HierarchicalVAE(
        encoder=encoder,
        posterior1=make_posterior(encoder.feature_dim, d1),
        encoder2=encoder2,
        posterior2=make_posterior(int(hidden2[-1]), d2),
        conditional_prior=GaussianConditional(d2, d1, tuple(reversed(hidden2)), activation),
        decoder=MLPDecoder(d1, event_shape, likelihood.num_params, tuple(reversed(hidden)), activation),
        likelihood=likelihood,
        event_shape=event_shape,
    )


@MODELS.register("conv32", "3 stride-2 convolutions + linear, mirrored; for (C, H<=32, W<=32) images")
def conv32(
    *,
    event_shape: tuple[int, ...],
    make_posterior: PosteriorFactory,
    likelihood: Likelihood,
    latent_dim: int = 64,
    channels: Sequence[int] = (32, 64, 128),
    feature_dim: int = 256,
    activation: str = "elu",
) -> VAE:
    encoder = ConvEncoder(event_shape, channels, feature_dim, activation)
    decoder = ConvDecoder(latent_dim, event_shape, likelihood.num_params, tuple(reversed(channels)), activation)
    return VAE(encoder, make_posterior(feature_dim, latent_dim), decoder, likelihood, event_shape)


@MODELS.register(
    "resnet28", "residual conv encoder/decoder for (C, 28, 28) images, ELU (the IAF paper's MNIST setting)"
)
def resnet28(
    *,
    event_shape: tuple[int, ...],
    make_posterior: PosteriorFactory,
    likelihood: Likelihood,
    latent_dim: int = 32,
    channels: Sequence[int] = (32, 64),
    blocks: int = 2,
    feature_dim: int = 256,
) -> VAE:
    """Stages at 14x14 and 7x7 with `blocks` residual blocks each; features h of size
    feature_dim feed the posterior (IAF's context). Widths/depth are not the paper's verified
    configuration."""
    encoder = ResNetEncoder(event_shape, channels, blocks, feature_dim)
    decoder = ResNetDecoder(latent_dim, event_shape, likelihood.num_params, tuple(reversed(channels)), blocks)
    return VAE(encoder, make_posterior(feature_dim, latent_dim), decoder, likelihood, event_shape)


@MODELS.register("linear_gaussian", "probabilistic PCA x = W z + b + s eps (exact log p(x)); identity encoder")
def linear_gaussian(
    *,
    event_shape: tuple[int, ...],
    make_posterior: PosteriorFactory,
    likelihood: Likelihood,
    latent_dim: int = 2,
    exact_family: bool = True,
) -> VAE:
    """The ground-truth model (`LinearGaussianVAE`, exact log p(x) via `log_marginal`).

    With `exact_family` the posterior is the affine full-covariance Gaussian that contains
    the exact posterior (the requested family is not used); without it, the requested family
    on features h = x. The likelihood must be 'gaussian' (its std is the model's s).
    """
    if len(event_shape) != 1:
        raise ValueError(f"linear_gaussian: event_shape must be (D,), got {tuple(event_shape)}")
    if not isinstance(likelihood, GaussianLikelihood) or likelihood.num_params != 1:
        raise ValueError(
            "linear_gaussian needs likelihood='gaussian' with std 'learned' or a float (one s for all "
            f"dimensions), got {type(likelihood).__name__} with {likelihood.num_params} parameters per dimension"
        )
    posterior = None if exact_family else make_posterior(event_shape[0], latent_dim)
    return LinearGaussianVAE(event_shape[0], latent_dim, posterior=posterior, likelihood=likelihood)


def _split_config(model_cfg: Mapping[str, Any] | str, overrides: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    if isinstance(model_cfg, str):
        cfg: dict[str, Any] = {"name": model_cfg}
    elif isinstance(model_cfg, Mapping):
        cfg = dict(model_cfg)
    else:
        raise TypeError(
            f"model_cfg must be an architecture name or a mapping with 'name', got {type(model_cfg).__name__}"
        )
    cfg.update(overrides)
    if "name" not in cfg:
        raise ValueError(f"model_cfg needs a 'name' key, one of: {', '.join(MODELS.names())}")
    name = cfg.pop("name")
    return name, cfg


def _check_kwargs(what: str, fn: Callable[..., Any], kwargs: Mapping[str, Any], fixed: set[str]) -> None:
    params = inspect.signature(fn).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return
    known = sorted(set(params) - fixed - {"self"})
    for key in kwargs:
        if key not in params or key in fixed:
            raise ValueError(f"{what}: unknown option {key!r}; known options: {', '.join(known) or '(none)'}")


def build_model(
    model_cfg: Mapping[str, Any] | str = "mlp_burda",
    *,
    posterior: str = "diagonal",
    posterior_kwargs: Mapping[str, Any] | None = None,
    event_shape: Sequence[int],
    likelihood: str = "bernoulli",
    likelihood_kwargs: Mapping[str, Any] | None = None,
    data_mean: Tensor | None = None,
    **overrides: Any,
) -> VAE:
    """Build a VAE from an architecture name (or {"name": ..., **options}), a posterior family
    and a likelihood, all by registry name.

    Args:
        model_cfg: "mlp_burda", "mlp_burda_2layer", "conv32", "resnet28", "linear_gaussian", or a mapping
            with "name" and that architecture's options (e.g. latent_dim).
        posterior, posterior_kwargs: the family in vaebench.posteriors.POSTERIORS and its options.
        event_shape: one example's shape, e.g. (784,) or (3, 32, 32).
        likelihood, likelihood_kwargs: the observation model in LIKELIHOODS and its options.
        data_mean: (*event_shape) training mean; sets the decoder's output bias where the
            likelihood defines one (Bernoulli: logit(clip(mean, 0.001, 0.999))).
        overrides: architecture options merged over model_cfg.

    Unknown names raise an error listing the known ones; unknown options name the option.
    """
    name, arch_kwargs = _split_config(model_cfg, overrides)
    builder = MODELS.get(name)
    _check_kwargs(f"model '{name}'", builder, arch_kwargs, {"event_shape", "make_posterior", "likelihood"})
    family = POSTERIORS.get(posterior)
    posterior_kwargs = dict(posterior_kwargs or {})
    _check_kwargs(f"posterior '{posterior}'", family.__init__, posterior_kwargs, {"feature_dim", "latent_dim"})
    lik_cls = LIKELIHOODS.get(likelihood)
    likelihood_kwargs = dict(likelihood_kwargs or {})
    _check_kwargs(f"likelihood '{likelihood}'", lik_cls.__init__, likelihood_kwargs, set())

    def make_posterior(feature_dim: int, latent_dim: int) -> Posterior:
        return family(feature_dim=feature_dim, latent_dim=latent_dim, **posterior_kwargs)

    shape = tuple(int(s) for s in event_shape)
    model = builder(
        event_shape=shape, make_posterior=make_posterior, likelihood=lik_cls(**likelihood_kwargs), **arch_kwargs
    )
    if data_mean is not None:
        model.init_output_bias(data_mean)
    return model
