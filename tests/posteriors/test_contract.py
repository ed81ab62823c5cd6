"""The contract every registered posterior family satisfies, parametrized by the registry:
a new family is tested here without writing a new test."""

from __future__ import annotations

import pytest
import torch
from torch.distributions import Independent, MultivariateNormal, Normal, kl_divergence

from vaebench.estimators import ESTIMATORS
from vaebench.posteriors import (
    POSTERIORS,
    NonFiniteError,
    Posterior,
    detect_nonfinite,
    standard_normal_log_prob,
)

from .helpers import assert_log_q_matches_autograd, perturbed

FAMILIES = POSTERIORS.names()
WITH_LOG_PROB = [n for n in FAMILIES if POSTERIORS.get(n).has_log_prob]
WITHOUT_LOG_PROB = [n for n in FAMILIES if not POSTERIORS.get(n).has_log_prob]

# Odd sizes, small enough that the whole contract runs in seconds.
H, B, K = 5, 7, 3


def build(name: str, latent_dim: int = 3, feature_dim: int = H) -> Posterior:
    """A family away from its init (see helpers.perturbed), so that flows are not the identity."""
    return perturbed(POSTERIORS.get(name)(feature_dim=feature_dim, latent_dim=latent_dim))


def test_registry_holds_every_family():
    expected = {
        "diagonal",
        "full_covariance",
        "planar",
        "radial",
        "householder",
        "sylvester_orthogonal",
        "sylvester_householder",
        "sylvester_triangular",
        "iaf",
    }
    assert expected <= set(FAMILIES)
    for entry in POSTERIORS:
        assert entry.description, f"{entry.name} has no description"


