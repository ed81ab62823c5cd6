import math

import pytest
import torch

from vaebench.evaluation import bits_per_dim, evaluate_bounds

from .eval_toy_models import orthogonal_linear_gaussian


def test_bits_per_dim_formula():
    assert bits_per_dim(784 * math.log(2), 784) == pytest.approx(1.0)
    torch.testing.assert_close(bits_per_dim(torch.tensor([3072.0 * math.log(2) * 3.1]), 3072), torch.tensor([3.1]))
    with pytest.raises(ValueError, match="num_dims"):
        bits_per_dim(1.0, 0)


def test_exact_posterior_bounds_equal_log_px_without_analytic_kl():
    # q = p(z|x) makes every log w equal log p(x): the MC ELBO and IWAE are exact.
    model = orthogonal_linear_gaussian(8, 3, analytic_kl=False)
    x = model.sample_data(25)
    model.set_posterior(exact=True)
    r = evaluate_bounds(model, x, num_samples=4, batch_size=10)
    exact = model.exact_log_px(x).detach()
    torch.testing.assert_close(r.elbo, exact, atol=1e-10, rtol=0)
    torch.testing.assert_close(r.iwae, exact, atol=1e-10, rtol=0)
    torch.testing.assert_close(r.reconstruction - r.kl, r.elbo)
    assert not r.kl_analytic


def test_elbo_gap_equals_kl_to_true_posterior():
    # log p(x) - ELBO = KL(q || p(z|x)) in closed form; the reconstruction term is MC with K draws.
    model = orthogonal_linear_gaussian(8, 3)
    x = model.sample_data(20)
    model.set_posterior(exact=True, var_scale=2.0)
    k = 2000
    r = evaluate_bounds(model, x, num_samples=k)
    assert r.kl_analytic
    expect = (model.exact_log_px(x) - model.kl_to_true_posterior(x)).detach()
    torch.testing.assert_close(r.kl, model.kl(x).detach())
    # sd of a K-sample mean of log p(x|z): measured from an independent draw
    sd = model.log_weights(x, k).log_px_z.detach().std(0) / math.sqrt(k)
    assert ((r.elbo - expect).abs() <= 5 * sd).all(), ((r.elbo - expect).abs() / sd).max()
    assert (r.iwae >= r.elbo - 5 * sd).all()  # IWAE_K is the tighter bound
    d = r.to_dict()
    assert d["elbo"] == pytest.approx(r.elbo.mean().item()) and "iwae_2000" in d
    assert d["elbo_bits_per_dim"] == pytest.approx(-d["elbo"] / (8 * math.log(2)))


def test_bad_inputs():
    model = orthogonal_linear_gaussian(8, 3)
    with pytest.raises(ValueError, match="num_samples"):
        evaluate_bounds(model, model.sample_data(2), num_samples=0)
    with pytest.raises(ValueError, match="empty"):
        evaluate_bounds(model, [])
