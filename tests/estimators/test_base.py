"""The estimator contract: registry, configuration errors, finiteness checks, surrogates."""

from __future__ import annotations

import pytest
import torch

from vaebench.estimators import (
    ESTIMATORS,
    Estimate,
    Estimator,
    NonFiniteError,
    build_estimator,
    check_finite,
    supported_estimators,
    surrogate_with_value,
)
from vaebench.models import build_model
from vaebench.registry import UnknownNameError

from .ground_truth import make_data, make_model

SHIPPED = ["dreg", "elbo", "elbo_mc", "iwae", "renyi", "score_function", "stl"]
ALL = ESTIMATORS.names()  # the contract tests run over the registry: a new estimator is tested here


def test_registry_lists_every_estimator():
    assert set(SHIPPED) <= set(ALL)


@pytest.mark.parametrize("name", ALL)
def test_every_estimator_honours_the_contract(name):
    model = make_model(exact=False)
    x = make_data(model, repeat=3)
    est = build_estimator(name, num_samples=3)(model, x)
    assert est.bound.shape == (x.shape[0],) and not est.bound.requires_grad
    assert est.surrogate.shape == () and est.surrogate.requires_grad
    assert est.log_w.shape == (3, x.shape[0])
    torch.testing.assert_close(est.surrogate.detach(), -est.bound.mean())
    check_finite(est, step=0)
    est.surrogate.backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


def test_unknown_names_and_options_are_named():
    with pytest.raises(UnknownNameError, match="unknown estimator 'iwea'.*Did you mean 'iwae'"):
        build_estimator("iwea")
    with pytest.raises(ValueError, match="unknown option 'alhpa'; known options: alpha, num_samples"):
        build_estimator("renyi", alhpa=0.5)
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match="num_samples must be an int >= 1"):
            build_estimator("iwae", num_samples=bad)


def test_check_finite_names_the_first_broken_term():
    ok = torch.zeros(3)
    est = Estimate(
        bound=ok,
        surrogate=ok.sum(),
        log_w=ok[None],
        components={"log_px_z": torch.tensor([0.0, float("nan"), 0.0]), "log_q": ok},
    )
    with pytest.raises(NonFiniteError, match="non-finite log_px_z at step 7") as info:
        check_finite(est, step=7)
    assert info.value.term == "log_px_z" and info.value.step == 7
    assert isinstance(info.value, FloatingPointError)
    est = Estimate(bound=ok, surrogate=torch.tensor(float("inf")), log_w=ok[None])
    with pytest.raises(NonFiniteError, match="non-finite surrogate"):
        check_finite(est)
    # A zero weight (log w = -inf) inside a finite bound is healthy.
    check_finite(Estimate(bound=ok, surrogate=ok.sum(), log_w=torch.tensor([[0.0, -float("inf"), 0.0]])))
    with pytest.raises(NonFiniteError, match="non-finite bound"):
        check_finite(Estimate(bound=torch.tensor([-float("inf")]), surrogate=ok.sum()))


def test_surrogate_with_value_keeps_the_gradient():
    theta = torch.tensor(2.0, requires_grad=True)
    s = surrogate_with_value(theta**2, torch.tensor([1.0, 3.0]))
    assert s.item() == -2.0
    s.backward()
    assert theta.grad.item() == 4.0


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("name", ALL)
def test_every_estimator_runs_on_cuda(name):
    # At the exact posterior every bound but 'elbo' (whose reconstruction term is random)
    # is log p(x) whatever the draws, so CUDA must reproduce the CPU's exact value.
    model = make_model(exact=True)
    x = make_data(model, repeat=2)
    exact = model.log_marginal(x).detach()
    model, x = model.cuda(), x.cuda()
    est = build_estimator(name, num_samples=3)(model, x)
    check_finite(est)
    est.surrogate.backward()
    if name != "elbo":
        torch.testing.assert_close(est.bound.cpu(), exact, rtol=0, atol=1e-9)
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


def test_supported_estimators_follow_the_capability_flags():
    everything = supported_estimators(has_log_prob=True, has_analytic_kl=True)
    assert everything == ESTIMATORS.names()
    flows = supported_estimators(has_log_prob=False, has_analytic_kl=False)
    assert "elbo" not in flows and "stl" not in flows and "dreg" not in flows and "iwae" in flows
    assert "elbo" in supported_estimators(has_log_prob=False, has_analytic_kl=True)


@pytest.mark.parametrize("estimator", ["stl", "dreg", "score_function"])
def test_estimators_needing_log_prob_name_what_the_family_supports(estimator):
    model = build_model("mlp_burda", posterior="planar", event_shape=(12,), latent_dim=3, hidden=(8,))
    advice = r"supports \('elbo_mc', 'iwae', 'renyi'\)"
    with pytest.raises(ValueError, match=rf"estimator '{estimator}' needs log q.*{advice}"):
        build_estimator(estimator, num_samples=2)(model.double(), torch.rand(4, 12, dtype=torch.float64))


@pytest.mark.parametrize("name", ESTIMATORS.names())
def test_every_estimator_goes_through_the_one_seam(name):
    """log_weights -> objective -> Estimate is assembled once, in the base class."""
    cls = ESTIMATORS.get(name)
    assert cls.__call__ is Estimator.__call__
    assert cls.objective is not Estimator.objective
