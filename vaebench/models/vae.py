"""The VAE: encoder, posterior family, prior, decoder and likelihood, and its log importance weights.

This is the contract shared by the estimators, evaluation and the trainer: everything they
need from a model is `log_weights` (and `kl`, `posterior_mean`, the parameter groups).
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import torch
from torch import Tensor, nn

from ..finite import all_finite
from ..log_weights import LogWeights
from ..posteriors.base import Posterior
from .likelihood_head import fused_head_pays, fused_output_layer, head_log_prob
from .likelihoods import Likelihood
from .priors import StandardNormalPrior

__all__ = [
    "VAE",
    "LogWeights",
    "analytic_posterior_mean",
    "call_with_stopped_params",
    "require_log_prob",
    "stopped_log_prob",
]


def analytic_posterior_mean(posterior: nn.Module, h: Tensor) -> Tensor | None:
    """E_q[z | h]: (B, D) in closed form where the family has one (its `analytic_mean`, or the mean
    of its torch distribution), else None (a flow: the caller estimates it by sampling)."""
    analytic = getattr(posterior, "analytic_mean", None)
    if callable(analytic):
        return analytic(h)
    to_distribution = getattr(posterior, "to_distribution", None)
    if callable(to_distribution):
        distribution = to_distribution(h)  # None where the family has no torch equivalent
        if distribution is not None:
            try:
                return distribution.mean
            except NotImplementedError:  # a transformed distribution has no closed-form mean
                return None
    return None


class _Method(nn.Module):
    """Exposes `module.<method>` as forward, so `torch.func.functional_call` can swap its parameters."""

    def __init__(self, module: nn.Module, method: str) -> None:
        super().__init__()
        self.module = module
        self.method = method

    def forward(self, *args: Tensor) -> Tensor:
        return getattr(self.module, self.method)(*args)


def call_with_stopped_params(module: nn.Module, method: str, *args: Tensor) -> Tensor:
    """`module.<method>(*args)` with every parameter of `module` detached: gradients reach the
    arguments only (the inputs are not detached)."""
    wrapper = _Method(module, method)
    detached = {name: p.detach() for name, p in wrapper.named_parameters()}
    return torch.func.functional_call(wrapper, detached, args, strict=False)


def stopped_log_prob(posterior: Posterior, z: Tensor, h: Tensor, *, detach_features: bool = True) -> Tensor:
    """log q(z | h) with the variational parameters stopped: `posterior.log_prob_stopped` (the one
    implementation), kept under this name for callers of `vaebench.models.stopped_log_prob`.

    With `detach_features` (one stochastic layer: h depends on phi only) h is detached too; without
    it (h computed from an earlier latent with stopped parameters, as in a hierarchy) gradients reach h.
    Shapes: z: (K, B, D), h: (B, H) -> (K, B).
    """
    posterior.require_log_prob("log q with stopped parameters")
    return posterior.log_prob_stopped(z, h, stop_features=detach_features)


class VAE(nn.Module):
    """A one-stochastic-layer VAE: q(z | x) from encoder + posterior family, p(x, z) = p(z) p(x | z).

        log w_k = log p(x | z_k) + log p(z_k) - log q(z_k | x),  z_k ~ q(z | x), k = 1..K

    Shapes: x: (B, *event_shape); encoder: x -> h: (B, H); posterior: h -> z: (K, B, D);
    decoder: (N, D) -> (N, P * prod(event)) or (N, P * C, H, W), reshaped to params:
    (K, B, P, *event_shape) for the likelihood (P = likelihood.num_params).

    Args:
        encoder: maps x to features h.
        posterior: the variational family (vaebench.posteriors), fed with h.
        decoder: maps z to the likelihood's parameters; exposes `output_layer` (the last
            layer, whose bias `init_output_bias` sets) where it has one.
        likelihood: the observation model.
        event_shape: the shape of one example, e.g. (784,) or (3, 32, 32).
        prior: p(z); the standard normal of dimension D by default.
    """

    #: Check every batch's shape, dtype and finiteness (one device sync per call on CUDA).
    validate_inputs: bool = True
    #: Compute log p(x | z) with the fused likelihood head (vaebench.ops.bernoulli_head) where
    #: the decoder and likelihood allow it and it is faster (models/likelihood_head.py); False
    #: forces the unfused reference path, likelihood.log_prob(x, decode(z)).
    fused_head: bool = True

    def __init__(
        self,
        encoder: nn.Module,
        posterior: Posterior,
        decoder: nn.Module,
        likelihood: Likelihood,
        event_shape: tuple[int, ...],
        prior: StandardNormalPrior | None = None,
    ) -> None:
        super().__init__()
        if not isinstance(posterior, Posterior):
            raise TypeError(f"VAE: posterior must be a vaebench Posterior, got {type(posterior).__name__}")
        if not isinstance(likelihood, Likelihood):
            raise TypeError(f"VAE: likelihood must be a vaebench Likelihood, got {type(likelihood).__name__}")
        self.encoder = encoder
        self.posterior = posterior
        self.decoder = decoder
        self.likelihood = likelihood
        self.prior = prior if prior is not None else StandardNormalPrior(posterior.latent_dim)
        if self.prior.latent_dim != posterior.latent_dim:
            raise ValueError(
                f"VAE: prior latent_dim {self.prior.latent_dim} != posterior latent_dim {posterior.latent_dim}"
            )
        self.event_shape = tuple(int(s) for s in event_shape)

    # ---- sizes and parameter groups -------------------------------------------------------

    @property
    def latent_dim(self) -> int:
        """D, the size of the top-level latent z."""
        return self.posterior.latent_dim

    @property
    def has_log_prob(self) -> bool:
        """Whether log q(z | x) of an arbitrary z is tractable (needed by stl, dreg, score_function)."""
        return self.posterior.has_log_prob

    def q_modules(self) -> list[nn.Module]:
        """The modules holding phi, the variational parameters."""
        return [self.encoder, self.posterior]

    def p_modules(self) -> list[nn.Module]:
        """The modules holding theta, the generative parameters."""
        return [self.decoder, self.likelihood, self.prior]

    def encoder_parameters(self) -> Iterator[nn.Parameter]:
        """phi: the encoder's and the posterior family's parameters."""
        yield from _unique_parameters(self.q_modules())

    def decoder_parameters(self) -> Iterator[nn.Parameter]:
        """theta: the decoder's, the likelihood's and the (learned) prior's parameters."""
        yield from _unique_parameters(self.p_modules())

    # ---- the pieces of log w ----------------------------------------------------------------

    def check_input(self, x: Tensor) -> None:
        """Raise a ValueError naming the problem if x is not a finite float (B, *event_shape) batch."""
        if not isinstance(x, Tensor):
            raise TypeError(f"x must be a torch.Tensor of shape (B, {self.event_shape}), got {type(x).__name__}")
        if x.dim() != 1 + len(self.event_shape) or tuple(x.shape[1:]) != self.event_shape or x.shape[0] < 1:
            raise ValueError(
                f"x must be (B, {', '.join(map(str, self.event_shape))}) for this model, got {tuple(x.shape)}; "
                "reshape the batch or build the model with the data's event_shape"
            )
        if not x.is_floating_point():
            raise ValueError(f"x must be a floating-point tensor, got {x.dtype}; convert with x.float()")
        p = next(self.parameters(), None)
        if p is not None and (x.dtype != p.dtype or x.device != p.device):
            raise ValueError(
                f"x is {x.dtype} on {x.device} but the model's parameters are {p.dtype} on {p.device}; "
                "move one to the other with x.to(...) or model.to(...)"
            )
        if self.validate_inputs and not all_finite(x):
            raise ValueError("x contains NaN or inf values; clean the data before passing it to the model")

    def encode(self, x: Tensor) -> Tensor:
        """Encoder features h: (B, H) for x: (B, *event)."""
        return self.encoder(x)

    def decode(self, z: Tensor) -> Tensor:
        """Likelihood parameters for latents z: (K, B, D) -> params: (K, B, P, *event_shape)."""
        k, b = z.shape[0], z.shape[1]
        out = self.decoder(z.reshape(k * b, z.shape[-1]))
        return out.reshape(k, b, self.likelihood.num_params, *self.event_shape)

    def sample_latents(
        self, x: Tensor, num_samples: int, *, stop_q_params: bool = False
    ) -> tuple[tuple[Tensor, ...], Tensor]:
        """K reparameterized draws of every latent layer and their joint log q: (K, B).

        `stop_q_params` evaluates log q with the variational parameters stopped (the family's
        `path_gradient=True`, fused for the diagonal Gaussian). No input checks (internal)."""
        if stop_q_params:
            self.posterior.require_log_prob("log q with stopped parameters")
        z, log_q = self.posterior.rsample_and_log_prob(self.encode(x), num_samples, path_gradient=stop_q_params)
        return (z,), log_q

    def log_q(self, x: Tensor, latents: tuple[Tensor, ...], *, stop_params: bool = False) -> Tensor:
        """log q(latents | x): (K, B) for given draws; `stop_params` stops the variational
        parameters (gradients reach the latents only). Needs a family with `has_log_prob`."""
        h = self.encode(x)
        (z,) = latents
        if stop_params:
            return stopped_log_prob(self.posterior, z, h)
        self.posterior.require_log_prob("VAE.log_q")
        return self.posterior.log_prob(z, h)

    def log_likelihood(self, x: Tensor, z: Tensor) -> Tensor:
        """log p(x | z): (K, B) for x: (B, *event), z: (K, B, D) the latent the decoder reads.

        Through the fused likelihood head where `fused_head` is set, the decoder's last layer
        and the likelihood allow it and it is the faster path for this size (`fused_head_pays`:
        always without gradients, for large enough logits with them); x that requires grad
        takes the unfused path."""
        layer = fused_output_layer(self.decoder, self.likelihood, self.event_shape) if self.fused_head else None
        if layer is None or x.requires_grad:
            return self.likelihood.log_prob(x, self.decode(z))
        needs_grad = torch.is_grad_enabled() and any(t.requires_grad for t in (z, *layer.parameters()))
        if not fused_head_pays(z.shape[0] * z.shape[1], layer.out_features, layer.weight, needs_grad):
            return self.likelihood.log_prob(x, self.decode(z))
        return head_log_prob(self.decoder, layer, x, z)

    def log_joint(self, x: Tensor, latents: tuple[Tensor, ...]) -> tuple[Tensor, Tensor]:
        """(log p(x | latents), log p(latents)), each (K, B)."""
        (z,) = latents
        return self.log_likelihood(x, z), self.prior.log_prob(z)

    def log_weights(self, x: Tensor, num_samples: int, *, stop_q_params: bool = False) -> LogWeights:
        """K log importance weights per example with their terms.

        `stop_q_params=True` evaluates log q with the variational parameters stopped (the
        path-derivative estimators STL and DReG); it raises, naming the family and the
        alternative, when the family has no tractable log_prob.

        Shapes: x: (B, *event) -> LogWeights with log_w etc. (K, B), z: (K, B, D).
        """
        self.check_input(x)
        _check_num_samples(num_samples)
        if stop_q_params:
            self.posterior.require_log_prob("log_weights(stop_q_params=True)")
        latents, log_q = self.sample_latents(x, num_samples, stop_q_params=stop_q_params)
        log_px_z, log_pz = self.log_joint(x, latents)
        return LogWeights(
            log_w=log_px_z + log_pz - log_q,
            log_px_z=log_px_z,
            log_pz=log_pz,
            log_q=log_q,
            z=latents[-1],
            latents=latents,
        )

    def log_weights_and_kl(self, x: Tensor, num_samples: int) -> tuple[LogWeights, Tensor | None]:
        """`log_weights(x, K)` and `kl(x)` from one encoder pass (the analytic-KL ELBO's needs).

        Shapes: x: (B, *event) -> LogWeights (K, B) terms, kl: (B,) or None.
        """
        self.check_input(x)
        _check_num_samples(num_samples)
        h = self.encode(x)
        if getattr(self.prior, "is_standard_normal", False):
            z, log_q, kl = self.posterior.rsample_log_prob_and_kl(h, num_samples)
        else:
            (z, log_q), kl = self.posterior.rsample_and_log_prob(h, num_samples), None
        log_px_z, log_pz = self.log_joint(x, (z,))
        weights = LogWeights(log_px_z + log_pz - log_q, log_px_z, log_pz, log_q, z, (z,))
        return weights, kl

    # ---- analytic pieces --------------------------------------------------------------------

    def kl(self, x: Tensor) -> Tensor | None:
        """Analytic KL(q(z | x) || p(z)): (B,), or None where the family/prior has none."""
        self.check_input(x)
        if not getattr(self.prior, "is_standard_normal", False):
            return None
        return self.posterior.kl_to_prior(self.encode(x))

    @torch.no_grad()
    def posterior_mean(self, x: Tensor, num_samples: int = 64) -> Tensor:
        """E_q[z | x]: (B, D); analytic where the family has `analytic_mean(h)` or a
        `to_distribution(h)` with a closed-form mean, else the average of
        `num_samples` draws (flows). Used for active units."""
        self.check_input(x)
        _check_num_samples(num_samples)
        h = self.encode(x)
        mean = analytic_posterior_mean(self.posterior, h)
        if mean is not None:
            return mean
        z, _ = self.posterior.rsample_and_log_prob(h, num_samples)
        return z.mean(0)

    @torch.no_grad()
    def init_output_bias(self, data_mean: Tensor) -> None:
        """Set the decoder's output bias from the training mean (Burda et al. 2015 protocol:
        logit(clip(mean, 0.001, 0.999)) for Bernoulli). data_mean: (*event_shape)."""
        if tuple(data_mean.shape) != self.event_shape:
            raise ValueError(f"data_mean must have the event shape {self.event_shape}, got {tuple(data_mean.shape)}")
        bias = self.likelihood.output_bias(data_mean)
        layer = getattr(self.decoder, "output_layer", None)
        if bias is None:
            return
        if layer is None or getattr(layer, "bias", None) is None:
            raise ValueError(f"{type(self.decoder).__name__} has no output_layer with a bias to initialize")
        # The bias layout: channel p of the output is parameter p; only parameter 0 (the mean
        # / logit) is set, broadcast over a conv layer's spatial positions by its mean.
        target = layer.bias
        n = math.prod(self.event_shape)
        if target.numel() == self.likelihood.num_params * n:
            target.view(self.likelihood.num_params, n)[0].copy_(bias.reshape(n))
        elif len(self.event_shape) == 3 and target.numel() == self.likelihood.num_params * self.event_shape[0]:
            target.view(self.likelihood.num_params, self.event_shape[0])[0].copy_(bias.flatten(1).mean(1))
        else:
            raise ValueError(
                f"cannot map an output bias of shape {tuple(bias.shape)} onto {type(layer).__name__} "
                f"bias of size {target.numel()}"
            )

    @torch.no_grad()
    def sample(self, num_samples: int) -> Tensor:
        """E[x | z] for z ~ p(z): (num_samples, *event_shape)."""
        _check_num_samples(num_samples)
        p = next(self.parameters())
        z = self.prior.sample((1, num_samples), device=p.device, dtype=p.dtype)
        return self.likelihood.mean(self.decode(z))[0]


def require_log_prob(posterior: Posterior, needed_by: str) -> None:
    """`posterior.require_log_prob(needed_by)`, the one log-prob guard (its advice comes from the
    registries); kept under this name for callers of `vaebench.models.require_log_prob`."""
    posterior.require_log_prob(needed_by)


def _check_num_samples(num_samples: int) -> None:
    if isinstance(num_samples, bool) or not isinstance(num_samples, int) or num_samples < 1:
        raise ValueError(f"num_samples must be an int >= 1 (K, the number of draws per example), got {num_samples!r}")


def _unique_parameters(modules: list[nn.Module]) -> Iterator[nn.Parameter]:
    seen: set[int] = set()
    for module in modules:
        for p in module.parameters():
            if id(p) not in seen:
                seen.add(id(p))
                yield p