def _base_sample(posterior: Posterior, eps: torch.Tensor, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """z0 = mu + sigma eps and log q0(z0) of the family's base diagonal Gaussian at h."""
    if hasattr(posterior, "base"):  # the flows
        mu, logvar = posterior.base.params(h)
    elif hasattr(posterior, "off_diag"):  # full covariance: L = diag(exp(s)) + 0 at init
        mu, logvar = posterior.mean(h), 2.0 * posterior.log_diag(h)
    else:
        mu, logvar = posterior.params(h)
    return mu + (0.5 * logvar).exp() * eps, standard_normal_log_prob(eps) - 0.5 * logvar.sum(-1)


def _iaf_at_init(posterior, z0, log_q0, h):
    """z_T = c P z0 with c = sigmoid(forget_bias)^T and P the T - 1 order reversals."""
    t = posterior.num_flows
    log_c = t * torch.nn.functional.logsigmoid(torch.tensor(posterior.forget_bias, dtype=z0.dtype))
    z = log_c.exp() * (z0.flip(-1) if (t - 1) % 2 else z0)
    return z, log_q0 - posterior.latent_dim * log_c


def _householder_at_init(posterior, z0, log_q0, h):
    """Consecutive reflections cancel (every v_t equal): an odd count leaves one."""
    from vaebench.posteriors.householder import reflect

    return (reflect(z0, posterior.first(h)) if posterior.num_flows % 2 else z0), log_q0


# How each family's q at init relates to its base diagonal Gaussian, for the same noise; the
# identity unless listed. A new family must start at its base or be listed here with its map.
AT_INIT = {"iaf": _iaf_at_init, "householder": _householder_at_init}


@pytest.mark.parametrize(
    "name,kwargs",
    [(n, {}) for n in FAMILIES]
    + [
        ("householder", {"num_flows": 1}),
        ("householder", {"num_flows": 3}),
        ("iaf", {"num_flows": 1}),
        ("planar", {"num_flows": 16}),
        ("sylvester_orthogonal", {"num_ortho_vecs": 2}),
    ],
)
def test_every_family_starts_at_its_base(name, kwargs):
    """At init (the protocol's Glorot heads plus each family's start), every sample and its
    log q equal the base diagonal Gaussian's for the same noise, to 1e-10 in float64: flows
    at the identity, full covariance with zero off-diagonals, Sylvester with R1 = 0, IAF the
    base scaled by sigmoid(forget_bias)^T (still a diagonal Gaussian), Householder with an
    odd number of steps one reflection of it. A random init put q 14 to 80 nats of KL away
    (issue 10)."""
    torch.manual_seed(3)
    posterior = POSTERIORS.get(name)(feature_dim=11, latent_dim=6, **kwargs)
    h = torch.tanh(torch.randn(B, 11))  # encoder features come out of a tanh layer
    eps = torch.randn(K, B, 6)
    with torch.no_grad():
        z, log_q = posterior.sample_from_noise(eps, h)
        z0, log_q0 = _base_sample(posterior, eps, h)
        z_expected, log_q_expected = AT_INIT.get(name, lambda p, a, b, h: (a, b))(posterior, z0, log_q0, h)
    torch.testing.assert_close(z, z_expected, rtol=0, atol=1e-10)
    torch.testing.assert_close(log_q, log_q_expected, rtol=0, atol=1e-10)
    # The heads get the protocol's init: no layer keeps torch's default kaiming-uniform bias.
    for module_name, module in posterior.named_modules():
        if (
            isinstance(module, torch.nn.Linear)
            and module.bias is not None
            and not (
                name == "planar" and module_name in ("u", "w")  # their biases place the identity
            )
        ):
            assert module.bias.abs().max() == 0, f"{name}.{module_name} has a nonzero initial bias"


@pytest.mark.parametrize("name", FAMILIES)
def test_init_is_not_degenerate(name):
    """Starting at the base must not freeze a family: after one SGD step on a KL-like loss the
    flow parameters have moved, so q leaves its base (a test that the init is not a dead point)."""
    torch.manual_seed(4)
    posterior = POSTERIORS.get(name)(feature_dim=11, latent_dim=6)
    h = torch.tanh(torch.randn(B, 11))
    eps = torch.randn(K, B, 6)
    z, log_q = posterior.sample_from_noise(eps, h)
    # log q - log p(z) with a shifted prior: its gradient reaches every layer that shapes q.
    loss = (log_q - standard_normal_log_prob(z - 0.7)).mean()
    loss.backward()
    dead = [n for n, p in posterior.named_parameters() if p.grad is None or p.grad.abs().max() == 0]
    # R2's and the MADE's hidden layers sit behind a zero factor at init (R1 = 0, zero output
    # layer); they get gradients from the second step on.
    behind_zero = {"iaf": ("hidden_layers", "context"), "sylvester": ("diag2", "triangles", "bias", "q.")}
    allowed = next((v for k, v in behind_zero.items() if name.startswith(k)), ())
    dead = [n for n in dead if not any(part in n for part in allowed)]
    assert not dead, f"{name}: no gradient at init for {dead}"


@pytest.mark.parametrize("latent_dim", [1, 3])
@pytest.mark.parametrize("name", FAMILIES)
def test_shapes_and_finiteness(name, latent_dim):
    posterior = build(name, latent_dim)
    h = torch.randn(B, H)
    z, log_q = posterior.rsample_and_log_prob(h, K)
    assert z.shape == (K, B, latent_dim) and log_q.shape == (K, B)
    assert z.dtype == log_q.dtype == torch.float64
    assert torch.isfinite(z).all() and torch.isfinite(log_q).all()
    z1, log_q1 = posterior.rsample_and_log_prob(h)  # K defaults to 1
    assert z1.shape == (1, B, latent_dim) and log_q1.shape == (1, B)
    z2, log_q2 = posterior.sample_from_noise(torch.randn(K, B, latent_dim), h)
    assert z2.shape == (K, B, latent_dim) and log_q2.shape == (K, B)
    kl = posterior.kl_to_prior(h)
    assert kl is None or (kl.shape == (B,) and torch.isfinite(kl).all())


@pytest.mark.parametrize("name", FAMILIES)
def test_float32_agrees_with_float64(name):
    posterior = build(name)
    h, eps = torch.randn(B, H), torch.randn(K, B, 3)
    z64, log_q64 = posterior.sample_from_noise(eps, h)
    posterior = posterior.float()
    z32, log_q32 = posterior.sample_from_noise(eps.float(), h.float())
    assert z32.dtype == log_q32.dtype == torch.float32
    torch.testing.assert_close(z32, z64.float(), rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(log_q32, log_q64.float(), rtol=1e-4, atol=1e-4)
    z, log_q = posterior.rsample_and_log_prob(h.float(), K)
    assert z.dtype == torch.float32 and torch.isfinite(log_q).all()


@pytest.mark.parametrize("name", FAMILIES)
def test_gradients_reach_every_parameter_and_h(name):
    posterior = build(name)
    h = torch.randn(B, H, requires_grad=True)
    z, log_q = posterior.rsample_and_log_prob(h, K)
    # Random weights so that no gradient cancels by symmetry.
    loss = (z * torch.randn_like(z)).sum() + (log_q * torch.randn_like(log_q)).sum()
    kl = posterior.kl_to_prior(h)
    if kl is not None:
        loss = loss + kl.sum()
    loss.backward()
    for pname, p in posterior.named_parameters():
        assert p.grad is not None, f"{name}: no gradient reaches {pname}"
        assert p.grad.abs().sum() > 0, f"{name}: the gradient of {pname} is zero"
        assert torch.isfinite(p.grad).all(), f"{name}: non-finite gradient in {pname}"
    assert h.grad is not None and h.grad.abs().sum() > 0


@pytest.mark.parametrize("latent_dim", [1, 3])
@pytest.mark.parametrize("name", FAMILIES)
def test_log_q_is_base_density_minus_autograd_log_det(name, latent_dim):
    """log q(z) = log N(eps; 0, I) - log|det dz/deps|, with autograd's Jacobian as the truth."""
    assert_log_q_matches_autograd(build(name, latent_dim))


@pytest.mark.parametrize("name", FAMILIES)
def test_rsample_draws_the_distribution_of_sample_from_noise(name):
    """rsample may use a fused kernel with its own noise; it must draw the same distribution.

    Compares the means of z and of log q over 4000 draws within 5 standard errors.
    """
    posterior = build(name)
    h = torch.randn(2, H)
    n = 4000
    with torch.no_grad():
        z_a, log_q_a = posterior.rsample_and_log_prob(h, n)
        z_b, log_q_b = posterior.sample_from_noise(torch.randn(n, 2, 3), h)
    for a, b in ((z_a, z_b), (log_q_a, log_q_b)):
        se = ((a.var(0) + b.var(0)) / n).sqrt()
        assert ((a.mean(0) - b.mean(0)).abs() < 5 * se).all(), name


@pytest.mark.parametrize("name", WITH_LOG_PROB)
def test_log_prob_agrees_with_the_sampled_log_q(name):
    posterior = build(name)
    h = torch.randn(B, H)
    z, log_q = posterior.rsample_and_log_prob(h, K)
    torch.testing.assert_close(posterior.log_prob(z, h), log_q, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("name", WITHOUT_LOG_PROB)
def test_families_without_log_prob_say_so(name):
    posterior = build(name)
    h = torch.randn(B, H)
    z, _ = posterior.rsample_and_log_prob(h, K)
    with pytest.raises(NotImplementedError) as info:
        posterior.log_prob(z, h)
    advice = str(info.value).partition("supports (")[2].partition(")")[0]
    suggested = {name.strip("'") for name in advice.split(", ")}
    # The advice is computed from the registries: every suggestion works with this family...
    assert suggested == set(type(posterior).supported_estimators()) and suggested
    for estimator in suggested:
        assert not ESTIMATORS.get(estimator).needs_log_prob
        assert type(posterior).has_analytic_kl() or not ESTIMATORS.get(estimator).needs_analytic_kl
    # ...and none of the planar/radial/Sylvester/IAF families is sent to 'elbo' (no analytic KL).
    assert type(posterior).has_analytic_kl() or "elbo" not in suggested
    with pytest.raises(ValueError, match="has none"):
        posterior.log_prob_stopped(z, h)
    with pytest.raises(ValueError, match="path_gradient=True"):
        posterior.rsample_and_log_prob(h, K, path_gradient=True)


@pytest.mark.parametrize("name", WITH_LOG_PROB)
def test_log_prob_stopped_reaches_z_only(name):
    posterior = build(name)
    h = torch.randn(B, H, requires_grad=True)
    z = torch.randn(K, B, 3, requires_grad=True)
    stopped = posterior.log_prob_stopped(z, h)
    full = posterior.log_prob(z, h)
    torch.testing.assert_close(stopped, full)
    weights = torch.randn_like(stopped)
    (grad_z_stopped,) = torch.autograd.grad((stopped * weights).sum(), z)
    assert all(p.grad is None for p in posterior.parameters()) and h.grad is None
    (grad_z_full,) = torch.autograd.grad((full * weights).sum(), z)
    torch.testing.assert_close(grad_z_stopped, grad_z_full)
    # With z itself constant, nothing in the stopped log q needs a gradient.
    assert not posterior.log_prob_stopped(z.detach(), h).requires_grad


@pytest.mark.parametrize("name", WITH_LOG_PROB)
def test_path_gradient_is_log_prob_stopped_at_the_sample(name):
    """rsample(path_gradient=True) gives the same value as the ordinary log q and the gradient
    of log_prob_stopped(z(phi)) (the STL gradient): the diagonal's fused-op path included."""
    posterior = build(name)
    h = torch.randn(B, H)
    torch.manual_seed(1)
    z, log_q = posterior.rsample_and_log_prob(h, K, path_gradient=True)
    torch.manual_seed(1)
    z_ref, log_q_plain = posterior.rsample_and_log_prob(h, K)
    torch.testing.assert_close(z, z_ref)
    torch.testing.assert_close(log_q, log_q_plain)
    params = list(posterior.parameters())
    weights = torch.randn_like(log_q)
    grads = torch.autograd.grad((log_q * weights).sum(), params, allow_unused=True)
    reference = posterior.log_prob_stopped(z_ref, h)
    grads_ref = torch.autograd.grad((reference * weights).sum(), params, allow_unused=True)
    assert any(g is not None for g in grads)
    for g, g_ref in zip(grads, grads_ref, strict=True):
        assert (g is None) == (g_ref is None)
        if g is not None:
            torch.testing.assert_close(g, g_ref)


@pytest.mark.parametrize("name", WITH_LOG_PROB)
def test_path_gradient_through_z_says_whether_a_hook_on_z_sees_it(name):
    """DReG's one-pass form scales dL/dz with a hook; that is only right where log q's path
    derivative flows through the returned z. A hook zeroing dL/dz must then kill the whole
    path gradient of log q; where the family says it does not flow through z, it must not."""
    posterior = build(name)
    h = torch.randn(B, H)
    z, log_q = posterior.rsample_and_log_prob(h, K, path_gradient=True)
    z.register_hook(lambda g: None if g is None else torch.zeros_like(g))
    grads = torch.autograd.grad(log_q.sum(), list(posterior.parameters()), allow_unused=True)
    reached = any(g is not None and bool(g.abs().sum() > 0) for g in grads)
    assert reached is not posterior.path_gradient_through_z(z)


@pytest.mark.parametrize("name", [n for n in FAMILIES if build(n).kl_to_prior(torch.zeros(1, H)) is not None])
def test_kl_to_prior_matches_monte_carlo(name):
    posterior = build(name)
    h = torch.randn(3, H)
    n = 4000
    with torch.no_grad():
        z, log_q = posterior.rsample_and_log_prob(h, n)
        terms = log_q - standard_normal_log_prob(z)
        kl = posterior.kl_to_prior(h)
    se = terms.std(0) / n**0.5
    assert ((terms.mean(0) - kl).abs() < 5 * se).all(), (terms.mean(0), kl, se)


@pytest.mark.parametrize(
    "name",
    [n for n in FAMILIES if build(n).to_distribution(torch.zeros(1, H)) is not None],
)
def test_equals_its_torch_distribution(name):
    """Families with a torch.distributions equivalent: log_prob, the sampled log q and the KL
    agree with torch's (Normal for `diagonal`, MultivariateNormal for `full_covariance`)."""
    posterior = build(name)
    h = torch.randn(B, H)
    dist = posterior.to_distribution(h)
    assert dist.batch_shape == (B,) and dist.event_shape == (3,)
    z, log_q = posterior.rsample_and_log_prob(h, K)
    torch.testing.assert_close(dist.log_prob(z), log_q)
    torch.testing.assert_close(dist.log_prob(z), posterior.log_prob(z, h))
    if isinstance(dist, MultivariateNormal):
        prior = MultivariateNormal(torch.zeros(B, 3), scale_tril=torch.eye(3).expand(B, 3, 3))
    else:
        prior = Independent(Normal(torch.zeros(B, 3), torch.ones(B, 3)), 1)
    torch.testing.assert_close(posterior.kl_to_prior(h), kl_divergence(dist, prior))


@pytest.mark.parametrize("name", FAMILIES)
def test_samples_and_kl_in_one_call_are_the_two_calls(name):
    # rsample_log_prob_and_kl may share work (the diagonal Gaussian's mu and logvar), never values:
    # the same draws (same seed), log q, KL and gradients as rsample_and_log_prob + kl_to_prior.
    posterior = build(name)
    h = torch.randn(B, H, dtype=torch.float64, requires_grad=True)
    out, grads = {}, {}
    for joint in (True, False):
        torch.manual_seed(11)
        if joint:
            z, log_q, kl = posterior.rsample_log_prob_and_kl(h, K)
        else:
            (z, log_q), kl = posterior.rsample_and_log_prob(h, K), posterior.kl_to_prior(h)
        out[joint] = (z, log_q, kl)
        loss = z.square().sum() + log_q.sum() + (0 if kl is None else kl.sum())
        grads[joint] = torch.autograd.grad(loss, [h, *posterior.parameters()], allow_unused=True)
    assert (out[True][2] is None) == (out[False][2] is None) == (not posterior.has_analytic_kl())
    for a, b in zip(out[True], out[False], strict=True):
        if a is not None:
            torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
    for a, b in zip(grads[True], grads[False], strict=True):
        assert (a is None) == (b is None)
        if a is not None:
            torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name", FAMILIES)
def test_bad_input_is_rejected_with_a_message_naming_it(name):
    posterior = build(name)
    h = torch.randn(B, H)
    with pytest.raises(ValueError, match=r"h must be \(B, H=5\), got \(7, 4\)"):
        posterior.rsample_and_log_prob(h[:, :4], K)
    with pytest.raises(ValueError, match=r"h must be \(B, H=5\)"):
        posterior.rsample_and_log_prob(h[0], K)
    with pytest.raises(ValueError, match="holds NaN or inf"):
        posterior.rsample_and_log_prob(torch.full((B, H), float("nan")), K)
    with pytest.raises(ValueError, match="holds NaN or inf"):
        posterior.rsample_log_prob_and_kl(h.index_fill(1, torch.tensor([2]), float("-inf")), K)
    with pytest.raises(TypeError, match="h is torch.float32"):
        posterior.rsample_and_log_prob(h.float(), K)
    for bad_k in (0, -1, 2.0, True):
        with pytest.raises(ValueError, match="num_samples"):
            posterior.rsample_and_log_prob(h, bad_k)
    with pytest.raises(ValueError, match=r"eps must be \(K, B=7, D=3\)"):
        posterior.sample_from_noise(torch.randn(K, B, 4), h)
    if posterior.has_log_prob:
        with pytest.raises(ValueError, match=r"z must be \(K, B=7, D=3\)"):
            posterior.log_prob(torch.randn(B, 3), h)
    with pytest.raises(ValueError, match="latent_dim"):
        POSTERIORS.get(name)(feature_dim=H, latent_dim=0)


@pytest.mark.parametrize("name", FAMILIES)
def test_detect_nonfinite_names_the_family(name):
    posterior = build(name)
    with torch.no_grad():
        for p in posterior.parameters():
            p.fill_(float("nan"))
    h = torch.randn(B, H)
    _, log_q = posterior.rsample_and_log_prob(h, K)  # no detection: NaNs flow through
    assert not torch.isfinite(log_q).all()
    with detect_nonfinite(), pytest.raises(NonFiniteError) as info:
        posterior.rsample_and_log_prob(h, K)
    assert info.value.family == name
    assert str(info.value).startswith(f"{name}: ")


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("name", FAMILIES)
def test_cuda_matches_cpu(name):
    """The same parameters and noise give the same z and log q on CUDA as on CPU."""
    posterior = build(name)
    h = torch.randn(B, H)
    eps = torch.randn(K, B, 3)
    z_cpu, log_q_cpu = posterior.sample_from_noise(eps, h)
    posterior = posterior.to("cuda")
    z, log_q = posterior.sample_from_noise(eps.cuda(), h.cuda())
    torch.testing.assert_close(z.cpu(), z_cpu)
    torch.testing.assert_close(log_q.cpu(), log_q_cpu)
    z, log_q = posterior.rsample_and_log_prob(h.cuda(), K)
    assert z.device.type == "cuda" and torch.isfinite(log_q).all()
    if posterior.has_log_prob:
        torch.testing.assert_close(posterior.log_prob(z, h.cuda()), log_q)
