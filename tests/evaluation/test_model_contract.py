import math
from types import SimpleNamespace

import pytest
import torch

from vaebench.evaluation.model_contract import (
    checked_log_weights,
    event_num_dims,
    require,
    terms_of,
)


class _Fixed(torch.nn.Module):
    def __init__(self, log_w, **terms):
        super().__init__()
        self.out = SimpleNamespace(log_w=log_w, **terms)

    def log_weights(self, x, num_samples):
        return self.out


def test_require_names_the_missing_methods():
    require(_Fixed(None), "log_weights", purpose="p")
    with pytest.raises(TypeError, match=r"active units needs .*posterior_mean.*_Fixed has no posterior_mean"):
        require(_Fixed(None), "log_weights", "posterior_mean", purpose="active units")


def test_log_weights_shape_and_values_are_checked():
    x = torch.zeros(3, 2)
    assert checked_log_weights(_Fixed(torch.zeros(4, 3)), x, 4).shape == (4, 3)
    neg_inf = torch.zeros(4, 3)
    neg_inf[0, 0] = -math.inf  # a zero weight is allowed
    assert torch.isneginf(checked_log_weights(_Fixed(neg_inf), x, 4)[0, 0])
    with pytest.raises(ValueError, match=r"must be \(K, B\) = \(4, 3\), got \(3, 4\)"):
        checked_log_weights(_Fixed(torch.zeros(3, 4)), x, 4)
    bad = torch.zeros(4, 3)
    bad[1, 2] = math.nan
    q = torch.zeros(4, 3)
    q[1, 2] = math.inf
    with pytest.raises(FloatingPointError, match=r"rows \[2\] \(non-finite in: log_q\)"):
        terms_of(_Fixed(bad, log_px_z=torch.zeros(4, 3), log_pz=torch.zeros(4, 3), log_q=q), x, 4)


def test_num_dims_for_bits_per_dim():
    class Discrete:
        discrete = True

        @staticmethod
        def num_dims(shape):
            return math.prod(shape)

    assert event_num_dims(SimpleNamespace(likelihood=Discrete(), event_shape=(3, 32, 32))) == 3072
    assert event_num_dims(SimpleNamespace(likelihood=SimpleNamespace(discrete=False), event_shape=(5,))) is None
    assert event_num_dims(SimpleNamespace(event_shape=(28, 28))) == 784
    assert event_num_dims(SimpleNamespace()) is None
