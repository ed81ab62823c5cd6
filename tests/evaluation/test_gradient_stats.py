import math
from dataclasses import dataclass

import matplotlib
import pytest
import torch
from torch import nn

from vaebench.evaluation import (
    gradient_stats,
    gradient_stats_sweep,
    plot_gradient_stats,
)
from vaebench.ops import importance_weights_reference

from .eval_toy_models import IWAESurrogate, RainforthToy

matplotlib.use("Agg")


@dataclass
class _Est:
    surrogate: torch.Tensor
    log_w: torch.Tensor | None = None


class _NoiseGradient:
    """surrogate = <a, n_a> + <b, n_b>: the gradient is the drawn noise itself, recorded."""

    name = "noise"
    num_samples = 4

    def __init__(self) -> None:
        self.seen: list[torch.Tensor] = []
        self.log_w: list[torch.Tensor] = []

    def __call__(self, model, x):
        n = torch.randn(7, dtype=torch.float64) * torch.arange(1.0, 8.0, dtype=torch.float64) + 0.5
        n[6] = 2.0  # a parameter whose gradient never varies: no SNR
        self.seen.append(n)
        log_w = torch.randn(4, x.shape[0], dtype=torch.float64)
        self.log_w.append(log_w)
        return _Est((model.a * n[:4]).sum() + (model.b * n[4:]).sum(), log_w)


def test_streaming_statistics_match_stored_draws():
    model = nn.Module()
    model.a = nn.Parameter(torch.zeros(4, dtype=torch.float64))
    model.b = nn.Parameter(torch.zeros(3, dtype=torch.float64))
    est = _NoiseGradient()
    r = gradient_stats(
        model, est, torch.zeros(3, 2, dtype=torch.float64), num_draws=50, groups={"enc": [model.a], "dec": [model.b]}
    )
    g = torch.stack(est.seen)
    for name, cols in (("enc", slice(0, 4)), ("dec", slice(4, 7))):
        mean, var = g[:, cols].mean(0), g[:, cols].var(0)
        s = r.groups[name]
        moving = var > 1e-20
        snr = mean[moving].abs() / var[moving].sqrt()
        assert s.num_params == var.numel() and s.num_constant == int((~moving).sum())
        assert s.snr_mean == pytest.approx(snr.mean().item())
        assert s.snr_median == pytest.approx(snr.median().item())
        assert s.variance_mean == pytest.approx(var.mean().item(), abs=1e-12)
        assert s.variance_total == pytest.approx(var.sum().item(), abs=1e-12)
        assert s.mean_norm == pytest.approx(mean.norm().item())
    assert r.groups["dec"].num_constant == 1
    ess = torch.stack([importance_weights_reference(lw, 0)[1] for lw in est.log_w])
    assert r.ess_mean == pytest.approx(ess.mean().item())
    assert r.ess_fraction == pytest.approx(ess.mean().item() / 4)
    assert model.a.grad is None and model.b.grad is None
    rows = r.to_records()
    assert {row["group"] for row in rows} == {"enc", "dec"} and rows[0]["estimator"] == "noise"


def test_rainforth_toy_snr_scaling_with_k():
    # Rainforth et al. 2018: for IWAE-K, decoder SNR grows like sqrt(K), encoder SNR falls.
    model = RainforthToy()
    x = model.sample_data(1)
    ks = [1, 10, 100]
    results = gradient_stats_sweep(model, IWAESurrogate, x, ks, num_draws=400, seed=0)
    dec = [r.groups["decoder"].snr_mean for r in results]
    enc = [r.groups["encoder"].snr_mean for r in results]
    assert dec[0] < dec[1] < dec[2]
    assert 4 < dec[2] / dec[0] < 25  # sqrt(100) = 10, within sampling error of 400 draws
    assert enc[0] > enc[1] > enc[2]
    ess = [r.ess_mean for r in results]
    assert ess[0] == pytest.approx(1.0) and 1 < ess[1] <= 10 and ess[1] < ess[2] <= 100
    fig = plot_gradient_stats(results)
    # one error-bar line per (estimator, group), its bars the jackknife standard errors
    assert len(fig.axes) == 2 and len(fig.axes[1].containers) == 2
    line, _caps, (bars,) = fig.axes[1].containers[0]
    assert list(line.get_xdata()) == ks
    se = [r.groups["decoder"].snr_norm_se for r in results]
    assert [seg[1][1] - seg[0][1] for seg in bars.get_segments()] == pytest.approx([2 * e for e in se])
    # plotting the stored tidy rows gives the same figure data
    fig2 = plot_gradient_stats([row for r in results for row in r.to_records()])
    assert list(fig2.axes[1].containers[1][0].get_ydata()) == list(fig.axes[1].containers[1][0].get_ydata())


