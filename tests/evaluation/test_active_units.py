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
    expect = (x[:500] - model.b).detach()[:, :3].var(0, unbiased=False) * torch.tensor(
        [1.0, 0.25, 4e-4], dtype=torch.float64
    )
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
    model = build_model(
        {"name": "mlp_burda", "latent_dim": 4, "hidden": (16,)},
        posterior="diagonal",
        event_shape=(12,),
        likelihood="bernoulli",
    ).double()
    with torch.no_grad():
        model.posterior.mean.weight.mul_(20.0)  # make the live units clearly active
        model.posterior.mean.weight[[1, 3]] = 0.0
    x = (torch.rand(600, 12, dtype=torch.float64) < 0.5).double()
    r = active_units(model, x)
    assert r.active.tolist() == [True, False, True, False]
    assert r.variances[1] == 0 and r.variances[3] == 0 and r.num_examples == 500


def _vae(posterior: str = "diagonal", **kwargs):
    from vaebench.models import build_model

    torch.manual_seed(0)
    model = build_model(
        "mlp_burda", posterior=posterior, posterior_kwargs=kwargs, event_shape=(12,), latent_dim=4, hidden=(16,)
    ).double()
    x = torch.bernoulli(torch.full((300, 12), 0.4, dtype=torch.float64), generator=torch.Generator().manual_seed(2))
    return model, x


def test_monte_carlo_means_are_corrected_for_their_own_noise():
    """A planar flow at init is its base exactly, so its Monte Carlo E[z|x] must give the base's
    analytic A_u: the draws' inflation (Var_q / S, about 1/S for these near-prior units) is
    subtracted, and the remaining error, whose reported standard deviation is checked here
    (4 of them), is far below the threshold. With 100 draws and no correction every unit
    would score ~0.01 more (issue 10)."""
    model, x = _vae()
    analytic = active_units(model, x, num_examples=300)
    assert analytic.layers[0].mc_samples == 0 and analytic.mc_error == 0
    flow, _ = _vae("planar", num_flows=2)
    with torch.no_grad():  # the same base as the diagonal model; the flow at its identity init
        for name, p in model.named_parameters():
            dict(flow.named_parameters())[name.replace("posterior.", "posterior.base.")].copy_(p)
    mc = active_units(flow, x, num_examples=300, num_samples=2000)
    assert mc.layers[0].mc_samples == 2000
    assert 0 < mc.mc_error < 0.1 * mc.threshold
    assert ((mc.variances - analytic.variances).abs() < 4 * mc.layers[0].mc_std).all()
    raw = mc.variances + mc.layers[0].mc_bias  # what the uncorrected estimate was
    assert (raw - analytic.variances).min() > 0  # the inflation is real and positive


def test_eigen_count_does_not_depend_on_a_rotation_of_q():
    """Householder reflections rotate E[z|x]: per-unit variances change, eigenvalues do not."""
    from vaebench.posteriors.householder import reflect

    model, x = _vae()
    r = active_units(model, x, num_examples=300)
    means = model.posterior_mean(x)
    v = torch.randn(1, 4, dtype=torch.float64)
    rotated = reflect(means.unsqueeze(0), v.expand(300, 4))[0]
    eig = torch.linalg.eigvalsh(torch.cov(rotated.T, correction=0)).flip(0)
    torch.testing.assert_close(r.layers[0].eigenvalues, eig)
    assert r.num_active_eigen == int((eig > r.threshold).sum())


def test_two_layer_model_counts_each_layer():
    from vaebench.models import build_model

    torch.manual_seed(0)
    model = build_model("mlp_burda_2layer", event_shape=(12,), latent_dims=(5, 3), hidden=(8,), hidden2=(6,)).double()
    x = torch.bernoulli(torch.full((200, 12), 0.4, dtype=torch.float64), generator=torch.Generator().manual_seed(2))
    r = active_units(model, x, num_examples=200, threshold=0.0)
    assert [layer.name for layer in r.layers] == ["z1", "z2"]
    assert [layer.active.numel() for layer in r.layers] == [5, 3]
    assert r.num_active == r.layers[0].num_active + r.layers[1].num_active == 8  # threshold 0: every moving unit
    # z1 from the analytic mean of q(z1 | x); z2 from the mean of q(z2 | z1) at z1 = E[z1 | x]
    m1 = model.posterior1.to_distribution(model.encode(x)).mean
    m2 = model.posterior.to_distribution(model.encoder2(m1)).mean
    torch.testing.assert_close(r.layers[0].variances, m1.var(0, unbiased=False))
    torch.testing.assert_close(r.layers[1].variances, m2.var(0, unbiased=False))
    assert r.to_dict()["active_units_z2"] == 3
