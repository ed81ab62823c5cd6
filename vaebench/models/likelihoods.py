"""Observation models p(x | z): Bernoulli, Gaussian, discretized logistic and 256-way categorical.

A decoder outputs `params: (K, B, P, *event)`, P parameters per data dimension; the likelihood
turns them into log p(x | z): (K, B), summed over the event. Each is registered in
LIKELIHOODS so a config chooses it by name.

Data conventions (what the datasets hand in):
- "bernoulli": binary x in {0, 1} (binarized images).
- "gaussian": real-valued x (continuous data, the linear-Gaussian ground truth).
- "discretized_logistic", "categorical256": 8-bit images scaled to [0, 1], x = k / 255.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from typing import ClassVar, Literal

import torch
from torch import Tensor, nn

from ..registry import Registry
from .elementwise import softplus

__all__ = [
    "LIKELIHOODS",
    "BernoulliLikelihood",
    "Categorical256Likelihood",
    "DiscretizedLogisticLikelihood",
    "GaussianLikelihood",
    "Likelihood",
]

_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)
_LN2 = math.log(2.0)


class Likelihood(nn.Module, ABC):
    """p(x | z) from the decoder's output; one class per observation model.

    `num_params` is P, the decoder's output channels per data dimension.
    """

    name: ClassVar[str]
    num_params: ClassVar[int]
    #: True when log p(x | z) is a probability of a discrete x, so -log p(x) / (N ln 2) is a
    #: proper bits/dim; for a density (Gaussian) it is a differential, dequantization-free value.
    discrete: ClassVar[bool] = True

    @abstractmethod
    def log_prob(self, x: Tensor, params: Tensor) -> Tensor:
        """log p(x | z) summed over the event. Shapes: x: (B, *event), params: (K, B, P, *event) -> (K, B)."""

    @abstractmethod
    def mean(self, params: Tensor) -> Tensor:
        """E[x | z] in the data's scale. Shapes: params: (K, B, P, *event) -> (K, B, *event)."""

    def output_bias(self, data_mean: Tensor) -> Tensor | None:
        """The decoder's output bias (P, *event) that makes p(x | z) match the data mean, or None."""
        return None

    @staticmethod
    def num_dims(event_shape: tuple[int, ...]) -> int:
        """N = prod(event_shape), the number of data dimensions bits/dim divides by."""
        return math.prod(event_shape)

    def bits_per_dim(self, nll: Tensor, event_shape: tuple[int, ...]) -> Tensor:
        """bits/dim = nll / (N ln 2), with nll = -log p(x) in nats and N = prod(event_shape)."""
        return nll / (self.num_dims(tuple(event_shape)) * _LN2)

    def _check(self, x: Tensor, params: Tensor) -> None:
        expected = (self.num_params, *x.shape[1:])
        if params.dim() != x.dim() + 2 or tuple(params.shape[2:]) != expected or params.shape[1] != x.shape[0]:
            raise ValueError(
                f"{type(self).__name__}.log_prob: params must be (K, {x.shape[0]}, "
                f"{', '.join(map(str, expected))}) for x of shape {tuple(x.shape)}, got {tuple(params.shape)}"
            )

    @staticmethod
    def _sum_event(values: Tensor) -> Tensor:
        return values.flatten(2).sum(-1)


LIKELIHOODS: Registry[type[Likelihood]] = Registry("likelihood")


@LIKELIHOODS.register("bernoulli", "Bernoulli with logits, for binarized images")
class BernoulliLikelihood(Likelihood):
    """p(x | z) = prod_n Bernoulli(x_n; sigmoid(l_n)), logits l from the decoder.

    log p(x | z) = sum_n x_n l_n - softplus(l_n)
    """

    name = "bernoulli"
    num_params = 1

    def log_prob(self, x: Tensor, params: Tensor) -> Tensor:
        self._check(x, params)
        # squeeze, not params[:, :, 0]: the same view (P = 1), but a select's backward writes a
        # zero-filled copy of params where a squeeze's is a view.
        logits = params.squeeze(2)
        return self._sum_event(x * logits - softplus(logits))

    def mean(self, params: Tensor) -> Tensor:
        return torch.sigmoid(params[:, :, 0])

    def output_bias(self, data_mean: Tensor) -> Tensor:
        """logit(clip(mean, 0.001, 0.999)), the IWAE protocol's output bias (Burda et al. 2015)."""
        p = data_mean.clamp(0.001, 0.999)
        return torch.log(p) - torch.log1p(-p)


