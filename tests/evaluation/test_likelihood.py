import math

import pytest
import torch
from torch.utils.data import TensorDataset

from vaebench.evaluation import estimate_log_likelihood

from .eval_toy_models import LinearGaussianVAE, orthogonal_linear_gaussian


@pytest.fixture
def model_and_data():
    model = orthogonal_linear_gaussian(data_dim=10, latent_dim=3)
    return model, model.sample_data(40)


def test_exact_posterior_gives_exact_log_px(model_and_data):
    # q = p(z|x): every weight equals p(x), so the estimate is exact whatever K and chunking.
    model, x = model_and_data
    model.set_posterior(exact=True)
    r = estimate_log_likelihood(model, x, num_samples=50, chunk_size=7, batch_size=9, progress=False)
    torch.testing.assert_close(r.log_px, model.exact_log_px(x).detach(), rtol=0, atol=1e-10)
    torch.testing.assert_close(r.ess, torch.full((40,), 50.0, dtype=torch.float64))


def test_k5000_within_tolerance_derived_from_standard_error(model_and_data):
    model, x = model_and_data
    model.set_posterior(exact=True, var_scale=1.6)  # a wider q than the posterior: weights vary
    r = estimate_log_likelihood(model, x, num_samples=5000, chunk_size=500, progress=False)
    exact = model.exact_log_px(x).detach()
    assert r.ess.max() < 4990 and r.mc_std.min() > 0  # the test is not the trivial exact case
    # log p̂ is biased low by about mc_std^2 / 2 (delta method) and has sd mc_std: 5 sd per
    # example, 4 sd for the mean over examples.
    per_example = (r.log_px - exact).abs()
    assert (per_example <= 5 * r.mc_std + r.mc_std.square()).all(), (per_example / r.mc_std).max()
    mean_gap = abs(r.mean_log_px - exact.mean().item())
    assert mean_gap <= 4 * r.mc_stderr + r.mc_std.square().mean().item(), (mean_gap, r.mc_stderr)
    assert r.mc_stderr < 2e-3  # and the tolerance is tight
    # a K = 5 estimate on the same data is measurably looser: the test can tell a bad estimator
    r5 = estimate_log_likelihood(model, x, num_samples=5, progress=False)
    assert r5.mean_log_px < exact.mean().item() - 4 * r.mc_stderr


def test_summary_fields_and_bits_per_dim(model_and_data):
    model, x = model_and_data
    model.set_posterior(exact=True, var_scale=1.3)
    r = estimate_log_likelihood(model, x, num_samples=100, progress=False)
    assert r.nll == pytest.approx(-r.log_px.mean().item())
    assert r.stderr == pytest.approx(r.log_px.std().item() / math.sqrt(40))
    assert r.bits_per_dim == pytest.approx(r.nll / (10 * math.log(2)))
    d = r.to_dict()
    assert d["num_samples"] == 100 and d["num_examples"] == 40 and "log_px" not in d
    assert len(r.to_dict(per_example=True)["log_px"]) == 40


def test_seeded_reproducible_leaves_global_rng_alone(model_and_data):
    model, x = model_and_data
    model.set_posterior(exact=True, var_scale=2.0)
    state = torch.get_rng_state()
    a = estimate_log_likelihood(model, x, num_samples=30, seed=3, progress=False)
    assert torch.equal(torch.get_rng_state(), state)
    b = estimate_log_likelihood(model, x, num_samples=30, seed=3, progress=False)
    c = estimate_log_likelihood(model, x, num_samples=30, seed=4, progress=False)
    assert torch.equal(a.log_px, b.log_px) and not torch.equal(a.log_px, c.log_px)


def test_dataset_and_iterable_inputs_match_tensor(model_and_data):
    model, x = model_and_data
    model.set_posterior(exact=True, var_scale=2.0)
    kw = {"num_samples": 20, "batch_size": 16, "seed": 1, "progress": False}
    ref = estimate_log_likelihood(model, x, **kw).log_px
    ds = TensorDataset(x, torch.zeros(40))
    assert torch.equal(estimate_log_likelihood(model, ds, **kw).log_px, ref)
    batches = [(x[i : i + 16],) for i in range(0, 40, 16)]
    assert torch.equal(estimate_log_likelihood(model, batches, **kw).log_px, ref)


