"""The four tasks end to end on tiny configs: train_eval, gradients, kernels, exact."""

from __future__ import annotations

import io
import math
from pathlib import Path

import pytest
from omegaconf import OmegaConf
from rich.console import Console

from vaebench.config import RunConfig
from vaebench.runner import run_suite

TINY_MODEL = {"name": "mlp_burda", "kwargs": {"hidden": [16], "latent_dim": 3}}
TINY_DATA = {"name": "digits8", "train_size": 40, "test_size": 8}


def run(tmp: Path, task: str, common: dict, cells: list[dict]):
    suite = {"name": f"t_{task}", "task": task, "common": common, "cells": cells, "budgets": {"smoke": {}}}
    cfg = OmegaConf.merge(
        OmegaConf.structured(RunConfig),
        {
            "suite": suite,
            "budget": {"name": "smoke"},
            "results_dir": str(tmp),
            "progress": False,
            "jobs": 1,  # one tiny run: worker processes would only add their start-up
        },
    )
    return run_suite(cfg, console=Console(file=open("/dev/null", "w"), width=200))


def test_train_eval_reports_every_metric_with_errors(tmp_path: Path) -> None:
    common = {
        "dataset": TINY_DATA,
        "model": TINY_MODEL,
        "estimator": {"name": "iwae", "num_samples": 2},
        "train": {"epochs": 1, "batch_size": 20},
        "eval": {"nll_samples": 20, "chunk_size": 10, "active_units_examples": 20, "batch_size": 8},
    }
    (rec,) = run(tmp_path, "train_eval", common, [{"name": "planar", "config": {"posterior": {"name": "planar"}}}])
    for name in ("nll", "elbo", "kl", "reconstruction", "active_units", "train_time_s"):
        assert name in rec.metrics and math.isfinite(rec.metrics[name].mean), name
    assert rec.metrics["nll"].n == 8 and rec.metrics["nll"].se > 0
    # NLL <= -ELBO up to Monte Carlo error: the importance-sampled bound is the tighter one
    assert rec.metrics["nll"].mean <= -rec.metrics["elbo"].mean + 3 * rec.metrics["elbo"].se
    assert any("K=20 importance samples" in n for n in rec.notes)
    assert rec.curves and all(len(v) == 1 for v in rec.curves.values())
    # one epoch is too short to show convergence: the record says so, and plots the curve
    assert rec.metrics["converged"].mean == 0 and any("NOT CONVERGED" in n for n in rec.notes)
    assert (tmp_path / rec.artifacts["valid_curve"]).is_file()


def test_train_eval_early_stops_converges_and_measures_gaps(tmp_path: Path) -> None:
    common = {
        "dataset": TINY_DATA,
        "model": TINY_MODEL,
        "estimator": {"name": "elbo_mc"},
        "train": {"epochs": 60, "batch_size": 20, "lr": 3e-2, "early_stopping_patience": 2},
        "eval": {
            "nll_samples": 20,
            "chunk_size": 10,
            "active_units_examples": 20,
            "batch_size": 8,
            "gap_examples": 2,
            "gap_steps": 5,
            "gap_samples": 20,
        },
    }
    (rec,) = run(tmp_path, "train_eval", common, [{"name": "diagonal", "config": {}}])
    assert rec.metrics["epochs"].mean < 60  # early stopping ended it (40 digits overfit fast at lr 3e-2)
    assert rec.metrics["converged"].mean == 1
    assert rec.metrics["best_epoch"].mean == rec.metrics["epochs"].mean - 2
    for name in ("elbo_gap", "approximation_gap", "amortization_gap"):
        assert rec.metrics[name].n == 2
    assert rec.metrics["amortization_gap"].mean >= 0