def test_default_groups_use_the_model_contract_and_errors():
    model = RainforthToy(dim=3)
    x = model.sample_data(2)
    r = gradient_stats(model, IWAESurrogate(2), x, num_draws=3)
    assert set(r.groups) == {"encoder", "decoder"}
    assert r.groups["encoder"].num_params == 3 * 3 + 3 and r.groups["decoder"].num_params == 3
    with pytest.raises(ValueError, match="num_draws"):
        gradient_stats(model, IWAESurrogate(2), x, num_draws=1)
    with pytest.raises(ValueError, match="empty"):
        gradient_stats(model, IWAESurrogate(2), x, groups={"none": []})
    with pytest.raises(TypeError, match="encoder_parameters"):
        gradient_stats(nn.Linear(3, 3).double(), IWAESurrogate(2), x)
    with pytest.raises(ValueError, match="at least one K"):
        gradient_stats_sweep(model, IWAESurrogate, x, [])
    with pytest.raises(ValueError, match="results is empty"):
        plot_gradient_stats([])
    with pytest.raises(FloatingPointError, match="non-finite gradient in group 'encoder', parameter 'A'"):
        with torch.no_grad():
            model.mu[0] = math.inf
        gradient_stats(model, IWAESurrogate(2), x, num_draws=2)


def test_packaged_vae_and_estimator_groups():
    from vaebench.estimators import build_estimator
    from vaebench.models.architectures import build_model

    torch.manual_seed(0)
    model = build_model(
        {"name": "mlp_burda", "latent_dim": 3, "hidden": (8,)},
        posterior="diagonal",
        event_shape=(12,),
        likelihood="bernoulli",
    ).double()
    x = (torch.rand(4, 12, dtype=torch.float64) < 0.5).double()
    stats = gradient_stats_sweep(model, lambda k: build_estimator("iwae", num_samples=k), x, [1, 8], num_draws=20)
    n_enc = sum(p.numel() for p in model.encoder_parameters())
    n_dec = sum(p.numel() for p in model.decoder_parameters())
    assert [s.num_samples for s in stats] == [1, 8] and stats[0].estimator == "iwae"
    assert stats[1].groups["encoder"].num_params == n_enc and stats[1].groups["decoder"].num_params == n_dec
    assert stats[0].ess_mean == pytest.approx(1.0) and 1.0 < stats[1].ess_mean <= 8.0
    # the decoder's gradient has less variance with more samples at the same point
    assert stats[1].groups["decoder"].variance_mean < stats[0].groups["decoder"].variance_mean


class _SyntheticGradient(torch.nn.Module):
    """A 'model' whose estimator gradient is g = mu + sigma eps / sqrt(K)^power: SNR ~ K^(power/2)."""

    def __init__(self, size: int = 200) -> None:
        super().__init__()
        self.p = torch.nn.Parameter(torch.zeros(size, dtype=torch.float64))
        self.mu = torch.linspace(-1.0, 1.0, size, dtype=torch.float64)


