import pytest
import torch

from vaebench.evaluation import active_units

from .eval_toy_models import orthogonal_linear_gaussian


def _model_with_known_units():
    # E_q[z|x] = A (x - b) + c: row u of A sets unit u's variance over x. Unit 1 is dead
    # (row 0), unit 3 barely moves (variance ~0.002 < 0.01), units 0 and 2 are active.
    model = orthogonal_linear_gaussian(data_dim=6, latent_dim=4)
    with torch.no_grad():
        model.A.zero_()
        model.A[0, 0] = 1.0
        model.A[2, 1] = 0.5
        model.A[3, 2] = 0.02
        model.c.fill_(3.0)
    return model


def test_known_active_units_and_variances():
    model = _model_with_known_units()
    x = model.sample_data(700)
    r = active_units(model, x)
    assert r.num_examples == 500  # the protocol's first 500 examples, not all 700
    assert r.active.tolist() == [True, False, True, False]
    assert r.num_active == 2
    expect = (x[:500] - model.b).detach()[:, :3].var(0, unbiased=False) * torch.tensor([1.0, 0.25, 4e-4], dtype=torch.float64)
    torch.testing.assert_close(r.variances[[0, 2, 3]], expect)
    assert r.variances[1] == 0
    assert 0 < r.variances[3] < 0.01 < r.variances[2]
    d = r.to_dict()
    assert d["active_units"] == 2 and d["latent_dim"] == 4


def test_threshold_and_errors():
    model = _model_with_known_units()
    x = model.sample_data(50)
    assert active_units(model, x, threshold=0.0).num_active == 3
    with pytest.raises(ValueError, match="threshold"):
        active_units(model, x, threshold=-1)
    with pytest.raises(ValueError, match="at least 2"):
        active_units(model, x, num_examples=1)
    with pytest.raises(TypeError, match="posterior_mean"):
        active_units(torch.nn.Linear(2, 2), x)


def test_packaged_vae_with_silenced_units():
    # A Burda-style MLP VAE (vaebench.models): zeroing a unit's row of the posterior mean layer
    # makes E_q[u|x] constant, so exactly those units are inactive.
    from vaebench.models.architectures import build_model

    torch.manual_seed(0)
    model = build_model({"name": "mlp_burda", "latent_dim": 4, "hidden": (16,)}, posterior="diagonal",
                        event_shape=(12,), likelihood="bernoulli").double()
    with torch.no_grad():
        model.posterior.mean.weight.mul_(20.0)  # make the live units clearly active
        model.posterior.mean.weight[[1, 3]] = 0.0
    x = (torch.rand(600, 12, dtype=torch.float64) < 0.5).double()
    r = active_units(model, x)
    assert r.active.tolist() == [True, False, True, False]
    assert r.variances[1] == 0 and r.variances[3] == 0 and r.num_examples == 500
