"""MADE: the autoregressive property, with and without context."""

from __future__ import annotations

import pytest
import torch

from vaebench.posteriors import MADE, MaskedLinear


@pytest.mark.parametrize("features, hidden, layers", [(1, 3, 1), (4, 9, 1), (5, 11, 3)])
def test_output_i_depends_exactly_on_inputs_before_i(features, hidden, layers):
    made = MADE(features, hidden, num_hidden_layers=layers, context_features=2, num_outputs=2)
    x = torch.randn(features)
    context = torch.randn(2)
    jac = torch.autograd.functional.jacobian(lambda v: made(v, context), x)  # (2, D, D)
    strictly_lower = torch.ones(features, features).tril(-1).bool()
    assert jac[:, ~strictly_lower].abs().max() == 0
    # With hidden >= D every allowed connection exists (no dead degree).
    assert (jac[:, strictly_lower].abs() > 0).all()


def test_context_reaches_every_output_including_the_first():
    made = MADE(3, 6, context_features=4)
    x = torch.randn(3)
    jac = torch.autograd.functional.jacobian(lambda c: made(x, c), torch.randn(4))  # (2, 3, 4)
    assert (jac.abs().sum(-1) > 0).all()


def test_broadcasts_context_over_samples():
    made = MADE(3, 6, context_features=4)
    x, context = torch.randn(5, 2, 3), torch.randn(2, 4)
    out = made(x, context)
    assert out.shape == (5, 2, 2, 3)
    torch.testing.assert_close(out[1, 0], made(x[1, 0], context[0]))


def test_errors_name_the_argument():
    with pytest.raises(ValueError, match="hidden must be an int >= 1, got 0"):
        MADE(3, 0)
    with pytest.raises(ValueError, match=r"mask must be \(out, in\) = \(2, 3\)"):
        MaskedLinear(3, 2, torch.ones(3, 2))
    with pytest.raises(ValueError, match="context is required"):
        MADE(3, 4, context_features=2)(torch.randn(3))
