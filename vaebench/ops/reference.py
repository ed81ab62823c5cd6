"""The pure-PyTorch truth for every fused op: one place, imported by the tests, the benchmarks
and the fallback path. Written for clarity and exact autograd, not for speed."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = [
    "bernoulli_head_reference",
    "gaussian_kl_reference",
    "importance_weights_reference",
    "log_mean_exp_reference",
    "philox4x32_reference",
    "philox_normal_reference",
    "reparameterize_reference",
]

_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)


def reparameterize_reference(
    mu: Tensor, logvar: Tensor, eps: Tensor, path_gradient: bool = False
) -> tuple[Tensor, Tensor]:
    """z = mu + exp(logvar / 2) * eps and log q(z) = sum_D log N(z; mu, exp(logvar)).

    log q is computed from eps, never by re-standardizing z:
        log q = sum_D (-eps^2 / 2 - logvar / 2 - log(2 pi) / 2).
    With `path_gradient`, log q reaches mu and logvar only through z (the "sticking the
    landing" gradient, Roeder et al. 2017): d log q / dz = -eps / sigma, no score term.

    Shapes: mu, logvar: (*batch, D); eps: (K, *batch, D) -> z: (K, *batch, D), log_q: (K, *batch).
    """
    std = torch.exp(0.5 * logvar)
    z = mu + std * eps
    if path_gradient:
        # eps_path equals eps in value and carries d/dz = 1 / sigma with mu, logvar stopped.
        eps_path = eps + (z - z.detach()) / std.detach()
        log_q = (-0.5 * eps_path.square() - 0.5 * logvar.detach() - _HALF_LOG_2PI).sum(-1)
    else:
        log_q = (-0.5 * eps.square() - 0.5 * logvar - _HALF_LOG_2PI).sum(-1)
    return z, log_q


def gaussian_kl_reference(
    mu: Tensor,
    logvar: Tensor,
    prior_mu: Tensor | None = None,
    prior_logvar: Tensor | None = None,
) -> Tensor:
    """KL(N(mu, exp(logvar)) || N(prior_mu, exp(prior_logvar))), summed over the last dim.

        KL = 1/2 sum_D [ pl - l + (exp(l) + (mu - pm)^2) / exp(pl) - 1 ]
    with None meaning the standard normal (pm = 0, pl = 0). exp(l - pl) instead of
    exp(l) / exp(pl) keeps it finite for |logvar| up to ~80 in float32.

    Shapes: mu, logvar: (*batch, D); prior_*: broadcastable to (*batch, D) -> (*batch,).
    """
    if prior_mu is None:
        prior_mu = torch.zeros((), dtype=mu.dtype, device=mu.device)
    if prior_logvar is None:
        prior_logvar = torch.zeros((), dtype=mu.dtype, device=mu.device)
    diff = mu - prior_mu
    kl = 0.5 * (
        prior_logvar - logvar + torch.exp(logvar - prior_logvar) + diff.square() * torch.exp(-prior_logvar) - 1.0
    )
    return kl.sum(-1)


def bernoulli_head_reference(h: Tensor, weight: Tensor, bias: Tensor, x: Tensor) -> Tensor:
    """The decoder's last Linear layer and the Bernoulli log-likelihood summed over the data dims.

        l = h W^T + b,    log p(x | h) = sum_D x l - softplus(l)

    The logits are materialized in full: the unfused path the fused head is checked against.
    softplus(l) = -logsigmoid(-l), exact at every l (F.softplus returns l itself above l = 20,
    an error of exp(-20) per element that float64 tests would see).

    Shapes: h: (*batch, H); weight: (D, H); bias: (D,); x: (*xbatch, D) with xbatch broadcasting
    to batch (x (B, D) against h (K, B, H)) -> (*batch,).
    """
    logits = F.linear(h, weight, bias)
    return (x * logits + F.logsigmoid(-logits)).sum(-1)


def log_mean_exp_reference(log_w: Tensor, dim: int = 0) -> Tensor:
    """log (1/K) sum_k exp(log_w_k) along `dim` (K = log_w.shape[dim]).

        LME = m + logsumexp(log_w - m) - log K,   m = max_k log_w_k (constant to autograd)

    The gradient is the self-normalized weights w_k = exp(log_w_k - m) / sum_j exp(log_w_j - m),
    exact relative to each other and summing to 1 at any magnitude. torch.logsumexp(log_w)'s own
    backward, exp(log_w - lse) with lse rounded, is not: for |lse| >~ 1/eps the rounding drops
    log sum_k exp(log_w_k - m) (two entries of -1e30 get weights 1 and 1), and below that it moves
    every weight by up to |lse| eps. Subtracting m first leaves logsumexp a result in [0, log K],
    whose rounding is harmless; m is detached because LME does not depend on it (d/dm = 0).
    An all -inf slice gives -inf with a zero gradient: its entries are swapped for zeros, whose
    backward would be exp(-inf + inf) = NaN there. A +inf or NaN max is not subtracted
    (m = 0): +inf gives +inf (with NaN weights at the +inf entries), NaN propagates.
    Shapes: log_w: (..., K, ...) -> the same without `dim`.
    """
    dead = torch.isneginf(log_w).all(dim=dim, keepdim=True)
    x = torch.where(dead, torch.zeros_like(log_w), log_w)
    m = x.detach().amax(dim=dim, keepdim=True)
    m = torch.where(torch.isfinite(m), m, torch.zeros_like(m))
    lse = torch.logsumexp(x - m, dim=dim) + m.squeeze(dim)
    lse = torch.where(dead.squeeze(dim), torch.full_like(lse, -math.inf), lse)
    return lse - math.log(log_w.shape[dim])


def importance_weights_reference(log_w: Tensor, dim: int = 0) -> tuple[Tensor, Tensor]:
    """Self-normalized weights w_k = exp(log_w_k) / sum_j exp(log_w_j) along `dim`, and the
    effective sample size ESS = 1 / sum_k w_k^2 (between 1 and K).

    An all -inf slice has no weights: w = 0 and ESS = 0 there (and a zero gradient: its entries
    are swapped for zeros before the softmax, which would give NaN there). A slice with a NaN
    or +inf entry has NaN weights and a NaN ESS.
    Shapes: log_w: (..., K, ...) -> w: like log_w, ess: log_w without `dim` (float32 for
    float16/bfloat16 log_w).
    """
    dead = torch.isneginf(log_w).all(dim=dim, keepdim=True)
    w = torch.softmax(torch.where(dead, torch.zeros_like(log_w), log_w), dim=dim)
    w = torch.where(dead, torch.zeros_like(w), w)
    # ESS is a count up to K: float32 for 16-bit weights (float16 overflows beyond 65504 and
    # its w^2 underflows for w < 2.4e-4).
    wide = w.float() if w.dtype in (torch.float16, torch.bfloat16) else w
    sq = wide.square().sum(dim=dim)
    ess = torch.where(sq == 0, torch.zeros_like(sq), 1.0 / sq)
    return w, ess


# ---- the Philox4x32-10 normal stream of the fused reparameterize kernels (csrc/philox.h) ----
_M32 = 0xFFFFFFFF
_PHILOX_MUL = (0xD2511F53, 0xCD9E8D57)
_PHILOX_WEYL = (0x9E3779B9, 0xBB67AE85)


def _mulhilo32(x: Tensor, m: int) -> tuple[Tensor, Tensor]:
    # x * m for 32-bit words held in int64, split so that no partial product overflows int64.
    a = x * (m & 0xFFFF)  # < 2^48
    b = x * (m >> 16)  # < 2^48
    t = a + ((b & 0xFFFF) << 16)
    return (t >> 32) + (b >> 16), t & _M32


def philox4x32_reference(counter: Tensor, key: Tensor) -> Tensor:
    """Philox4x32-10: 10 rounds of (c0, c1, c2, c3) -> (hi(M1 c2) ^ c1 ^ k0, lo(M1 c2),
    hi(M0 c0) ^ c3 ^ k1, lo(M0 c0)), the key bumped by the Weyl constants between rounds.

    Shapes: counter: (n, 4), key: (2,), int64 holding 32-bit words -> (n, 4) int64 words.

    References:
        Parallel Random Numbers: As Easy as 1, 2, 3, Salmon, Moraes, Dror, Shaw, SC 2011
        (doi 10.1145/2063384.2063405).
    """
    c = [counter[:, i].to(torch.int64) & _M32 for i in range(4)]
    k0, k1 = (int(v) & _M32 for v in key.tolist())
    for _ in range(10):
        hi0, lo0 = _mulhilo32(c[0], _PHILOX_MUL[0])
        hi1, lo1 = _mulhilo32(c[2], _PHILOX_MUL[1])
        c = [hi1 ^ c[1] ^ k0, lo1, hi0 ^ c[3] ^ k1, lo0]
        k0, k1 = (k0 + _PHILOX_WEYL[0]) & _M32, (k1 + _PHILOX_WEYL[1]) & _M32
    return torch.stack(c, dim=1)


def _sincos_2pi(a: Tensor, bits: int) -> tuple[Tensor, Tensor]:
    # sin, cos of 2 pi a / 2^bits with the exact quadrant split a / 2^bits = q / 4 + t.
    q = (a + (1 << (bits - 3))) >> (bits - 2)
    t = (a - (q << (bits - 2))).to(torch.float64) * 2.0**-bits
    s, c = torch.sin(2 * math.pi * t), torch.cos(2 * math.pi * t)
    quadrant = [(s, c), (c, -s), (-s, -c), (-c, s)]
    qm = (q & 3).unsqueeze(-1)
    sn = torch.stack([p[0] for p in quadrant], -1).gather(-1, qm).squeeze(-1)
    cs = torch.stack([p[1] for p in quadrant], -1).gather(-1, qm).squeeze(-1)
    return sn, cs


def philox_normal_reference(seed: Tensor, start: int, count: int, dtype: torch.dtype) -> Tensor:
    """The normals eps_i, i in [start, start + count), of the fused kernels' stream, in float64.

    eps_i comes from Philox block g = i // P (P = 4 for float32 and the CUDA half types, 2 for
    float64), counter (g_lo, g_hi, offset_lo, offset_hi), key (seed_lo, seed_hi), by Box-Muller:
        float32: u = fl32(fl32(x0) 2^-32 + 2^-33), v = (x1 >> 8) 2^-24,
                 (eps_0, eps_1) = sqrt(-2 log u) (cos, sin)(2 pi v); (x2, x3) -> (eps_2, eps_3)
        float64: a, b = 53-bit words (x0 x1), (x2 x3); u = (a + 1) 2^-53, v = b 2^-53,
                 (eps_0, eps_1) = sqrt(-2 log u) (cos, sin)(2 pi v)
    evaluated here with torch's float64 math from the same u and v (the kernels use their own
    polynomials, so they agree within a few ulp of `dtype`, not bit for bit).

    Shapes: seed: (2,) int64 [seed, offset] -> (count,) float64.

    References:
        A Note on the Generation of Random Normal Deviates, Box, Muller, 1958.
    """
    if dtype not in (torch.float32, torch.float64):
        raise ValueError(f"philox_normal_reference: dtype must be float32 or float64, got {dtype}")
    per = 4 if dtype == torch.float32 else 2
    s, off = (int(v) & (2**64 - 1) for v in seed.tolist())
    g = torch.arange(start // per, (start + count + per - 1) // per, dtype=torch.int64)
    counter = torch.stack([g & _M32, g >> 32, torch.full_like(g, off & _M32), torch.full_like(g, off >> 32)], dim=1)
    x = philox4x32_reference(counter, torch.tensor([s & _M32, s >> 32]))
    if dtype == torch.float32:
        u = (x[:, 0::2].to(torch.float32) * 2.0**-32 + 2.0**-33).to(torch.float64)
        sn, cs = _sincos_2pi(x[:, 1::2] >> 8, 24)
        r = torch.sqrt(-2.0 * torch.log(u))
        eps = torch.stack([r * cs, r * sn], dim=-1).reshape(-1)  # (eps_0, eps_1, eps_2, eps_3)
    else:
        a = (x[:, 0] << 21) | (x[:, 1] >> 11)
        b = (x[:, 2] << 21) | (x[:, 3] >> 11)
        r = torch.sqrt(-2.0 * torch.log((a + 1).to(torch.float64) * 2.0**-53))
        sn, cs = _sincos_2pi(b, 53)
        eps = torch.stack([r * cs, r * sn], dim=-1).reshape(-1)
    first = start - (start // per) * per
    return eps[first : first + count]
