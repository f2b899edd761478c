"""Mode arguments are typed ``Literal[...]`` and their runtime check accepts exactly the typed values."""

import typing

import pytest
import torch

import labelsmooth as ls
from labelsmooth import _validation, privacy, targets
from labelsmooth.distributed import vocab_parallel_cross_entropy, vocab_parallel_linear_cross_entropy
from labelsmooth.integrations import transformers as hf
from labelsmooth.losses import gan

REDUCTION = [
    ls.cross_entropy,
    ls.CrossEntropyLoss.__init__,
    ls.fused_cross_entropy,
    ls.linear_cross_entropy,
    ls.binary_cross_entropy_with_logits,
    ls.BCEWithLogitsLoss.__init__,
    ls.confidence_penalty,
    ls.ConfidencePenaltyLoss.__init__,
    ls.focal_loss,
    ls.FocalLoss.__init__,
    ls.distillation_loss,
    ls.teacher_free_loss,
    ls.label_relaxation_loss,
    ls.forward_corrected_loss,
    ls.OnlineLabelSmoothing.__init__,
    ls.preference_loss,
    ls.hl_gauss_loss,
    ls.two_hot_loss,
    vocab_parallel_cross_entropy,
    vocab_parallel_linear_cross_entropy,
]

# (function, parameter, the values its runtime check accepts)
MODES = [(f, "reduction", _validation.REDUCTIONS) for f in REDUCTION] + [
    (ls.cross_entropy, "weight_mode", _validation.WEIGHT_MODES),
    (ls.CrossEntropyLoss.__init__, "weight_mode", _validation.WEIGHT_MODES),
    (vocab_parallel_cross_entropy, "weight_mode", _validation.WEIGHT_MODES),
    (vocab_parallel_linear_cross_entropy, "weight_mode", _validation.WEIGHT_MODES),
    (ls.fused_cross_entropy, "backend", _validation.BACKENDS),
    (ls.linear_cross_entropy, "backend", _validation.BACKENDS),
    (hf.apply, "backend", _validation.BACKENDS),
    (ls.discriminator_loss, "reduction", gan.GAN_REDUCTIONS),
    (ls.generator_loss, "reduction", gan.GAN_REDUCTIONS),
    (ls.convert_smoothing, "from_convention", targets.CONVENTIONS),
    (ls.convert_smoothing, "to_convention", targets.CONVENTIONS),
    (ls.classwise_smoothing, "scale", targets.SCALES),
    (privacy.membership_scores, "kind", privacy.MEMBERSHIP_SCORES),
]


def _name(f):
    return getattr(f, "__qualname__", repr(f))


@pytest.mark.parametrize(("func", "param", "values"), MODES, ids=[f"{_name(f)}-{p}" for f, p, _ in MODES])
def test_mode_hint_is_the_literal_of_its_checked_values(func, param, values):
    hint = typing.get_type_hints(func)[param]
    assert typing.get_origin(hint) is typing.Literal
    assert typing.get_args(hint) == tuple(values)


def test_the_value_tuples_are_the_literals():
    assert _validation.REDUCTIONS == ("mean", "sum", "none")
    assert _validation.BACKENDS == ("auto", "torch", "triton")
    assert _validation.WEIGHT_MODES == ("torch", "row")
    assert typing.get_args(privacy.ScoreKind) == privacy.MEMBERSHIP_SCORES


def test_a_value_outside_the_literal_is_still_rejected_at_run_time():
    z, y = torch.zeros(2, 3), torch.tensor([0, 1])
    with pytest.raises(ValueError, match=r"`reduction` to be one of 'mean', 'sum', 'none', got 'avg'"):
        ls.cross_entropy(z, y, reduction="avg")
    with pytest.raises(ValueError, match=r"`backend` to be one of 'auto', 'torch', 'triton'"):
        ls.fused_cross_entropy(z, y, backend="cuda")
    with pytest.raises(ValueError, match=r"`reduction` to be one of 'mean', 'sum', got 'none'"):
        ls.generator_loss(torch.zeros(2), reduction="none")
    with pytest.raises(ValueError, match=r"`scale` to be one of 'log', 'linear'"):
        ls.classwise_smoothing([2, 3], 0.0, 0.1, scale="sqrt")
