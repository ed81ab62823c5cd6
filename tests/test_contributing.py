"""CONTRIBUTING.md's recipes work verbatim: each code block is written to a temporary module
(imported as a module of its package, as the recipe's registry line would) or suite folder, and
the new family / estimator / dataset / suite is used through the registries like a shipped one."""

from __future__ import annotations

import importlib.util
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
import torch
from omegaconf import OmegaConf

from vaebench.config import RunConfig
from vaebench.datasets import DATASETS, load
from vaebench.estimators import ESTIMATORS, build_estimator
from vaebench.models import build_model
from vaebench.posteriors import POSTERIORS
from vaebench.runner.resolve import resolve_cells
from vaebench.runner.suite import available_suites, load_suite

from .posteriors.helpers import assert_log_q_matches_autograd

CONTRIBUTING = Path(__file__).resolve().parents[1] / "CONTRIBUTING.md"


def recipe(kind: str) -> str:
    """The code block after `<!-- recipe: KIND -->` in CONTRIBUTING.md."""
    match = re.search(rf"<!-- recipe: {kind} -->\n```\w+\n(.*?)```", CONTRIBUTING.read_text(), re.DOTALL)
    assert match, f"CONTRIBUTING.md has no recipe block '{kind}'"
    return match.group(1)


def import_recipe(tmp_path: Path, package: str, module: str, kind: str) -> ModuleType:
    """Write the recipe to tmp_path/<module>.py and import it as `<package>.<module>`, so that its
    relative imports resolve as in the package (the recipe's registry line does the same import)."""
    path = tmp_path / f"{module}.py"
    path.write_text(recipe(kind))
    name = f"{package}.{module}"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture
def throwaway(tmp_path: Path) -> Iterator[list[tuple]]:
    """Registry entries and modules the test adds, removed afterwards (the registries are global)."""
    added: list[tuple] = []
    yield added
    for registry, name, module in added:
        registry.unregister(name)
        sys.modules.pop(module, None)


def test_family_recipe(tmp_path: Path, throwaway: list[tuple], float64_and_seed: None) -> None:
    mod = import_recipe(tmp_path, "vaebench.posteriors", "shared_scale", "family")
    throwaway.append((POSTERIORS, "shared_scale", mod.__name__))
    cls = POSTERIORS.get("shared_scale")
    assert cls is mod.SharedScaleGaussian
    posterior = cls(feature_dim=5, latent_dim=3).double()
    with torch.no_grad():
        posterior.log_scale.uniform_(-0.5, 0.5, generator=torch.Generator().manual_seed(0))
    # The checks the contract test runs over the registry: log q against autograd's Jacobian, the
    # derived rsample against log_prob, the analytic KL against Monte Carlo.
    torch.manual_seed(0)
    assert_log_q_matches_autograd(posterior)
    h = torch.randn(4, 5, dtype=torch.float64)
    z, log_q = posterior.rsample_and_log_prob(h, 3)
    assert z.shape == (3, 4, 3)
    torch.testing.assert_close(posterior.log_prob(z, h), log_q)
    z, log_q = posterior.rsample_and_log_prob(h, 200_000)
    prior = -0.5 * z.square().sum(-1) - 1.5 * torch.log(torch.tensor(2 * torch.pi, dtype=torch.float64))
    torch.testing.assert_close(posterior.kl_to_prior(h), (log_q - prior).mean(0).detach(), rtol=0, atol=0.02)
    # Its capabilities give it every estimator, the analytic-KL ELBO and the path gradients included.
    assert cls.supported_estimators() == ESTIMATORS.names()
    model = build_model("mlp_burda", posterior="shared_scale", event_shape=(12,), latent_dim=3, hidden=(8,)).double()
    estimate = build_estimator("dreg", num_samples=4)(model, torch.rand(5, 12, dtype=torch.float64))
    estimate.surrogate.backward()
    assert torch.isfinite(estimate.bound).all() and model.posterior.log_scale.grad is not None


def test_estimator_recipe(tmp_path: Path, throwaway: list[tuple]) -> None:
    mod = import_recipe(tmp_path, "vaebench.estimators", "mean_log_weight", "estimator")
    throwaway.append((ESTIMATORS, "mean_log_weight", mod.__name__))
    model = build_model("mlp_burda", posterior="planar", event_shape=(12,), latent_dim=3, hidden=(8,)).double()
    x = torch.rand(6, 12, dtype=torch.float64)

    def estimate_and_gradient(name: str) -> tuple:
        model.zero_grad()
        torch.manual_seed(3)
        estimate = build_estimator(name, num_samples=4)(model, x)
        estimate.surrogate.backward()
        return estimate, torch.cat([p.grad.flatten() for p in model.parameters()])

    ours, our_grad = estimate_and_gradient("mean_log_weight")
    reference, reference_grad = estimate_and_gradient("elbo_mc")  # the same bound and gradient, shipped
    torch.testing.assert_close(ours.bound, reference.bound)
    torch.testing.assert_close(ours.surrogate, reference.surrogate)
    torch.testing.assert_close(our_grad, reference_grad)
    assert set(ours.components) == {"log_px_z", "log_pz", "log_q", "log_w"}
    assert "mean_log_weight" in POSTERIORS.get("planar").supported_estimators()


def test_dataset_recipe(tmp_path: Path, throwaway: list[tuple]) -> None:
    mod = import_recipe(tmp_path, "vaebench.datasets", "blobs", "dataset")
    throwaway.append((DATASETS, "blobs", mod.__name__))
    splits = load("blobs", seed=1, dtype=torch.float64)
    assert splits.card.sizes == {"train": 600, "valid": 100, "test": 100}
    assert splits.event_shape == (4,) and splits.likelihood == "gaussian"
    assert splits.train[0].shape == (4,) and splits.train[0].dtype == torch.float64
    again = load("blobs", seed=1, dtype=torch.float64)
    assert torch.equal(splits.test[5], again.test[5])  # seeded: the same draw every load
    assert DATASETS.entry("blobs").description == splits.card.title


def test_suite_recipe(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "blob_families.yaml").write_text(recipe("suite"))
    assert "blob_families" in available_suites([tmp_path])
    suite = load_suite("blob_families", [str(tmp_path)])
    names = [c.name for c in suite.cells]
    assert names == ["diagonal/iwae_5", "diagonal/elbo_mc", "planar_2/iwae_5", "planar_2/elbo_mc"]
    for budget, count in (("smoke", 1), ("quick", 4), ("paper", 4)):
        cfg = OmegaConf.structured(RunConfig)
        cfg.suite = suite
        cfg.budget.name = budget
        cells = resolve_cells(cfg)
        assert len(cells) == count
    composed = OmegaConf.merge(OmegaConf.structured(RunConfig), {"suite": suite, "budget": {"name": "smoke"}})
    (smoke,) = resolve_cells(composed)
    config = smoke.config
    assert (config.dataset.name, config.estimator.name, config.estimator.num_samples) == ("digits8", "iwae", 5)
