"""The fused likelihood head in the evaluator and the train step: chosen where the model allows,
and the same values and training gradients as the unfused path (the reference)."""

from __future__ import annotations

import pytest
import torch

from vaebench.estimators import ESTIMATORS
from vaebench.evaluation import estimate_log_likelihood
from vaebench.models import build_model, likelihood_head
from vaebench.models.likelihood_head import fused_head_pays, fused_output_layer

EVENT = (784,)


def _model(arch: str = "mlp_burda", likelihood: str = "bernoulli", posterior: str = "diagonal", seed: int = 0):
    torch.manual_seed(seed)
    model = build_model(arch, posterior=posterior, event_shape=EVENT, likelihood=likelihood).double()
    x = torch.bernoulli(torch.full((7, *EVENT), 0.3, dtype=torch.float64), generator=torch.Generator().manual_seed(1))
    return model, x


@pytest.fixture
def head_calls(monkeypatch):
    """Counts the fused head's calls: the fused path must really be taken."""
    calls = []
    fused = likelihood_head.bernoulli_head

    def counting(*args, **kwargs):
        calls.append(args[0].shape)
        return fused(*args, **kwargs)

    monkeypatch.setattr(likelihood_head, "bernoulli_head", counting)
    return calls


@pytest.fixture
def always_fused(monkeypatch):
    """The fused head for any size of training batch too (the tests' batches are below the size
    where it pays, `fused_head_pays`): these tests check the fused path's values and gradients."""
    monkeypatch.setattr(likelihood_head, "TRAINING_MIN_LOGIT_BYTES", 0)


def test_the_head_is_chosen_only_where_the_model_allows():
    model, _ = _model()
    assert fused_output_layer(model.decoder, model.likelihood, model.event_shape) is model.decoder.output_layer
    gaussian, _ = _model(likelihood="gaussian")
    assert fused_output_layer(gaussian.decoder, gaussian.likelihood, gaussian.event_shape) is None
    conv = build_model("conv32", event_shape=(1, 28, 28))
    assert fused_output_layer(conv.decoder, conv.likelihood, conv.event_shape) is None
    assert fused_output_layer(model.decoder, model.likelihood, (28, 27)) is None  # not one logit per data dim
    # a forward hook on the output layer must run: the layer is then called as a module
    seen = []
    handle = model.decoder.output_layer.register_forward_hook(lambda m, a, out: seen.append(out.shape))
    assert fused_output_layer(model.decoder, model.likelihood, model.event_shape) is None
    model.log_weights(torch.zeros(2, *EVENT, dtype=torch.float64), 3)
    assert seen == [(6, 784)]
    handle.remove()
    assert fused_output_layer(model.decoder, model.likelihood, model.event_shape) is model.decoder.output_layer


@pytest.mark.parametrize("arch", ["mlp_burda", "mlp_burda_2layer"])
def test_log_weights_match_the_unfused_path(arch, head_calls, always_fused):
    model, x = _model(arch)
    out = {}
    for fused in (True, False):
        model.fused_head = fused
        torch.manual_seed(3)
        out[fused] = model.log_weights(x, 5)
    assert head_calls and head_calls[0][:2] == (5, 7)  # (K, B, H) features, only on the fused pass
    assert len(head_calls) == 1
    for name in ("log_w", "log_px_z", "log_pz", "log_q"):
        torch.testing.assert_close(getattr(out[True], name), getattr(out[False], name), rtol=1e-12, atol=1e-10)


def test_estimate_log_likelihood_matches_the_unfused_path(head_calls):
    model, x = _model()
    results = {}
    for fused in (True, False):
        model.fused_head = fused
        results[fused] = estimate_log_likelihood(model, x, num_samples=300, chunk_size=70, batch_size=3, progress=False)
    assert len(head_calls) == 3 * 5  # ceil(7 / 3) batches x ceil(300 / 70) chunks, fused pass only
    torch.testing.assert_close(results[True].log_px, results[False].log_px, rtol=1e-12, atol=1e-10)
    torch.testing.assert_close(results[True].ess, results[False].ess, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize(
    ("arch", "estimator", "kwargs"),
    [
        ("mlp_burda", "elbo", {}),
        ("mlp_burda", "iwae", {"num_samples": 50}),
        ("mlp_burda", "dreg", {"num_samples": 5}),
        ("mlp_burda_2layer", "iwae", {"num_samples": 5}),
    ],
)
def test_training_gradients_match_the_unfused_path(arch, estimator, kwargs, head_calls, always_fused):
    model, x = _model(arch)
    est = ESTIMATORS.get(estimator)(**kwargs)
    grads = {}
    for fused in (True, False):
        model.fused_head = fused
        model.zero_grad(set_to_none=True)
        torch.manual_seed(4)
        est(model, x).surrogate.backward()
        grads[fused] = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    assert head_calls
    assert grads[True].keys() == grads[False].keys() and "decoder.net.net.4.weight" in grads[True]
    for name, g in grads[True].items():
        torch.testing.assert_close(g, grads[False][name], rtol=1e-10, atol=1e-12, msg=lambda m, n=name: f"{n}: {m}")


def test_float32_training_gradients_agree(always_fused):
    model, x = _model()
    model, x = model.float(), x.float()
    est = ESTIMATORS.get("iwae")(num_samples=50)
    grads = {}
    for fused in (True, False):
        model.fused_head = fused
        model.zero_grad(set_to_none=True)
        torch.manual_seed(5)
        est(model, x).surrogate.backward()
        grads[fused] = torch.cat([p.grad.flatten() for p in model.parameters()])
    err = (grads[True] - grads[False]).abs().max() / grads[False].abs().max()
    assert err < 1e-4, float(err)


def test_with_gradients_the_head_is_fused_only_for_logits_beyond_the_cache_limit(head_calls, monkeypatch):
    # The rule: without gradients always (the forward alone is the faster path at any size);
    # with them on a CPU, from TRAINING_MIN_LOGIT_BYTES of logits on (the recomputing backward's
    # extra matmul costs more than it saves while the logits fit in cache).
    like = torch.zeros((), dtype=torch.float64)
    limit = likelihood_head.TRAINING_MIN_LOGIT_BYTES
    rows = -(-limit // (784 * 8))  # the fewest float64 rows of 784 logits at the limit
    assert limit > 0
    assert fused_head_pays(1, 784, like, needs_grad=False)
    assert not fused_head_pays(rows - 1, 784, like, needs_grad=True)
    assert fused_head_pays(rows, 784, like, needs_grad=True)
    assert fused_head_pays(rows - 1, 784, torch.zeros((), device="meta"), needs_grad=True)  # not a CPU
    # The model follows it: a limit of 100 rows of float64 logits, a batch of 7 examples.
    monkeypatch.setattr(likelihood_head, "TRAINING_MIN_LOGIT_BYTES", 100 * 784 * 8)
    model, x = _model()
    est = ESTIMATORS.get("iwae")
    est(num_samples=14)(model, x)  # 98 rows with gradients: unfused
    assert head_calls == []
    est(num_samples=15)(model, x)  # 105 rows
    assert head_calls == [(15, 7, 200)]
    with torch.no_grad():
        model.log_weights(x, 1)  # 7 rows without gradients: fused
    assert head_calls[1] == (1, 7, 200)
    for p in model.parameters():
        p.requires_grad_(False)
    model.log_weights(x, 1)  # no parameter (and so no z) needs a gradient: fused
    assert len(head_calls) == 3