@LIKELIHOODS.register("gaussian", "diagonal Gaussian, for continuous data")
class GaussianLikelihood(Likelihood):
    """p(x | z) = prod_n N(x_n; m_n, sigma_n^2).

        log p(x | z) = sum_n -(x_n - m_n)^2 / (2 sigma_n^2) - log sigma_n - log(2 pi) / 2

    Args:
        std: where sigma comes from: "decoder" (P = 2: mean and log sigma per dimension),
            "learned" (one learned log sigma shared by all dimensions, P = 1) or a float
            (a fixed sigma, P = 1).
        init_std: the initial sigma when std="learned".
    """

    name = "gaussian"
    discrete = False

    log_std: Tensor  # a parameter (std 'learned') or a buffer (fixed); unused with std 'decoder'

    def __init__(self, std: Literal["decoder", "learned"] | float = "learned", init_std: float = 1.0) -> None:
        super().__init__()
        if isinstance(std, str):
            if std not in ("decoder", "learned"):
                raise ValueError(f"GaussianLikelihood: std must be 'decoder', 'learned' or a float > 0, got {std!r}")
        elif not (isinstance(std, (int, float)) and std > 0):
            raise ValueError(f"GaussianLikelihood: a fixed std must be a float > 0, got {std!r}")
        if init_std <= 0:
            raise ValueError(f"GaussianLikelihood: init_std must be > 0, got {init_std}")
        self.std_mode = "fixed" if not isinstance(std, str) else std
        self.num_params = 2 if std == "decoder" else 1  # type: ignore[misc]  # per instance
        if std == "learned":
            self.log_std = nn.Parameter(torch.tensor(math.log(init_std)))
        else:
            self.register_buffer("log_std", torch.tensor(math.log(std if not isinstance(std, str) else 1.0)))

    def _log_std(self, params: Tensor, dim: int) -> Tensor:
        if self.std_mode == "decoder":
            return params.select(dim, 1)
        return self.log_std.to(params.dtype)

    def log_prob(self, x: Tensor, params: Tensor) -> Tensor:
        self._check(x, params)
        mean = params[:, :, 0]
        log_std = self._log_std(params, 2)
        z = (x - mean) * torch.exp(-log_std)
        return self._sum_event(-0.5 * z.square() - log_std - _HALF_LOG_2PI)

    def mean(self, params: Tensor) -> Tensor:
        return params[:, :, 0]


@LIKELIHOODS.register("discretized_logistic", "per-subpixel discretized logistic, for 8-bit images (bits/dim)")
class DiscretizedLogisticLikelihood(Likelihood):
    """The probability of an 8-bit value under a logistic discretized into 256 bins.

    With y = 2x - 1 in [-1, 1] and bin half-width 1/255, per subpixel:
        P(x) = sigma((y - m + 1/255) / s) - sigma((y - m - 1/255) / s),
    the lowest bin extending to -inf and the highest to +inf. P = 2 (m and log s).

    References:
        Improved Variational Inference with Inverse Autoregressive Flow, Kingma, Salimans,
        Jozefowicz, Chen, Sutskever, Welling, 2016, arXiv:1606.04934.
    """

    name = "discretized_logistic"
    num_params = 2

    def log_prob(self, x: Tensor, params: Tensor) -> Tensor:
        self._check(x, params)
        mean, log_scale = params[:, :, 0], params[:, :, 1].clamp(min=-7.0)  # s >= e^-7: finite bins
        y = 2.0 * x - 1.0
        centered = y - mean
        inv_s = torch.exp(-log_scale)
        plus = inv_s * (centered + 1.0 / 255.0)
        minus = inv_s * (centered - 1.0 / 255.0)
        log_cdf_plus = plus - softplus(plus)  # log sigma(plus), for the lowest bin
        log_one_minus_cdf_minus = -softplus(minus)  # log(1 - sigma(minus)), for the highest bin
        cdf_delta = torch.sigmoid(plus) - torch.sigmoid(minus)
        # When the bin mass underflows, use the density at the centre times the bin width.
        mid = inv_s * centered
        log_pdf_mid = mid - log_scale - 2.0 * softplus(mid) - math.log(127.5)
        log_mid = torch.where(cdf_delta > 1e-5, torch.log(cdf_delta.clamp(min=1e-12)), log_pdf_mid)
        log_p = torch.where(y < -0.999, log_cdf_plus, torch.where(y > 0.999, log_one_minus_cdf_minus, log_mid))
        return self._sum_event(log_p)

    def mean(self, params: Tensor) -> Tensor:
        return ((params[:, :, 0] + 1.0) / 2.0).clamp(0.0, 1.0)


@LIKELIHOODS.register("categorical256", "256-way categorical per pixel, for 8-bit images (Frey faces)")
class Categorical256Likelihood(Likelihood):
    """p(x | z) = prod_n Categorical(255 x_n; softmax(l_n)), 256 logits per pixel (P = 256).

        log p(x | z) = sum_n log_softmax(l_n)[255 x_n]

    References:
        Sylvester Normalizing Flows for Variational Inference, van den Berg, Hasenclever,
        Tomczak, Welling, 2018, arXiv:1803.05649.
    """

    name = "categorical256"
    num_params = 256

    def log_prob(self, x: Tensor, params: Tensor) -> Tensor:
        self._check(x, params)
        index = torch.round(x * 255.0).long().clamp(0, 255)
        log_p = torch.log_softmax(params, dim=2)
        index = index.unsqueeze(0).unsqueeze(2).expand(params.shape[0], -1, 1, *index.shape[1:])
        return self._sum_event(log_p.gather(2, index).squeeze(2))

    def mean(self, params: Tensor) -> Tensor:
        levels = torch.arange(256, dtype=params.dtype, device=params.device) / 255.0
        shape = [1] * params.dim()
        shape[2] = 256
        return (torch.softmax(params, dim=2) * levels.view(shape)).sum(2)
