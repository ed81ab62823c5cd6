import math

import pytest

from vaebench.registry import UnknownNameError
from vaebench.trainer import (
    SCHEDULES,
    ConstantSchedule,
    IWAESchedule,
    kl_warmup_weight,
    lr_schedule,
)


def test_iwae_schedule_stages_and_values():
    s = lr_schedule("iwae")
    assert isinstance(s, IWAESchedule) and s.total_epochs == 3280
    # stage i spans 3^i epochs starting at (3^i - 1) / 2, at lr 1e-3 * 10^(-i/7)
    expected_stage = [0, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2, 2, 3]
    assert [s.stage(e) for e in range(14)] == expected_stage
    lengths = [sum(1 for e in range(3280) if s.stage(e) == i) for i in range(8)]
    assert lengths == [3**i for i in range(8)]
    for e, i in ((0, 0), (1, 1), (3, 1), (4, 2), (12, 2), (13, 3), (1093, 7), (3279, 7), (10**6, 7)):
        assert 1e-3 * s.factor(e) == pytest.approx(1e-3 * 10 ** (-i / 7), rel=1e-15)
    assert 1e-3 * s.factor(3279) == pytest.approx(1e-4)  # the last stage: 1e-3 * 10^-1
    assert IWAESchedule(stages=3).stage(100) == 2 and IWAESchedule(stages=3).total_epochs == 13
    with pytest.raises(ValueError, match="stages"):
        IWAESchedule(stages=0)
    with pytest.raises(ValueError, match="epoch"):
        s.stage(-1)


def test_registry_and_constant():
    assert set(SCHEDULES.names()) >= {"constant", "iwae"}
    assert (
        lr_schedule("constant").factor(123) == 1.0
        and lr_schedule(None).factor(5) == 1.0
        and ConstantSchedule().total_epochs is None
    )
    obj = IWAESchedule(4)
    assert lr_schedule(obj) is obj
    with pytest.raises(UnknownNameError, match="known: constant, iwae"):
        lr_schedule("iwea")


def test_kl_warmup_weight():
    assert [kl_warmup_weight(e, 4) for e in (0, 1, 2.5, 4, 9)] == [0.0, 0.25, 0.625, 1.0, 1.0]
    assert kl_warmup_weight(0, 0) == 1.0
    with pytest.raises(ValueError, match="kl_warmup_epochs"):
        kl_warmup_weight(1, -1)
    assert not math.isnan(kl_warmup_weight(0.5, 100))
