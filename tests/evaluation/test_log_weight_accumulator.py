import math

import pytest
import torch

from vaebench.evaluation import LogWeightAccumulator
from vaebench.ops import importance_weights_reference, log_mean_exp_reference


def _fold(log_w, sizes):
    acc = LogWeightAccumulator()
    start = 0
    for k in sizes:
        acc.update(log_w[start : start + k])
        start += k
    assert start == log_w.shape[0]
    return acc


@pytest.mark.parametrize("sizes", [[333], [1] * 7, [100, 1, 232], [7, 326]])
def test_chunked_equals_one_shot(sizes):
    g = torch.Generator().manual_seed(0)
    log_w = 30 * torch.randn(sum(sizes), 5, generator=g, dtype=torch.float64) - 500.0
    acc = _fold(log_w, sizes)
    torch.testing.assert_close(acc.log_mean_exp(), log_mean_exp_reference(log_w, 0), rtol=0, atol=1e-12)
    torch.testing.assert_close(acc.ess(), importance_weights_reference(log_w, 0)[1], rtol=1e-10, atol=0)
    assert acc.count == sum(sizes)


def test_extreme_and_minus_inf_columns():
    log_w = torch.tensor(
        [[-math.inf, 1e4, -1e4], [-math.inf, 1e4, -math.inf], [-math.inf, 1e4 - 1, -1e4]], dtype=torch.float64
    )
    acc = _fold(log_w, [1, 2])
    out = acc.log_mean_exp()
    assert torch.isneginf(out[0])
    torch.testing.assert_close(out[1:], log_mean_exp_reference(log_w[:, 1:], 0))
    ess = acc.ess()
    assert ess[0] == 0 and torch.isinf(acc.mc_std()[0])
    torch.testing.assert_close(ess[2], torch.tensor(2.0, dtype=torch.float64))


def test_mc_std_zero_for_equal_weights_and_matches_sample_formula():
    acc = _fold(torch.full((50, 2), -3.0, dtype=torch.float64), [20, 30])
    torch.testing.assert_close(acc.mc_std(), torch.zeros(2, dtype=torch.float64), atol=1e-7, rtol=0)
    # delta method: Var log mean w ~ var(w) / (K mean(w)^2) with var the population variance
    log_w = torch.randn(400, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    w = log_w.exp()
    expect = (w.var(0, unbiased=False) / (400 * w.mean(0).square())).sqrt()
    torch.testing.assert_close(_fold(log_w, [400]).mc_std(), expect)


def test_bad_input_raises_naming_the_argument():
    acc = LogWeightAccumulator()
    with pytest.raises(RuntimeError, match="update"):
        acc.log_mean_exp()
    with pytest.raises(ValueError, match=r"log_w must be \(k, B\)"):
        acc.update(torch.zeros(3))
    acc.update(torch.zeros(2, 4))
    with pytest.raises(ValueError, match="B = 4"):
        acc.update(torch.zeros(2, 5))
