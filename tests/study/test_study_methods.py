"""Class-wise (label-aware) smoothing and scheduled smoothing: values, losses against a per-row loop, errors."""

from __future__ import annotations

import json
import math

import pytest
import torch

import labelsmooth as ls
from labelsmooth.study.objectives import (
    ScheduledSmoothingLoss,
    SmoothingSchedule,
    classwise_loss,
    scheduled_loss,
)
from reference import cross_entropy_loop


def test_classwise_smoothing_is_linear_in_log_count():
    counts = torch.tensor([400, 20, 100, 4])
    a = ls.classwise_smoothing(counts, 0.05, 0.25)
    logn = [math.log(c) for c in counts.tolist()]
    want = [0.05 + 0.2 * (v - min(logn)) / (max(logn) - min(logn)) for v in logn]
    assert a.tolist() == pytest.approx(want, abs=1e-7)
    lin = ls.classwise_smoothing([400, 20, 100, 4], 0.05, 0.25, scale="linear")
    assert lin.tolist() == pytest.approx([0.05 + 0.2 * (c - 4) / 396 for c in (400, 20, 100, 4)], abs=1e-7)
    assert ls.classwise_smoothing([5, 5, 5], 0.0, 0.2).tolist() == pytest.approx([0.1] * 3)
    assert ls.classwise_smoothing([1, 10], 0.3, 0.1).tolist() == pytest.approx([0.3, 0.1])
    assert a.dtype == torch.get_default_dtype()


def test_classwise_smoothing_errors():
    with pytest.raises(ValueError, match=">= 1 for every class"):
        ls.classwise_smoothing([3, 0, 2], 0.0, 0.1)
    with pytest.raises(TypeError, match="integer counts"):
        ls.classwise_smoothing(torch.tensor([3.0, 2.0]), 0.0, 0.1)
    with pytest.raises(ValueError, match="K >= 2"):
        ls.classwise_smoothing([3], 0.0, 0.1)
    with pytest.raises(ValueError, match=r"`label_smoothing_high` in \[0, 1\]"):
        ls.classwise_smoothing([3, 4], 0.0, 1.5)
    with pytest.raises(ValueError, match=r"`label_smoothing_low` in \[0, 1\]"):
        ls.classwise_smoothing([3, 4], -0.1, 0.5)
    with pytest.raises(ValueError, match="scale"):
        ls.classwise_smoothing([3, 4], 0.0, 0.5, scale="sqrt")


def test_classwise_loss_equals_per_row_smoothing():
    y_train = torch.tensor([0] * 50 + [1] * 10 + [2] * 2)
    a = ls.classwise_smoothing(torch.bincount(y_train), 0.0, 0.3)
    g = torch.Generator().manual_seed(0)
    z = torch.randn(9, 3, generator=g, dtype=torch.float64)
    y = torch.tensor([0, 1, 2, 0, 1, 2, 2, 1, 0])
    got = classwise_loss(y_train, 3, 0.0, 0.3)(z, y)
    want = cross_entropy_loop(z, y, a.double()[y])
    assert float(got) == pytest.approx(float(want), rel=1e-12)


def test_classwise_loss_with_an_absent_class():
    loss = classwise_loss(torch.tensor([0, 0, 1]), 3, 0.0, 0.2)  # class 2 never seen: count raised to 1
    assert torch.isfinite(loss(torch.randn(4, 3), torch.tensor([0, 1, 2, 2])))


def test_schedule_values_and_storage():
    s = SmoothingSchedule(final=-0.05, warmup_epochs=10, ramp_epochs=5)
    assert [s.value(e) for e in (1, 10)] == [0.0, 0.0]
    assert (
        s.value(11) == pytest.approx(-0.01) and s.value(15) == pytest.approx(-0.05) and s.value(99) == -0.05
    )
    assert SmoothingSchedule(final=0.2, warmup_epochs=3).value(4) == 0.2
    d = json.loads(json.dumps(s.to_dict()))
    assert SmoothingSchedule.from_dict(d) == s and hash(s) == hash(SmoothingSchedule(**d))
    with pytest.raises(ValueError, match="keys final"):
        SmoothingSchedule.from_dict({"final": 0.1, "warmup": 2})


def test_scheduled_loss_follows_the_epoch():
    loss = scheduled_loss({"final": -0.1, "warmup_epochs": 1, "ramp_epochs": 2})
    z = torch.randn(6, 4, dtype=torch.float64)
    y = torch.tensor([0, 1, 2, 3, 0, 1])
    assert float(loss(z, y)) == pytest.approx(float(ls.cross_entropy(z, y)))
    loss.set_epoch(2)
    want = ls.cross_entropy(z, y, label_smoothing=-0.05, allow_negative=True)
    assert float(loss(z, y)) == pytest.approx(float(want))
    assert isinstance(loss, ScheduledSmoothingLoss) and loss.label_smoothing == pytest.approx(-0.05)


def test_schedule_errors():
    with pytest.raises(ValueError, match="final"):
        SmoothingSchedule(final=1.5)
    with pytest.raises(TypeError, match="final"):
        SmoothingSchedule(final="0.1")
    with pytest.raises(ValueError, match="finite"):
        SmoothingSchedule(final=-math.inf)
    with pytest.raises(ValueError, match="`warmup_epochs` >= 0"):
        SmoothingSchedule(final=-0.1, warmup_epochs=-1)
    with pytest.raises(TypeError, match="`ramp_epochs` to be an int"):
        SmoothingSchedule(final=-0.1, ramp_epochs=2.5)
    with pytest.raises(TypeError, match="SmoothingSchedule"):
        ScheduledSmoothingLoss({"final": 0.1})
    loss = ScheduledSmoothingLoss(SmoothingSchedule(final=-0.1))
    with pytest.raises(ValueError, match="numbered from 1"):
        loss.set_epoch(0)
    with pytest.raises(TypeError, match="`epoch` to be an int"):
        loss.set_epoch(1.0)
