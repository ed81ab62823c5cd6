"""Named architectures and build_model: the IWAE protocol's sizes, every registry entry, errors."""

from __future__ import annotations

import pytest
import torch

from vaebench.models import MODELS, build_model
from vaebench.registry import UnknownNameError


def test_registry_names():
    assert MODELS.names() == ["conv32", "linear_gaussian", "mlp_burda", "mlp_burda_2layer", "resnet28"]


def test_mlp_burda_has_the_protocol_sizes_and_init():
    model = build_model("mlp_burda", event_shape=(784,))
    # q: 784-200-200 then 200 -> 50 mean and 50 log-variance; p: 50-200-200-784.
    sizes = [tuple(p.shape) for p in model.parameters() if p.dim() == 2]
    assert sizes == [(200, 784), (200, 200), (50, 200), (50, 200), (200, 50), (200, 200), (784, 200)]
    for m in list(model.encoder.modules()) + list(model.decoder.modules()):
        if isinstance(m, torch.nn.Linear):
            assert m.bias.abs().max() == 0  # zero biases (Glorot-uniform weights)
            bound = (6 / (m.in_features + m.out_features)) ** 0.5
            assert m.weight.abs().max() <= bound


def test_mlp_burda_2layer_has_the_protocol_sizes():
    model = build_model("mlp_burda_2layer", event_shape=(784,))
    n = sum(p.numel() for p in model.parameters())
    # q: 784-200-200-(100,100) ; 100-100-100-(50,50) ; p: 50-100-100-(100,100) ; 100-200-200-784
    expected = (784 * 200 + 200) + (200 * 200 + 200) + 2 * (200 * 100 + 100)
    expected += (100 * 100 + 100) * 2 + 2 * (100 * 50 + 50)
    expected += (50 * 100 + 100) + (100 * 100 + 100) + (100 * 200 + 200)
    expected += (100 * 200 + 200) + (200 * 200 + 200) + (200 * 784 + 784)
    assert n == expected


@pytest.mark.parametrize(
    ("cfg", "likelihood", "event_shape"),
    [
        ({"name": "mlp_burda", "latent_dim": 4, "hidden": (16,)}, "bernoulli", (1, 28, 28)),
        ({"name": "mlp_burda_2layer", "latent_dims": (6, 3), "hidden": (16,), "hidden2": (8,)}, "bernoulli", (784,)),
        ({"name": "conv32", "latent_dim": 4}, "discretized_logistic", (3, 32, 32)),
        ({"name": "conv32", "latent_dim": 4}, "bernoulli", (1, 28, 28)),
        (
            {"name": "resnet28", "latent_dim": 4, "channels": (4, 8), "blocks": 1, "feature_dim": 16},
            "bernoulli",
            (1, 28, 28),
        ),
        ({"name": "mlp_burda", "latent_dim": 4, "hidden": (16,)}, "categorical256", (28, 20)),
        ({"name": "mlp_burda", "latent_dim": 4, "hidden": (16,)}, "gaussian", (10,)),
    ],
)
def test_every_architecture_gives_finite_log_weights(cfg, likelihood, event_shape):
    torch.manual_seed(0)
    x = torch.randint(0, 256, (3, *event_shape)).float() / 255
    if likelihood == "bernoulli":
        x = (x > 0.5).float()
    model = build_model(
        cfg, event_shape=event_shape, likelihood=likelihood, data_mean=x.mean(0) if likelihood == "bernoulli" else None
    )
    lw = model.log_weights(x, 2)
    assert lw.log_w.shape == (2, 3) and torch.isfinite(lw.log_w).all()
    lw.log_w.mean().backward()
    assert model.sample(2).shape == (2, *event_shape)


def test_conv_output_bias_is_per_channel():
    mean = torch.full((1, 28, 28), 0.25)
    model = build_model({"name": "conv32", "latent_dim": 4}, event_shape=(1, 28, 28), data_mean=mean)
    torch.testing.assert_close(model.decoder.output_layer.bias, torch.log(torch.tensor([0.25 / 0.75])))


def test_errors_name_the_problem():
    with pytest.raises(UnknownNameError, match="unknown model 'mlp_bruda'.*Did you mean 'mlp_burda'"):
        build_model("mlp_bruda", event_shape=(784,))
    with pytest.raises(
        ValueError, match="model 'mlp_burda': unknown option 'latnt_dim'; known options: activation, hidden, latent_dim"
    ):
        build_model({"name": "mlp_burda", "latnt_dim": 3}, event_shape=(784,))
    with pytest.raises(ValueError, match="posterior 'diagonal': unknown option 'foo'"):
        build_model("mlp_burda", event_shape=(784,), posterior_kwargs={"foo": 1})
    with pytest.raises(UnknownNameError, match="unknown likelihood 'bern'"):
        build_model("mlp_burda", event_shape=(784,), likelihood="bern")
    with pytest.raises(ValueError, match=r"event_shape must be \(C, H, W\) with H, W <= 32"):
        build_model("conv32", event_shape=(3, 64, 64))
    with pytest.raises(ValueError, match=r"event_shape must be \(C, 28, 28\)"):
        build_model("resnet28", event_shape=(3, 32, 32))
    with pytest.raises(ValueError, match="needs a 'name' key"):
        build_model({"latent_dim": 3}, event_shape=(784,))
    with pytest.raises(ValueError, match="unknown activation 'tan'"):
        build_model({"name": "mlp_burda", "activation": "tan"}, event_shape=(784,))
