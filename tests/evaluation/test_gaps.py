"""Inference gaps (Cremer et al. 2018): the split of the ELBO gap, q* never worse than q_phi,
and an encoder made useless shows up as amortization gap."""

from __future__ import annotations

import pytest
import torch

from vaebench.evaluation import estimate_log_likelihood, inference_gaps
from vaebench.models import build_model


def _model():
    torch.manual_seed(0)
    model = build_model("mlp_burda", event_shape=(12,), latent_dim=2, hidden=(16,)).double()
    with torch.no_grad():  # a decoder that depends on z, so that q matters
        for p in model.decoder.parameters():
            p.mul_(3.0)
    x = torch.bernoulli(torch.full((6, 12), 0.4, dtype=torch.float64), generator=torch.Generator().manual_seed(2))
    return model, x


def test_gaps_split_the_elbo_gap_and_a_blind_encoder_is_amortization_gap():
    model, x = _model()
    log_px = estimate_log_likelihood(model, x, num_samples=2000, chunk_size=500, progress=False).log_px
    with torch.no_grad():  # q_phi the same for every x: whatever x needs, the encoder cannot give it
        model.posterior.mean.weight.zero_()
        model.posterior.logvar.weight.zero_()
        model.posterior.logvar.bias.fill_(2.0)  # and far too wide
    g = inference_gaps(model, x, log_px, num_steps=300, lr=3e-2, eval_samples=2000)
    torch.testing.assert_close(g.elbo_gap, g.approximation_gap + g.amortization_gap)
    assert (g.amortization_gap >= 0).all()  # q* is the better of the start and the optimum
    assert g.amortization_gap.mean() > 1.0  # optimizing q per point recovers nats
    # q* is a diagonal Gaussian too: log p(x) >= L[q*] up to the estimates' noise
    assert (g.approximation_gap > -0.2).all()
    m = g.metrics()
    assert set(m) == {"elbo_gap", "approximation_gap", "amortization_gap"} and m["elbo_gap"].n == 6
    # the model is left as it was: its own posterior back, parameters trainable again
    assert all(p.requires_grad for p in model.parameters())


def test_bad_arguments_are_named():
    model, x = _model()
    with pytest.raises(ValueError, match="log_px must be"):
        inference_gaps(model, x, torch.zeros(3))
    with pytest.raises(ValueError, match="num_steps"):
        inference_gaps(model, x, torch.zeros(6), num_steps=0)
