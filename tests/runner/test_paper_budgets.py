"""Every paper budget resolves to the protocol it names (REFERENCES.md, "Protocol" paragraphs of
Burda et al. 2015 and van den Berg et al. 2018): epochs, optimizer, schedule, dataset,
architecture. The protocol facts are transcribed below with the REFERENCES.md words they come
from, so a budget that drifts from its paper fails here."""

from __future__ import annotations

import pytest
from omegaconf import OmegaConf

from vaebench.config import RunConfig
from vaebench.runner import adapters
from vaebench.runner.resolve import resolve_cells
from vaebench.runner.suite import load_suite

# REFERENCES.md, Burda et al. 2015: "Adam, lr 1e-3, eps 1e-4", "for i = 0..7, 3^i epochs at
# lr 1e-3 * 10^(-i/7) (3,280 epochs); minibatch 20", "784-200-200-50", dynamic MNIST, K=5000.
IWAE = {
    "dataset": "mnist",
    "optimizer": "adam",
    "lr": 1e-3,
    "eps": 1e-4,
    "schedule": "iwae",
    "epochs": 3280,
    "batch_size": 20,
    "latent_dim": 50,
    "hidden": None,
    "nll_samples": 5000,
    "early_stopping": None,
    "kl_warmup": 0,
}
# REFERENCES.md, van den Berg et al. 2018: "static MNIST, ... z-dim 64, Adamax lr 5e-4 (eps 1e-7),
# batch 100, up to 2,000 epochs, KL warm-up over 100 epochs, early stopping with patience 100,
# 16 flows; O-SNF with 32 orthogonal vectors, H-SNF with 8 reflections; IAF baseline with MADE
# width 320; NLL with 5000 samples in chunks of 500".
SYLVESTER = {
    "optimizer": "adamax",
    "lr": 5e-4,
    "eps": 1e-7,
    "schedule": None,
    "epochs": 2000,
    "batch_size": 100,
    "latent_dim": 64,
    "nll_samples": 5000,
    "chunk_size": 500,
    "early_stopping": 100,
    "kl_warmup": 100,
}
SYLVESTER_POSTERIORS = {  # family -> kwargs the protocol fixes
    "planar": {"num_flows": 16},
    "iaf": {"num_flows": 16, "hidden": 320},
    "sylvester_householder": {"num_flows": 16, "num_householder": 8},
    "sylvester_orthogonal": {"num_flows": 16, "num_ortho_vecs": 32},
    "sylvester_triangular": {"num_flows": 16},
}


def paper_runs(suite: str) -> list:
    cfg = OmegaConf.merge(OmegaConf.structured(RunConfig), {"suite": load_suite(suite)})
    cfg.budget.name = "paper"
    return resolve_cells(cfg)


def check_optimization(run, protocol: dict) -> None:
    tc = run.config.train
    where = f"{run.suite} paper cell {run.cell}"
    assert adapters.train_epochs(run.config) == protocol["epochs"], where
    assert tc.optimizer == protocol["optimizer"], where
    assert tc.lr == pytest.approx(protocol["lr"]) and tc.eps == pytest.approx(protocol["eps"]), where
    assert tc.schedule == protocol["schedule"], where
    assert tc.batch_size == protocol["batch_size"], where
    assert tc.early_stopping_patience == protocol["early_stopping"], where
    assert tc.kl_warmup_epochs == protocol["kl_warmup"], where
    assert run.config.eval.nll_samples == protocol["nll_samples"], where
    assert run.config.dataset.train_size is None and run.config.dataset.test_size is None, f"{where}: cut data"
    assert run.config.model.kwargs.get("latent_dim", 50) == protocol["latent_dim"], where


def test_iwae_paper_budget_is_the_iwae_protocol() -> None:
    runs = paper_runs("iwae")
    assert {r.cell for r in runs} == {c.name for c in load_suite("iwae").cells}
    for run in runs:
        check_optimization(run, IWAE)
        assert run.config.dataset.name == IWAE["dataset"]
        assert run.config.model.name in ("mlp_burda", "mlp_burda_2layer")
        assert run.config.posterior.name == "diagonal"


def test_the_iwae_schedule_runs_its_3280_epochs() -> None:
    """`schedule: iwae` without `epochs` trains the schedule's length, not a default of 10."""
    from vaebench.trainer import IWAESchedule, resolve_epochs

    assert resolve_epochs(None, "iwae") == IWAESchedule().total_epochs == 3280
    assert resolve_epochs(None, None) == 10 and resolve_epochs(7, "iwae") == 7


def test_iaf_paper_budget_is_the_sylvester_protocol_on_static_mnist() -> None:
    """The iaf suite's static-MNIST reference rows are the Sylvester paper's: its protocol, its
    dataset and its 16-flow posteriors (every family of the protocol's table is present)."""
    runs = paper_runs("iaf")
    families = set()
    for run in runs:
        check_optimization(run, SYLVESTER)
        assert run.config.dataset.name == "static_mnist"
        assert run.config.estimator.name == "elbo_mc"
        name = run.config.posterior.name
        families.add(name)
        for key, value in SYLVESTER_POSTERIORS.get(name, {}).items():
            assert run.config.posterior.kwargs.get(key) == value, f"iaf paper cell {run.cell}: {key}"
    assert families == {"diagonal", *SYLVESTER_POSTERIORS}
    assert {r.seed for r in runs} == {0, 1, 2}


def test_flows_paper_budget_uses_the_sylvester_optimization_on_the_real_datasets() -> None:
    runs = paper_runs("flows")
    datasets = {r.config.dataset.name for r in runs}
    assert datasets == {"mnist", "static_mnist", "omniglot", "fashion_mnist", "caltech101_silhouettes"}
    for run in runs:
        check_optimization(run, SYLVESTER)


@pytest.mark.parametrize("suite", ["iaf", "flows", "iwae"])
def test_quick_budgets_train_on_every_embedded_digit_with_three_seeds(suite: str) -> None:
    cfg = OmegaConf.merge(OmegaConf.structured(RunConfig), {"suite": load_suite(suite)})
    cfg.budget.name = "quick"
    runs = resolve_cells(cfg)
    assert {r.seed for r in runs} >= {0, 1, 2}
    for run in runs:
        assert run.config.dataset.name == "digits28" and run.config.dataset.train_size is None
        assert run.config.train.early_stopping_patience is not None  # trained to its best validation bound


@pytest.mark.parametrize("suite", ["iaf", "flows", "iwae", "estimators", "exact", "kernels"])
def test_every_budget_resolves(suite: str) -> None:
    """Every budget of every suite composes against the schema (unknown keys, wrong types and
    unknown cells fail here, not an hour into a run)."""
    doc = load_suite(suite)
    for budget in doc.budgets:
        cfg = OmegaConf.merge(OmegaConf.structured(RunConfig), {"suite": doc})
        cfg.budget.name = budget
        assert resolve_cells(cfg), f"{suite} {budget}"