def _synthetic_estimator(k: int, power: float, signal: float = 1.0):
    from types import SimpleNamespace

    def estimator(model, x):
        noise = torch.randn_like(model.p) / k ** (power / 2)
        return SimpleNamespace(surrogate=(model.p * (signal * model.mu + noise)).sum())

    estimator.num_samples = k
    return estimator


@pytest.mark.parametrize("power,expected", [(1.0, 0.5), (-1.0, -0.5)])
def test_snr_slope_recovers_the_scaling_with_its_error(power, expected):
    from vaebench.evaluation import gradient_stats_sweep, snr_slope

    torch.manual_seed(0)
    model = _SyntheticGradient()
    x = torch.zeros(1, 1, dtype=torch.float64)
    stats = gradient_stats_sweep(
        model, lambda k: _synthetic_estimator(k, power), x, [1, 5, 50], num_draws=400, groups={"all": [model.p]}
    )
    fit = snr_slope(stats, "all")
    assert 0 < fit.se < 0.1
    assert abs(fit.slope - expected) < 4 * fit.se


def test_floor_corrected_snr_of_a_gradient_without_signal_is_near_zero():
    """The raw per-parameter SNR of a zero-mean gradient sits at the floor ~sqrt(2/(pi R));
    snr_norm removes it, down to its own floor (2/P)^(1/4) / sqrt(R) (the subtracted noise's
    fluctuation), 0.04 of the raw one for this model's P = 5000 and R = 400."""
    from vaebench.evaluation import gradient_stats

    torch.manual_seed(1)
    model = _SyntheticGradient(5000)
    st = gradient_stats(
        model, _synthetic_estimator(1, 1.0, signal=0.0), torch.zeros(1, 1), num_draws=400, groups={"all": [model.p]}
    )
    g = st.groups["all"]
    assert g.snr_mean == pytest.approx((2 / (math.pi * 400)) ** 0.5, rel=0.2)
    assert g.snr_norm < 3 * (2 / 5000) ** 0.25 / 400**0.5
    assert g.snr_norm < 0.5 * g.snr_mean
    assert g.snr_floor == pytest.approx(0.05) and len(g.snr_norm_jackknife) == 10


def test_weight_relative_variance_pools_every_draw_of_an_example():
    """weight_relvar = N sum w^2 / (sum w)^2 - 1 per example over all R K weights, averaged."""
    model = nn.Module()
    model.a = nn.Parameter(torch.zeros(4, dtype=torch.float64))
    model.b = nn.Parameter(torch.zeros(3, dtype=torch.float64))
    est = _NoiseGradient()
    r = gradient_stats(
        model, est, torch.zeros(3, 2, dtype=torch.float64), num_draws=30, groups={"enc": [model.a], "dec": [model.b]}
    )
    w = torch.cat(est.log_w).exp()  # (R K, B): the weights of each example, every draw
    by_hand = (w.shape[0] * w.square().sum(0) / w.sum(0).square() - 1).mean().item()
    assert r.weight_relvar == pytest.approx(by_hand, rel=1e-9)
    # log w ~ N(0, 1): Var w / (E w)^2 = e - 1
    assert r.weight_relvar == pytest.approx(math.e - 1, rel=0.5)
    assert r.to_records()[0]["weight_relvar"] == r.weight_relvar


def _shifted_linear_gaussian(delta: float, batch: int = 8):
    """Probabilistic PCA with q = the exact posterior shifted by delta posterior standard
    deviations (Mahalanobis): the weights' relative variance is exp(delta^2) - 1 exactly."""
    from vaebench.models import LinearGaussianVAE

    g = torch.Generator().manual_seed(0)
    D, d, s = 20, 5, 0.5
    W = torch.randn(D, d, generator=g, dtype=torch.float64) / math.sqrt(d)
    b = torch.randn(D, generator=g, dtype=torch.float64)
    model = LinearGaussianVAE.from_params(W, b, s, exact_posterior=False)
    model.set_exact_posterior(mean_shift=delta)
    x = torch.randn(batch, d, generator=g, dtype=torch.float64) @ W.T + b
    return model, x + s * torch.randn(batch, D, generator=g, dtype=torch.float64)


