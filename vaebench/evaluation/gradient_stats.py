"""Gradient variance and signal-to-noise ratio of an estimator, per parameter group, the ESS
and the importance weights' relative variance, and the SNR's log-log slopes against K.

At a fixed parameter point the estimator's gradient g (of its surrogate on a fixed batch x) is
drawn R times with independent samples; per parameter j, mean and variance are accumulated in
float64 with Welford's update (R x P gradients are never stored).

Rainforth et al.'s rates (IWAE decoder SNR ~ sqrt(K), encoder ~ 1/sqrt(K); DReG encoder
~ sqrt(K), Tucker et al.) are the leading terms of an expansion in 1/K whose next terms are
scaled by the weights' relative variance Var_q[w] / (E_q w)^2: they hold once K is large
against it (equivalently once the ESS is large, ESS ~ K / (1 + relvar)). `weight_relvar`,
`ess_fraction` and `snr_local_slopes` say which regime a sweep is in (docs/snr.md).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from ..ops import importance_weights
from .batching import check_batch
from .model_contract import model_dtype, require

__all__ = [
    "GradientStats",
    "GroupGradientStats",
    "SNRSlope",
    "gradient_stats",
    "gradient_stats_sweep",
    "jackknife_se",
    "snr_local_slopes",
    "snr_slope",
]


def jackknife_se(values: Sequence[float]) -> float | None:
    """The jackknife standard error from G leave-one-block-out values v_i:

        se^2 = (G - 1)/G sum_i (v_i - mean v)^2,

    over the finite values; None with fewer than 2 of them.
    """
    vals = [float(v) for v in values if math.isfinite(float(v))]
    if len(vals) < 2:
        return None
    mean = sum(vals) / len(vals)
    return math.sqrt((len(vals) - 1) / len(vals) * sum((v - mean) ** 2 for v in vals))


@dataclass
class GroupGradientStats:
    """Summaries over the P parameters of one group (e.g. the encoder's phi).

    Per parameter j: mean_j = E[g_j], var_j = Var[g_j] (unbiased over draws),
    snr_j = |mean_j| / sqrt(var_j). Summaries: `snr_mean` and `snr_median` over the parameters
    with var_j > 0 (a parameter the estimator never moves has no defined SNR and is counted in
    `num_constant`); `variance_mean` = mean_j var_j; `variance_total` = sum_j var_j
    (E|g - E g|^2, the trace of the covariance); `mean_norm` = |E g|.

    `snr_norm` is the group's SNR with the draws' noise floor removed,

        snr_norm = sqrt(max(|m|^2 - tr(V) / R, 0) / tr(V)),   m = mean_r g^(r), V = Var g:

    |m|^2 over-estimates |E g|^2 by
    tr(V)/R in expectation, which is subtracted, so a gradient with no signal scores about 0
    instead of the raw per-parameter SNR's floor ~sqrt(2 / (pi R)); what is left is the
    subtracted noise's fluctuation, ~(2/P)^(1/4) / sqrt(R) (0.0006 for P = 200,000, R = 1,000). `snr_norm_jackknife` holds its
    leave-one-block-out values over the draws (blocks of R / G draws), for standard errors;
    `snr_floor` = 1 / sqrt(R), what the raw per-parameter SNR of a zero-mean gradient is.
    """

    num_params: int
    num_constant: int
    snr_mean: float
    snr_median: float
    variance_mean: float
    variance_total: float
    mean_norm: float
    snr_norm: float = math.nan
    snr_norm_jackknife: list[float] = field(default_factory=list)
    snr_floor: float = math.nan

    @property
    def snr_norm_se(self) -> float | None:
        """The jackknife standard error of `snr_norm` (None without blocks)."""
        return jackknife_se(self.snr_norm_jackknife)


@dataclass
class GradientStats:
    """Gradient statistics of one estimator at one parameter point; `to_records()` is tidy.

    `ess_mean`: the ESS (sum_k w_k)^2 / sum_k w_k^2 of the K weights of one draw, averaged over
    examples and draws; `ess_fraction` = ess_mean / K. `weight_relvar`: the importance weights'
    relative variance Var_q[w] / (E_q w)^2 per example, estimated from all R K weights of that
    example, N sum_i w_i^2 / (sum_i w_i)^2 - 1 (N = R K), averaged over the batch's examples;
    for heavy-tailed weights it is a lower bound that grows with N. Both are None when the
    estimator returns no log_w.
    """

    estimator: str
    num_samples: int
    num_draws: int
    batch_size: int
    groups: dict[str, GroupGradientStats]
    ess_mean: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    weight_relvar: float | None = None

    @property
    def ess_fraction(self) -> float | None:
        return None if self.ess_mean is None else self.ess_mean / self.num_samples

    def to_records(self) -> list[dict[str, Any]]:
        """One flat row per parameter group, ready for a DataFrame or a JSON lines file."""
        head = {
            "estimator": self.estimator,
            "num_samples": self.num_samples,
            "num_draws": self.num_draws,
            "batch_size": self.batch_size,
            "ess_mean": self.ess_mean,
            "ess_fraction": self.ess_fraction,
            "weight_relvar": self.weight_relvar,
            **self.extra,
        }
        return [{**head, "group": name, **asdict(g)} for name, g in self.groups.items()]

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ess_fraction": self.ess_fraction}


class _Welford:
    """Streaming mean and M2 of a flat float64 vector, per block of draws (blocks combine
    exactly: Chan et al.'s parallel update), so leave-one-block-out statistics are free."""

    def __init__(self, size: int, device: torch.device, num_blocks: int = 1) -> None:
        self.blocks = [
            (
                0,
                torch.zeros(size, dtype=torch.float64, device=device),
                torch.zeros(size, dtype=torch.float64, device=device),
            )
            for _ in range(num_blocks)
        ]
        self.n = 0

    def update(self, g: Tensor) -> None:
        i = self.n % len(self.blocks)
        n, mean, m2 = self.blocks[i]
        n += 1
        delta = g - mean
        mean += delta / n
        m2 += delta * (g - mean)
        self.blocks[i] = (n, mean, m2)
        self.n += 1

    @staticmethod
    def _combine(blocks: list[tuple[int, Tensor, Tensor]]) -> tuple[int, Tensor, Tensor]:
        n, mean, m2 = blocks[0][0], blocks[0][1].clone(), blocks[0][2].clone()
        for nb, mb, m2b in blocks[1:]:
            if nb == 0:
                continue
            total = n + nb
            delta = mb - mean
            mean += delta * (nb / total)
            m2 += m2b + delta.square() * (n * nb / total)
            n = total
        return n, mean, m2

    @staticmethod
    def _snr_norm(n: int, mean: Tensor, m2: Tensor) -> float:
        var = m2 / (n - 1)
        trace = var.sum().item()
        if trace <= 0:
            return math.nan
        return math.sqrt(max(mean.square().sum().item() - trace / n, 0.0) / trace)

    def summary(self) -> GroupGradientStats:
        n, mean, m2 = self._combine(self.blocks)
        var = m2 / (n - 1)
        moving = var > 0
        snr = mean[moving].abs() / var[moving].sqrt()
        jackknife = []
        if len(self.blocks) > 1:
            for i in range(len(self.blocks)):
                rest = self._combine([b for j, b in enumerate(self.blocks) if j != i])
                jackknife.append(self._snr_norm(*rest))
        return GroupGradientStats(
            num_params=mean.numel(),
            num_constant=int((~moving).sum().item()),
            snr_mean=snr.mean().item() if snr.numel() else math.nan,
            snr_median=snr.median().item() if snr.numel() else math.nan,
            variance_mean=var.mean().item(),
            variance_total=var.sum().item(),
            mean_norm=mean.norm().item(),
            snr_norm=self._snr_norm(n, mean, m2),
            snr_norm_jackknife=jackknife,
            snr_floor=1.0 / math.sqrt(n),
        )


def _default_groups(model: nn.Module) -> dict[str, list[nn.Parameter]]:
    require(model, "encoder_parameters", "decoder_parameters", purpose="gradient_stats (default groups)")
    # Model methods (checked by require): nn.Module.__getattr__ types attributes as Tensor | Module.
    encoder = list(model.encoder_parameters())  # type: ignore[operator]
    decoder = list(model.decoder_parameters())  # type: ignore[operator]
    return {"encoder": encoder, "decoder": decoder}


def gradient_stats(
    model: nn.Module,
    estimator: Callable[[nn.Module, Tensor], Any],
    x: Tensor,
    *,
    num_draws: int = 100,
    groups: Mapping[str, Iterable[nn.Parameter]] | None = None,
    seed: int = 0,
    num_blocks: int = 10,
) -> GradientStats:
    """Variance and SNR of the estimator's gradient per parameter group, and the mean ESS.

        g^(r) = grad_params surrogate(x; eps^(r)),  r = 1..R independent draws, params fixed;
        SNR_j = |mean_r g_j^(r)| / std_r g_j^(r);   ESS = (sum_k w_k)^2 / sum_k w_k^2 per example.

    The gradient is that of `estimator(model, x).surrogate` on the fixed batch x (the
    estimator's gradient of -mean(bound)); ESS is averaged over examples and draws, and the
    weights' relative variance pooled over draws (`GradientStats.weight_relvar`), from the
    estimate's log_w when the estimator returns it. Groups default to the model's
    `encoder_parameters()` (phi) and `decoder_parameters()` (theta). Parameters' `.grad` are
    cleared (set to None) on return; the caller's RNG state is untouched.

    `num_blocks` splits the draws into interleaved blocks for the jackknife standard errors
    of `snr_norm` (1: none; at most num_draws // 2).

    Shapes: x: (B, *event).

    References:
        Tighter Variational Bounds are Not Necessarily Better, Rainforth, Kosiorek, Le,
        Maddison, Igl, Wood, Teh, 2018, arXiv:1802.04537.
    """
    if num_draws < 2:
        raise ValueError(f"num_draws must be >= 2 to measure a variance, got {num_draws}")
    dtype = model_dtype(model)
    x = check_batch(x if dtype is None else x.to(dtype), "x")
    named = {k: list(v) for k, v in (groups.items() if groups is not None else _default_groups(model).items())}
    for name, params in named.items():
        if not params:
            raise ValueError(f"parameter group '{name}' is empty; pass groups={{name: parameters}} that hold some")
    device = x.device
    if num_blocks < 1:
        raise ValueError(f"num_blocks must be >= 1, got {num_blocks}")
    num_blocks = min(num_blocks, num_draws // 2)  # every block needs 2 draws for a variance
    num_blocks = num_blocks if num_blocks >= 2 else 1
    stats = {k: _Welford(sum(p.numel() for p in v), device, num_blocks) for k, v in named.items()}
    all_params = [p for v in named.values() for p in v]
    ess_sum, ess_count = 0.0, 0
    # Per example, log sum_i w_i and log sum_i w_i^2 over every weight of every draw, in float64
    # and in log space (the weights span hundreds of nats).
    log_s1: Tensor | None = None
    log_s2: Tensor | None = None
    num_weights = 0
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(seed)
        for _ in range(num_draws):
            for p in all_params:
                p.grad = None
            est = estimator(model, x)
            est.surrogate.backward()
            for name, params in named.items():
                flat = torch.cat([(p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1) for p in params])
                if not torch.isfinite(flat).all():
                    names = {id(p): n for n, p in model.named_parameters()}
                    first = next(p for p in params if p.grad is not None and not torch.isfinite(p.grad).all())
                    raise FloatingPointError(
                        f"non-finite gradient in group '{name}', parameter '{names.get(id(first), '?')}', "
                        "during gradient_stats; check the parameter point (finite parameters, finite bound)"
                    )
                stats[name].update(flat.double())
            log_w = getattr(est, "log_w", None)
            if log_w is not None:
                lw = log_w.detach().double()
                ess_sum += importance_weights(lw, 0)[1].sum().item()
                ess_count += lw.shape[1]
                s1, s2 = torch.logsumexp(lw, 0), torch.logsumexp(2 * lw, 0)
                log_s1 = s1 if log_s1 is None else torch.logaddexp(log_s1, s1)
                log_s2 = s2 if log_s2 is None else torch.logaddexp(log_s2, s2)
                num_weights += lw.shape[0]
    for p in all_params:
        p.grad = None
    return GradientStats(
        estimator=getattr(estimator, "name", type(estimator).__name__),
        num_samples=int(getattr(estimator, "num_samples", 1)),
        num_draws=num_draws,
        batch_size=x.shape[0],
        groups={k: s.summary() for k, s in stats.items()},
        ess_mean=ess_sum / ess_count if ess_count else None,
        weight_relvar=_relative_variance(log_s1, log_s2, num_weights)
        if log_s1 is not None and log_s2 is not None
        else None,
    )


def _relative_variance(log_s1: Tensor, log_s2: Tensor, num_weights: int) -> float:
    """N sum_i w_i^2 / (sum_i w_i)^2 - 1 per example, averaged over examples.

    Shapes: log_s1 = log sum_i w_i: (B,), log_s2 = log sum_i w_i^2: (B,); N = num_weights.
    """
    per_example = math.log(num_weights) + log_s2 - 2 * log_s1
    return (torch.exp(per_example) - 1).clamp_min(0).mean().item()


def gradient_stats_sweep(
    model: nn.Module,
    make_estimator: Callable[[int], Callable[[nn.Module, Tensor], Any]],
    x: Tensor,
    num_samples: Sequence[int],
    *,
    num_draws: int = 100,
    groups: Mapping[str, Iterable[nn.Parameter]] | None = None,
    seed: int = 0,
    num_blocks: int = 10,
) -> list[GradientStats]:
    """`gradient_stats` for each K in `num_samples`, with `make_estimator(K)` building the estimator.

    The same parameter point and batch for every K, so the curves show the effect of K alone
    (Rainforth et al. 2018: for IWAE, decoder SNR grows like sqrt(K), encoder SNR falls like
    1/sqrt(K)). Plot the result with `vaebench.evaluation.plot_gradient_stats`.
    """
    if not num_samples:
        raise ValueError("num_samples must list at least one K")
    out = []
    for k in num_samples:
        if k < 1:
            raise ValueError(f"every K in num_samples must be >= 1, got {k}")
        out.append(
            gradient_stats(
                model, make_estimator(k), x, num_draws=num_draws, groups=groups, seed=seed, num_blocks=num_blocks
            )
        )
    return out


@dataclass
class SNRSlope:
    """The log-log slope of a group's `snr_norm` against K: log SNR = a + slope log K, by least
    squares, with its jackknife standard error over blocks of draws."""

    group: str
    slope: float
    se: float
    num_samples: list[int]


def snr_slope(stats: Sequence[GradientStats], group: str) -> SNRSlope:
    """Fit log snr_norm = a + slope log K over the sweep `stats` (one entry per K).

    Rainforth et al. 2018: IWAE's decoder slope is +1/2, its encoder's -1/2; DReG's encoder
    +1/2 (Tucker et al. 2018). The standard error is the jackknife's over the draws' blocks:
    se^2 = (G - 1)/G sum_i (slope_(-i) - mean slope)^2, with slope_(-i) fit to every K's
    snr_norm without block i (blocks of different K are independent draws).
    """
    ks = [s.num_samples for s in stats]
    if len(ks) < 2:
        raise ValueError(f"snr_slope needs >= 2 values of K, got {ks}")

    def fit(values: list[float]) -> float:
        pts = [(math.log(k), math.log(v)) for k, v in zip(ks, values, strict=True) if v > 0 and math.isfinite(v)]
        if len(pts) < 2:
            return math.nan
        mx = sum(p[0] for p in pts) / len(pts)
        my = sum(p[1] for p in pts) / len(pts)
        sxx = sum((p[0] - mx) ** 2 for p in pts)
        return sum((p[0] - mx) * (p[1] - my) for p in pts) / sxx

    slope = fit([s.groups[group].snr_norm for s in stats])
    jack = [s.groups[group].snr_norm_jackknife for s in stats]
    g = min(len(j) for j in jack)
    se = jackknife_se([fit([j[i] for j in jack]) for i in range(g)]) if g > 1 else None
    return SNRSlope(group, slope, math.nan if se is None else se, ks)


def snr_local_slopes(stats: Sequence[GradientStats], group: str) -> list[SNRSlope]:
    """The slope of log snr_norm against log K over each interval of consecutive K in `stats`.

    One `SNRSlope` per pair (K_i, K_{i+1}), with its jackknife standard error (`snr_slope` on
    the pair). The rates of Rainforth et al. are asymptotic in K: a sweep is in their regime
    where the local slopes have settled (and the ESS is large); over a whole sweep that
    starts below it the least-squares slope mixes the regimes.
    """
    if len(stats) < 2:
        raise ValueError(f"snr_local_slopes needs >= 2 values of K, got {[s.num_samples for s in stats]}")
    return [snr_slope(stats[i : i + 2], group) for i in range(len(stats) - 1)]