def test_gradients_measure_both_groups_and_plot(tmp_path: Path) -> None:
    common = {
        "dataset": TINY_DATA,
        "model": TINY_MODEL,
        "train": {"epochs": 0},
        "gradients": {"num_draws": 4, "batch_size": 4, "num_samples": [1, 3]},
    }
    (rec,) = run(tmp_path, "gradients", common, [{"name": "dreg", "config": {"estimator": {"name": "dreg"}}}])
    for k in (1, 3):
        for group in ("encoder", "decoder"):
            assert f"{group}_snr@K={k}" in rec.metrics and f"{group}_variance@K={k}" in rec.metrics
        assert rec.metrics[f"ess_fraction@K={k}"].mean == pytest.approx(rec.metrics[f"ess@K={k}"].mean / k)
        assert rec.metrics[f"weight_relvar@K={k}"].mean >= 0
    for group in ("encoder", "decoder"):
        assert f"{group}_snr_slope" in rec.metrics and rec.metrics[f"{group}_snr_slope"].se is not None
        # one local slope, over [1, 3]: with two K it is the least-squares slope itself
        local = rec.metrics[f"{group}_local_slope@K=3"]
        assert local.mean == pytest.approx(rec.metrics[f"{group}_snr_slope"].mean) and local.se is not None
    assert any("asymptotic" in n and "local_slope" in n for n in rec.notes)
    assert (tmp_path / rec.artifacts["plot"]).is_file()


LINEAR_GAUSSIAN = {
    "dataset": {"name": "linear_gaussian", "train_size": 50, "test_size": 16},
    "model": {"name": "linear_gaussian", "likelihood": "gaussian", "kwargs": {"exact_family": True}},
}


def test_gradients_at_a_shifted_exact_posterior_know_the_weights_relative_variance(tmp_path: Path) -> None:
    common = {
        **LINEAR_GAUSSIAN,
        "train": {"epochs": 0},
        "gradients": {"num_draws": 20, "batch_size": 8, "num_samples": [4, 32], "exact_posterior_shift": 0.5},
    }
    (rec,) = run(tmp_path, "gradients", common, [{"name": "iwae", "config": {"estimator": {"name": "iwae"}}}])
    # q = N(m + L u delta, S) against p(z|x) = N(m, S): Var w / (E w)^2 = exp(delta^2) - 1 = 0.284
    assert rec.metrics["weight_relvar@K=32"].mean == pytest.approx(math.expm1(0.25), rel=0.15)
    assert rec.metrics["ess_fraction@K=32"].mean == pytest.approx(1 / (1 + math.expm1(0.25)), rel=0.1)
    assert any("shifted by 0.5 posterior standard deviations" in n for n in rec.notes)


def test_exact_posterior_shift_needs_the_linear_gaussian_exact_family(tmp_path: Path) -> None:
    from vaebench.runner.validate import ValidationError

    common = {"dataset": TINY_DATA, "model": TINY_MODEL, "gradients": {"exact_posterior_shift": 1.0}}
    with pytest.raises(ValidationError, match="gradients.exact_posterior_shift=1.0: needs model.name=linear_gaussian"):
        run(tmp_path, "gradients", common, [{"name": "iwae", "config": {"estimator": {"name": "iwae"}}}])
    common = {**LINEAR_GAUSSIAN, "gradients": {"exact_posterior_shift": -1.0}}
    with pytest.raises(ValidationError, match="must be a number >= 0 or null"):
        run(tmp_path, "gradients", common, [{"name": "iwae", "config": {"estimator": {"name": "iwae"}}}])


def test_kernels_time_every_provider(tmp_path: Path) -> None:
    common = {"kernels": {"sizes": [[4, 8, 3]], "providers": ["reference", "fused"], "repeats": 2}}
    (rec,) = run(tmp_path, "kernels", common, [{"name": "lme", "config": {"kernels": {"ops": ["log_mean_exp"]}}}])
    for provider in ("reference", "fused"):
        assert rec.metrics[f"4x8x3/{provider}/fwd_bwd_ms"].mean > 0
    assert rec.metrics["4x8x3/fused_speedup_vs_reference/fwd"].mean > 0
    assert any("backend" in n for n in rec.notes)


