"""What the end-to-end benchmarks (bench_nll.py, bench_train_step.py) share: the model, the
data, and the providers every one of them is timed against, on the same weights, in one process.

The model is the Burda et al. MLP (784-200-200-50, tanh) with the diagonal Gaussian posterior
and the Bernoulli likelihood, its output bias set from the embedded digits' training mean.
Providers:

- "vaebench": the package as a user calls it (the fused likelihood head, the fused ops, pass
  sizes chosen for the caches);
- "vaebench-unfused": the same with `VAE.fused_head = False` (logits materialized);
- "eager": a plain hand-written batched PyTorch implementation (`EagerVAE`) on the same
  weights: F.linear, tanh, torch.randn, binary_cross_entropy_with_logits, logsumexp; for the
  NLL, chunks of 500 samples, 10 points at a time (issue 11's baseline);
- "compiled": torch.compile (inductor, dynamic=False) of that eager per-pass function, the
  reference path compiled;
- "matmuls": the model's matmuls alone on the same shapes, into preallocated outputs (no page
  faults): the physical limit of the computation on a CPU.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vaebench.datasets import load
from vaebench.models import VAE, build_model

__all__ = ["EagerVAE", "burda_model", "digits", "matmul_shapes", "matmuls_call"]

_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)


def burda_model(seed: int = 0) -> VAE:
    """The MLP 784-200-200-50 (Bernoulli, diagonal posterior), bias from the training mean."""
    torch.manual_seed(seed)
    data = load("digits28", seed=0)
    return build_model(
        "mlp_burda",
        posterior="diagonal",
        event_shape=data.event_shape,
        likelihood="bernoulli",
        data_mean=data.train_mean(),
    )


def digits(split: str, n: int) -> Tensor:
    """The first n binarized embedded digits of a split: (n, 1, 28, 28); EagerVAE flattens them."""
    return load("digits28", seed=0).tensor(split)[:n]


class EagerVAE:
    """What a user writes by hand on the same weights: no vaebench op, no custom kernel."""

    def __init__(self, model: VAE) -> None:
        self.enc = [m for m in model.encoder.modules() if isinstance(m, nn.Linear)]
        self.dec = [m for m in model.decoder.modules() if isinstance(m, nn.Linear)]
        self.mean, self.logvar = model.posterior.mean, model.posterior.logvar

    def encode(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """mu, logvar: (B, 50) for x: (B, 784)."""
        h = x
        for layer in self.enc:
            h = torch.tanh(layer(h))
        return self.mean(h), self.logvar(h)

    def log_weights(self, x: Tensor, mu: Tensor, logvar: Tensor, k: int) -> Tensor:
        """log w: (k, B) for x: (B, 784), from k draws z ~ q."""
        eps = torch.randn(k, *mu.shape, dtype=mu.dtype)
        z = mu + torch.exp(0.5 * logvar) * eps
        h = z
        for layer in self.dec[:-1]:
            h = torch.tanh(layer(h))
        logits = self.dec[-1](h)
        log_px = -F.binary_cross_entropy_with_logits(logits, x.expand_as(logits), reduction="none").sum(-1)
        log_pz = (-0.5 * z.square() - _HALF_LOG_2PI).sum(-1)
        log_q = (-0.5 * eps.square() - 0.5 * logvar - _HALF_LOG_2PI).sum(-1)
        return log_px + log_pz - log_q

    def parameters(self) -> list[Tensor]:
        return [p for m in (*self.enc, *self.dec, self.mean, self.logvar) for p in m.parameters()]


def matmul_shapes(model: VAE, encoder_rows: int, decoder_rows: int) -> list[tuple[int, int, int]]:
    """(rows, in, out) of every Linear layer of the model at these row counts."""
    enc = [m for m in model.encoder.modules() if isinstance(m, nn.Linear)]
    enc += [model.posterior.mean, model.posterior.logvar]
    dec = [m for m in model.decoder.modules() if isinstance(m, nn.Linear)]
    return [(encoder_rows, m.in_features, m.out_features) for m in enc] + [
        (decoder_rows, m.in_features, m.out_features) for m in dec
    ]


def matmuls_call(
    shapes: list[tuple[int, int, int]], backward: bool, repeat: int = 1
) -> tuple[Callable[[], None], float]:
    """A call doing each (rows, in, out) matmul `repeat` times (forward: X W^T; with `backward`
    also dX = dY W and dW = dY^T X), and its GFLOP."""
    gen = torch.Generator().manual_seed(0)
    work = []
    for rows, n_in, n_out in shapes:
        x, w, dy = (
            torch.randn(rows, n_in, generator=gen),
            torch.randn(n_out, n_in, generator=gen),
            torch.randn(rows, n_out, generator=gen),
        )
        work.append((x, w, dy, torch.empty(rows, n_out), torch.empty(rows, n_in), torch.empty(n_out, n_in)))
    flop = sum(2 * r * i * o * (3 if backward else 1) for r, i, o in shapes) * repeat

    def call() -> None:
        for _ in range(repeat):
            for x, w, dy, y, dx, dw in work:
                torch.mm(x, w.t(), out=y)
                if backward:
                    torch.mm(dy, w, out=dx)
                    torch.mm(dy.t(), x, out=dw)

    return call, flop / 1e9
