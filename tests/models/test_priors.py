"""The standard-normal prior."""

from __future__ import annotations

import pytest
import torch
from torch.distributions import Normal

from vaebench.models import StandardNormalPrior


def test_log_prob_matches_torch_and_checks_the_size():
    prior = StandardNormalPrior(3)
    z = torch.randn(4, 2, 3, dtype=torch.float64)
    torch.testing.assert_close(prior.log_prob(z), Normal(0.0, 1.0).log_prob(z).sum(-1))
    with pytest.raises(ValueError, match=r"z must be \(\.\.\., 3\), got \(4, 2\)"):
        prior.log_prob(torch.zeros(4, 2))
    with pytest.raises(ValueError, match="latent_dim must be >= 1"):
        StandardNormalPrior(0)
