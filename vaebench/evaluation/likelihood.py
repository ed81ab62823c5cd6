"""Test log-likelihood by importance sampling (the IWAE protocol, K = 5000), streamed over chunks."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from ..models.likelihood_head import fused_output_layer
from .batching import Data, check_batch, iter_batches, num_examples, pass_sizes
from .log_weight_accumulator import LogWeightAccumulator
from .model_contract import (
    checked_log_weights,
    event_num_dims,
    model_device,
    model_dtype,
    require,
)

__all__ = ["PAPER_NLL_SAMPLES", "LikelihoodResult", "estimate_log_likelihood"]

#: K for the test NLL in the published protocol (Burda et al. 2015, arXiv:1509.00519): the
#: default of every NLL estimate; a run with another K says so in its record's notes.
PAPER_NLL_SAMPLES = 5000

LN2 = math.log(2.0)


@dataclass
class LikelihoodResult:
    """Per-example importance-sampling estimates of log p(x) and their summary.

    log_px: (N,) log p̂(x_n) = log (1/K) sum_k p(x_n, z_k) / q(z_k | x_n), z_k ~ q(. | x_n).
    ess: (N,) effective sample size of each example's K weights.
    mc_std: (N,) delta-method Monte Carlo standard deviation of each log p̂(x_n).
    num_dims: data dimensions for bits/dim, None where the likelihood does not define it.
    """

    log_px: Tensor
    ess: Tensor
    mc_std: Tensor
    num_samples: int
    num_dims: int | None
    seed: int
    seconds: float

    @property
    def num_examples(self) -> int:
        return self.log_px.numel()

    @property
    def mean_log_px(self) -> float:
        return self.log_px.mean().item()

    @property
    def nll(self) -> float:
        """Mean negative log-likelihood in nats, -1/N sum_n log p̂(x_n)."""
        return -self.mean_log_px

    @property
    def stderr(self) -> float:
        """Standard error of the mean over examples, std(log p̂) / sqrt(N) (0 for N = 1)."""
        n = self.num_examples
        return self.log_px.std().item() / math.sqrt(n) if n > 1 else 0.0

    @property
    def mc_stderr(self) -> float:
        """Monte Carlo part of the mean's error alone: sqrt(sum_n mc_std_n^2) / N."""
        return self.mc_std.square().sum().sqrt().item() / self.num_examples

    @property
    def bits_per_dim(self) -> float | None:
        """NLL / (num_dims ln 2), or None where the likelihood does not define bits/dim."""
        return None if self.num_dims is None else self.nll / (self.num_dims * LN2)

    @property
    def examples_per_second(self) -> float:
        return self.num_examples / self.seconds if self.seconds > 0 else math.inf

    def to_dict(self, per_example: bool = False) -> dict[str, Any]:
        """A flat record for results files; per-example arrays only when asked."""
        out: dict[str, Any] = {
            "nll": self.nll,
            "nll_stderr": self.stderr,
            "nll_mc_stderr": self.mc_stderr,
            "bits_per_dim": self.bits_per_dim,
            "num_samples": self.num_samples,
            "num_examples": self.num_examples,
            "ess_mean": self.ess.mean().item(),
            "ess_min": self.ess.min().item(),
            "seed": self.seed,
            "seconds": self.seconds,
            "examples_per_second": self.examples_per_second,
        }
        if per_example:
            out["log_px"] = self.log_px.tolist()
            out["ess"] = self.ess.tolist()
            out["mc_std"] = self.mc_std.tolist()
        return out


