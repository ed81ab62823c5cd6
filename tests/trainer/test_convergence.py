"""The convergence rule: the best validation bound's gain over the last window, or early stopping."""

from __future__ import annotations

import math

import pytest
import torch

from vaebench.trainer import ConvergenceRule, Trainer, TrainSection


def test_a_plateau_converges_and_a_rising_curve_does_not() -> None:
    rule = ConvergenceRule(window=5, tol=0.1)
    plateau = [-120 + 10 * (1 - math.exp(-e / 3)) for e in range(40)]  # gains << 0.1 at the end
    rising = [-120 + 0.05 * e for e in range(40)]  # 0.25 nats per 5 epochs
    assert rule.check(plateau).converged
    verdict = rule.check(rising)
    assert not verdict.converged and verdict.improvement == pytest.approx(0.25)
    assert "0.250" in verdict.reason


def test_overfitting_after_the_best_epoch_counts_as_converged() -> None:
    curve = [-110 + min(e, 10) * 0.5 - max(e - 10, 0) * 0.2 for e in range(30)]  # peak at 10, then down
    assert ConvergenceRule(window=5, tol=0.1).check(curve).converged


def test_short_runs_need_early_stopping_to_count() -> None:
    rule = ConvergenceRule(window=20)
    assert not rule.check([-100.0] * 5).converged
    assert rule.check([-100.0] * 5, stopped_early=True).converged
    assert not rule.check([]).converged and not rule.check([math.nan] * 30).converged


def test_bad_rules_are_rejected() -> None:
    with pytest.raises(ValueError, match="window"):
        ConvergenceRule(window=0)
    with pytest.raises(ValueError, match="tol"):
        ConvergenceRule(tol=0.0)


def _toy(seed: int = 0):
    from vaebench.estimators import build_estimator
    from vaebench.models import build_model

    torch.manual_seed(seed)
    model = build_model("mlp_burda", event_shape=(12,), latent_dim=2, hidden=(8,)).double()
    x = torch.bernoulli(torch.full((64, 12), 0.3, dtype=torch.float64), generator=torch.Generator().manual_seed(1))
    return model, build_estimator("elbo_mc", num_samples=1), x


def test_the_trainer_reports_its_verdict_and_uses_adamax() -> None:
    model, est, x = _toy()
    cfg = TrainSection(epochs=4, batch_size=16, optimizer="adamax", convergence_window=2, convergence_tol=1e9)
    trainer = Trainer(model, est, x[:48], x[48:], cfg, progress=False)
    assert isinstance(trainer.optimizer, torch.optim.Adamax)
    result = trainer.fit()
    assert result.convergence is not None and result.converged  # any gain is below tol = 1e9
    strict = Trainer(
        *_toy()[:2],
        x[:48],
        x[48:],
        TrainSection(epochs=4, batch_size=16, convergence_window=2, convergence_tol=1e-9),
        progress=False,
    ).fit()
    assert not strict.converged  # a fresh model still gains more than 1e-9 nats in 2 epochs
    with pytest.raises(ValueError, match="optimizer"):
        Trainer(model, est, x, None, TrainSection(optimizer="sgd"), progress=False)


def test_validation_uses_the_same_draws_every_epoch() -> None:
    """With the learning rate ~0 the model does not move, so the validation bound must repeat
    exactly: epoch-to-epoch changes are then the model's, not Monte Carlo noise."""
    model, est, x = _toy()
    result = Trainer(model, est, x[:48], x[48:], TrainSection(epochs=3, batch_size=16, lr=1e-300), progress=False).fit()
    v = result.curves["valid_bound"]
    assert v[0] == v[1] == v[2]