def test_relative_variance_and_ess_of_a_shifted_exact_posterior():
    from vaebench.estimators import build_estimator

    model, x = _shifted_linear_gaussian(0.5)
    (st,) = gradient_stats_sweep(model, lambda k: build_estimator("iwae", num_samples=k), x, [64], num_draws=50)
    relvar = math.expm1(0.25)
    assert st.weight_relvar == pytest.approx(relvar, rel=0.1)
    # ESS / K -> (E w)^2 / E w^2 = 1 / (1 + relvar) for large K
    assert st.ess_fraction == pytest.approx(1 / (1 + relvar), rel=0.05)


def _local_slope(delta: float, name: str, group: str, ks: list[int]):
    from vaebench.estimators import build_estimator
    from vaebench.evaluation import snr_local_slopes

    model, x = _shifted_linear_gaussian(delta)
    stats = gradient_stats_sweep(model, lambda k: build_estimator(name, num_samples=k), x, ks, num_draws=200)
    return snr_local_slopes(stats, group)


def test_local_slopes_reach_the_asymptotic_rates_where_k_is_large_against_the_relative_variance():
    """Rainforth et al. 2018 / Tucker et al. 2018: with relative variance 0.28 (shift 0.5) the
    local slopes over K = 64..256 are IWAE decoder +1/2 and DReG encoder +1/2; with 8.5 (shift
    1.5) IWAE's encoder's is -1/2 over the same K (its SNR at shift 0.5 is at the draws' noise)."""
    for delta, name, group, expected in (
        (0.5, "iwae", "decoder", 0.5),
        (0.5, "dreg", "encoder", 0.5),
        (1.5, "iwae", "encoder", -0.5),
    ):
        (fit,) = _local_slope(delta, name, group, [64, 256])
        assert 0 < fit.se < 0.2, (name, group, fit)
        assert abs(fit.slope - expected) < max(4 * fit.se, 0.1), (name, group, fit)


def test_dreg_is_short_of_its_rate_where_k_is_not_large_against_the_relative_variance():
    """At relative variance 8.5 DReG's encoder SNR still falls over K = 4..64 (local slope
    about -0.2 to -0.3, docs/snr.md), where the asymptotic rate is +1/2."""
    for fit in _local_slope(1.5, "dreg", "encoder", [4, 16, 64]):
        assert fit.slope + 4 * fit.se < 0.2, fit


def test_local_slopes_show_where_the_scaling_changes():
    """SNR ~ sqrt(min(K, 5)): the local slope is +1/2 over [1, 5] and 0 over [5, 50]; the
    least-squares slope over the whole sweep is neither."""
    from types import SimpleNamespace

    from vaebench.evaluation import snr_local_slopes, snr_slope

    def make(k):
        def estimator(model, x):
            noise = torch.randn_like(model.p) / min(k, 5) ** 0.5
            return SimpleNamespace(surrogate=(model.p * (model.mu + noise)).sum())

        estimator.num_samples = k
        return estimator

    torch.manual_seed(0)
    model = _SyntheticGradient()
    stats = gradient_stats_sweep(model, make, torch.zeros(1, 1), [1, 5, 50], num_draws=400, groups={"all": [model.p]})
    first, second = snr_local_slopes(stats, "all")
    assert first.num_samples == [1, 5] and second.num_samples == [5, 50]
    assert abs(first.slope - 0.5) < 4 * first.se
    # K = 5 and 50 draw the same noise (the same seed, the same law): SNR and slope identical
    assert abs(second.slope) <= 4 * second.se + 1e-12
    overall = snr_slope(stats, "all")
    assert 0.1 < overall.slope < 0.4
    with pytest.raises(ValueError, match="snr_local_slopes needs >= 2 values of K"):
        snr_local_slopes(stats[:1], "all")