@torch.no_grad()
def estimate_log_likelihood(
    model: nn.Module,
    data: Data,
    *,
    num_samples: int = PAPER_NLL_SAMPLES,
    chunk_size: int | None = None,
    batch_size: int | None = None,
    seed: int = 0,
    device: torch.device | str | None = None,
    progress: bool = True,
) -> LikelihoodResult:
    """Importance-sampling estimate of log p(x) for every example, K samples streamed in chunks.

        log p̂(x) = log (1/K) sum_{k=1}^K p(x, z_k) / q(z_k | x),   z_k ~ q(z | x),

    a stochastic lower bound (in expectation) that tightens as K grows; the literature's test
    protocol uses K = 5000. The K samples are drawn `chunk_size` at a time and combined
    exactly (running logsumexp), so memory is that of one (chunk_size, batch_size) pass.
    Sizes left None are chosen for the machine (`batching.pass_sizes`: a pass's activations fit
    the CPU's L2 caches, or a quarter of free GPU memory); a model whose decoder ends in a Linear
    feeding a Bernoulli computes log p(x | z) with the fused likelihood head
    (`vaebench.ops.bernoulli_head`), its logits never materialized.
    The model runs in eval mode under `torch.no_grad`; sampling uses its own RNG stream seeded
    with `seed` (the caller's global RNG state is left untouched).

    Shapes: data: (N, *event) (or a Dataset / iterable of batches) -> result.log_px: (N,).

    References:
        Importance Weighted Autoencoders, Burda, Grosse, Salakhutdinov, 2015, arXiv:1509.00519.
    """
    require(model, "log_weights", purpose="estimate_log_likelihood")
    if num_samples < 1:
        raise ValueError(f"num_samples (K) must be >= 1, got {num_samples}")
    device = torch.device(device) if device is not None else model_device(model)
    n_total = num_examples(data)
    chunk_size, batch_size = pass_sizes(
        num_samples, n_total, _row_bytes(model), device, chunk_size=chunk_size, batch_size=batch_size
    )
    chunks = [min(chunk_size, num_samples - s) for s in range(0, num_samples, chunk_size)]

    was_training = model.training
    model.eval()
    log_px, ess, mc_std = [], [], []
    start = time.perf_counter()
    cuda_devices = [device] if device.type == "cuda" else []
    try:
        with torch.random.fork_rng(devices=cuda_devices):
            torch.manual_seed(seed)
            with tqdm(total=n_total, desc=f"log p(x), K={num_samples}", unit="ex", disable=not progress) as bar:
                seen = 0
                for x in iter_batches(data, batch_size, device=device, dtype=model_dtype(model)):
                    check_batch(x, "data batch", offset=seen)
                    seen += x.shape[0]
                    acc = LogWeightAccumulator()
                    for k in chunks:
                        acc.update(checked_log_weights(model, x, k))
                    log_px.append(acc.log_mean_exp().double().cpu())
                    ess.append(acc.ess().double().cpu())
                    mc_std.append(acc.mc_std().double().cpu())
                    bar.update(x.shape[0])
    finally:
        model.train(was_training)
    if not log_px:
        raise ValueError("data is empty: estimate_log_likelihood needs at least one example")
    return LikelihoodResult(
        log_px=torch.cat(log_px),
        ess=torch.cat(ess),
        mc_std=torch.cat(mc_std),
        num_samples=num_samples,
        num_dims=event_num_dims(model),
        seed=seed,
        seconds=time.perf_counter() - start,
    )


def _row_bytes(model: nn.Module) -> int:
    """Activation bytes one (sample, example) row of a pass holds, for `pass_sizes`: each decoder
    layer's output before and after its activation, the latent's z, eps and log-density terms,
    and, unless the fused likelihood head skips them, the logits with two same-size temporaries
    of the likelihood (softplus, x * l). Models without a decoder count their event size."""
    decoder, likelihood = getattr(model, "decoder", None), getattr(model, "likelihood", None)
    event_shape = tuple(getattr(model, "event_shape", ()))
    out_width = math.prod(event_shape) * getattr(likelihood, "num_params", 1)
    widths = [m.out_features for m in decoder.modules() if isinstance(m, nn.Linear)] if decoder is not None else []
    hidden = sum(widths[:-1]) if widths and widths[-1] == out_width else sum(widths)
    fused = (
        getattr(model, "fused_head", False)
        and decoder is not None
        and likelihood is not None
        and fused_output_layer(decoder, likelihood, event_shape) is not None
    )
    elems = 2 * hidden + 3 * int(getattr(model, "latent_dim", 1)) + (0 if fused else 3 * out_width)
    return max(1, elems) * torch.empty((), dtype=model_dtype(model)).element_size()