def test_kernels_reject_unknown_ops(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="kernels.ops='frob': not a benchmarked op"):
        run(tmp_path, "kernels", {"kernels": {"ops": ["frob"], "repeats": 1}}, [{"name": "x"}])


def test_exact_bias_shrinks_with_k(tmp_path: Path) -> None:
    common = {
        "dataset": {"name": "linear_gaussian", "train_size": 50, "test_size": 16},
        "model": {"name": "linear_gaussian", "likelihood": "gaussian", "kwargs": {"exact_family": False}},
        "train": {"epochs": 0},
        "exact": {"num_draws": 64, "num_examples": 16, "num_samples": [1, 100]},
    }
    (rec,) = run(tmp_path, "exact", common, [{"name": "iwae", "config": {"estimator": {"name": "iwae"}}}])
    b1, b100 = rec.metrics["bias@K=1"], rec.metrics["bias@K=100"]
    # lower bounds: bias <= 0 (within the error over examples) and IWAE's gap closes with K
    assert b1.mean < 0 and b100.mean <= 3 * b100.se
    assert b1.mean < b100.mean
    assert rec.metrics["std@K=1"].mean > 0
    # per-example biases for paired comparisons, on the 16 test points the sha256 names
    assert len(rec.per_example["bias@K=100"]) == 16 and rec.test_points["count"] == 16
    assert sum(rec.per_example["bias@K=1"]) / 16 == pytest.approx(b1.mean, abs=1e-5)


def test_exact_needs_a_closed_form_model(tmp_path: Path) -> None:
    common = {"dataset": TINY_DATA, "model": TINY_MODEL, "train": {"epochs": 0}, "estimator": {"name": "iwae"}}
    with pytest.raises(ValueError, match="needs a model with a closed-form"):
        run(tmp_path, "exact", common, [{"name": "x"}])


def test_train_eval_records_per_example_values_on_the_same_test_points(tmp_path: Path) -> None:
    common = {
        "dataset": TINY_DATA,
        "model": TINY_MODEL,
        "estimator": {"name": "iwae", "num_samples": 2},
        "train": {"epochs": 1, "batch_size": 20},
        "eval": {"nll_samples": 10, "chunk_size": 10, "active_units_examples": 20, "batch_size": 8},
    }
    suite = {
        "name": "t_pairs",
        "task": "train_eval",
        "common": common,
        "seeds": [0, 1],
        "cells": [
            {"name": "diagonal", "config": {"posterior": {"name": "diagonal"}}},
            {"name": "planar", "config": {"posterior": {"name": "planar"}}},
        ],
        "budgets": {"smoke": {}},
    }
    cfg = OmegaConf.merge(
        OmegaConf.structured(RunConfig),
        {
            "suite": suite,
            "budget": {"name": "smoke"},
            "results_dir": str(tmp_path),
            "progress": False,
        },
    )
    records = run_suite(cfg, console=Console(file=io.StringIO(), width=200))
    assert sorted((r.cell, r.seed) for r in records) == [("diagonal", 0), ("diagonal", 1), ("planar", 0), ("planar", 1)]
    for r in records:
        assert set(r.per_example) == {"nll", "nll_mc_std", "elbo"}
        assert all(len(v) == 8 for v in r.per_example.values())
        # the stored values are the ones the metrics summarize (to the stored 1e-6 nats)
        assert sum(r.per_example["nll"]) / 8 == pytest.approx(r.metrics["nll"].mean, abs=1e-5)
        assert sum(r.per_example["elbo"]) / 8 == pytest.approx(r.metrics["elbo"].mean, abs=1e-5)
        assert r.test_points["count"] == 8 and len(r.test_points["sha256"]) == 64
    # digits8 binarizes its test set with its own seed: every cell and seed sees the same points
    assert len({r.test_points["sha256"] for r in records}) == 1
    # ... but the models differ, so the per-example values do too
    assert len({tuple(r.per_example["nll"]) for r in records}) == 4