def test_progress_bar_and_eval_mode_restored(model_and_data, capsys):
    model, x = model_and_data
    model.train()
    estimate_log_likelihood(model, x[:3], num_samples=4, progress=True)
    assert model.training
    assert "log p(x)" in capsys.readouterr().err


def test_bad_inputs_raise_named_errors(model_and_data):
    model, x = model_and_data
    with pytest.raises(ValueError, match="num_samples"):
        estimate_log_likelihood(model, x, num_samples=0)
    with pytest.raises(ValueError, match="chunk_size"):
        estimate_log_likelihood(model, x, chunk_size=0)
    with pytest.raises(TypeError, match="log_weights"):
        estimate_log_likelihood(torch.nn.Linear(2, 2), x)
    bad = x.clone()
    bad[3, 1] = math.nan
    with pytest.raises(ValueError, match=r"non-finite.*\[3\]"):
        estimate_log_likelihood(model, bad, progress=False)
    with pytest.raises(ValueError, match="empty"):
        estimate_log_likelihood(model, [], progress=False)
    with pytest.raises(TypeError, match="Dataset"):
        estimate_log_likelihood(model, 3.0, progress=False)


def test_integer_data_is_cast_to_the_model_dtype(model_and_data):
    model, x = model_and_data
    xi = x.round().to(torch.int64)
    a = estimate_log_likelihood(model, xi, num_samples=5, progress=False)
    b = estimate_log_likelihood(model, xi.double(), num_samples=5, progress=False)
    assert torch.equal(a.log_px, b.log_px)


def test_nan_log_weights_name_the_term():
    model = LinearGaussianVAE()
    x = model.sample_data(4)
    with torch.no_grad():
        model.W[0, 0] = math.nan
    with pytest.raises(FloatingPointError, match="log_px_z"):
        estimate_log_likelihood(model, x, num_samples=3, progress=False)


def test_k5000_on_the_packaged_linear_gaussian_vae():
    # The models package's ground-truth VAE (full-covariance affine posterior), q widened from
    # the exact posterior; tolerance from the estimator's own Monte Carlo error as above.
    from vaebench.models.linear_gaussian import LinearGaussianVAE as PackagedLG

    g = torch.Generator().manual_seed(0)
    W, b = torch.randn(8, 3, generator=g, dtype=torch.float64), torch.randn(8, generator=g, dtype=torch.float64)
    model = PackagedLG.from_params(W, b, 0.8, exact_posterior=False)
    x = (
        torch.randn(30, 3, generator=g, dtype=torch.float64) @ W.T
        + b
        + 0.8 * torch.randn(30, 8, generator=g, dtype=torch.float64)
    )
    with torch.no_grad():
        s2 = 0.64
        M = W.T @ W + s2 * torch.eye(3, dtype=torch.float64)
        A = torch.linalg.solve(M, W.T)
        model.posterior.set_(A, -A @ b, 1.5 * s2 * torch.linalg.inv(M))
    exact = model.log_marginal(x).detach()
    r = estimate_log_likelihood(model, x, num_samples=5000, chunk_size=500, progress=False)
    assert r.ess.max() < 4990
    assert ((r.log_px - exact).abs() <= 5 * r.mc_std + r.mc_std.square()).all()
    assert abs(r.mean_log_px - exact.mean().item()) <= 4 * r.mc_stderr + r.mc_std.square().mean().item()
    assert r.bits_per_dim is None  # a Gaussian density: no bits/dim


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_matches_the_exact_value_and_leaves_cuda_rng_alone():
    model = orthogonal_linear_gaussian(data_dim=10, latent_dim=3).cuda()
    x = model.sample_data(16)
    model.set_posterior(exact=True, var_scale=1.6)
    state = torch.cuda.get_rng_state()
    r = estimate_log_likelihood(model, x, num_samples=5000, chunk_size=500, progress=False)
    assert torch.equal(torch.cuda.get_rng_state(), state)
    exact = model.exact_log_px(x).detach().cpu()
    assert ((r.log_px - exact).abs() <= 5 * r.mc_std + r.mc_std.square()).all()
