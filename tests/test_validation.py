"""The checks module every layer uses: check_number, check_bool, is_number, format_interval."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
import torch

import labelsmooth as ls
from labelsmooth import exercises, theory
from labelsmooth._validation import (
    check_bool,
    check_num_classes,
    check_number,
    check_scalar_range,
    format_interval,
    is_number,
)
from labelsmooth.study.tasks import distill, noise, privacy


def _msg(text: str) -> str:
    return "^" + re.escape(text) + "$"


# ------------------------------------------------------------------ is_number
@pytest.mark.parametrize(
    "value", [0, -3, 2.5, float("inf"), float("nan"), np.float64(0.5), np.float32(0.5), np.int64(2)]
)
def test_is_number_accepts_real_numbers(value):
    assert is_number(value)


@pytest.mark.parametrize("value", [True, False, np.True_, "1", None, [1], torch.tensor(1.0), 1j])
def test_is_number_rejects_the_rest(value):
    assert not is_number(value)


def test_is_number_integer_mode():
    assert is_number(3, integer=True) and is_number(np.int32(3), integer=True)
    assert not is_number(3.0, integer=True)
    assert not is_number(np.float64(3.0), integer=True)
    assert not is_number(True, integer=True)


# ------------------------------------------------------------------ check_number: types
@pytest.mark.parametrize("value", [True, False, "0.5", None, [0.5], torch.tensor(0.5), 1j])
def test_check_number_type_error(value):
    with pytest.raises(TypeError, match=_msg(f"Expected `x` to be a float, got {value!r}.")
                       if not isinstance(value, torch.Tensor) else "Expected `x` to be a float"):  # fmt: skip
        check_number("x", value)


@pytest.mark.parametrize("value", [True, 2.0, 2.5, "2"])
def test_check_number_integer_mode_type_error(value):
    with pytest.raises(TypeError, match=_msg(f"Expected `n` to be an int, got {value!r}.")):
        check_number("n", value, integer=True)


def test_check_number_type_what_replaces_the_type_message():
    with pytest.raises(TypeError, match=_msg("Expected `x` to be a number or a tensor, got 'a'.")):
        check_number("x", "a", type_what="to be a number or a tensor")


def test_check_number_returns_python_float_or_int():
    for value in (3, np.float32(3.0), np.int64(3)):
        out = check_number("x", value)
        assert out == 3.0 and type(out) is float
    for value in (3, np.int16(3)):
        n = check_number("n", value, integer=True)
        assert n == 3 and type(n) is int


# ------------------------------------------------------------------ check_number: values
def test_check_number_nan_is_rejected_even_without_bounds():
    with pytest.raises(ValueError, match=_msg("Expected `x` not to be NaN, got nan.")):
        check_number("x", float("nan"))
    with pytest.raises(ValueError, match=_msg("Expected `x` in [0, 1], got nan.")):
        check_number("x", float("nan"), lo=0, hi=1)


def test_check_number_without_bounds_accepts_any_number():
    assert check_number("x", -1e300) == -1e300
    assert check_number("x", math.inf) == math.inf


@pytest.mark.parametrize(
    ("kwargs", "inside", "outside", "text"),
    [
        (dict(lo=0, hi=1), [0, 0.5, 1], [-0.1, 1.1], "in [0, 1]"),
        (dict(lo=0, hi=1, lo_open=True), [0.5, 1], [0, 1.1], "in (0, 1]"),
        (dict(lo=0, hi=1, hi_open=True), [0, 0.5], [1, -1], "in [0, 1)"),
        (dict(lo=0, hi=1, lo_open=True, hi_open=True), [1e-9, 0.5], [0, 1], "in (0, 1)"),
        (dict(lo=0.5, hi=math.inf, hi_open=True), [0.5, 1e300], [math.inf, 0.4], "in [0.5, inf)"),
        (dict(lo=2), [2, 1e9], [1.9, -math.inf], ">= 2"),
        (dict(lo=0, lo_open=True), [1e-12], [0, -1], "> 0"),
        (dict(hi=1), [1, -math.inf], [1.01], "<= 1"),
        (dict(hi=1, hi_open=True), [0.99], [1], "< 1"),
    ],
)
def test_check_number_bounds(kwargs, inside, outside, text):
    for v in inside:
        assert check_number("x", v, **kwargs) == v
    for v in outside:
        with pytest.raises(ValueError, match=_msg(f"Expected `x` {text}, got {v!r}.")):
            check_number("x", v, **kwargs)


def test_check_number_finite():
    for v in (math.inf, -math.inf):
        with pytest.raises(ValueError, match=_msg(f"Expected `x` to be finite, got {v!r}.")):
            check_number("x", v, finite=True)
    with pytest.raises(ValueError, match=_msg("Expected `x` > 0 and finite, got inf.")):
        check_number("x", math.inf, lo=0, lo_open=True, finite=True)
    # a closed infinite bound lets inf through, unless finite=True
    assert check_number("x", math.inf, lo=0, hi=math.inf) == math.inf
    with pytest.raises(ValueError, match=_msg("Expected `x` in (0, inf], got inf.")):
        check_number("x", math.inf, lo=0, hi=math.inf, lo_open=True, finite=True)


def test_check_number_integer_bounds_print_as_ints():
    assert check_number("n", 0, lo=0, hi=10**6, integer=True) == 0
    with pytest.raises(ValueError, match=_msg("Expected `n` in [1, 1000000], got 0.")):
        check_number("n", 0, lo=1, hi=10**6, integer=True)


def test_check_number_what_replaces_the_value_message():
    with pytest.raises(ValueError, match=_msg("Expected `steps` to be an int >= 0, got -1.")):
        check_number("steps", -1, lo=0, integer=True, what="to be an int >= 0")


# ------------------------------------------------------------------ the helpers built on it
def test_check_scalar_range_and_check_num_classes_keep_their_messages():
    assert check_scalar_range("a", 1, 0.0, 1.0) == 1.0
    with pytest.raises(TypeError, match=_msg("Expected `a` to be a float, got True.")):
        check_scalar_range("a", True, 0.0, 1.0)
    with pytest.raises(ValueError, match=_msg("Expected `a` in [0, 1), got 1.")):
        check_scalar_range("a", 1, 0.0, 1.0, hi_open=True)
    assert check_num_classes(2) == 2
    with pytest.raises(TypeError, match=_msg("Expected `bins` to be an int, got 3.0.")):
        check_num_classes(3.0, name="bins")
    with pytest.raises(ValueError, match=_msg("Expected `num_classes` >= 2, got 1.")):
        check_num_classes(1)


def test_format_interval():
    assert format_interval(0, 1) == "[0, 1]"
    assert format_interval(0.0, 0.5, lo_open=True, hi_open=True) == "(0, 0.5)"
    assert format_interval(-math.inf, 1.0, lo_open=True) == "(-inf, 1]"
    assert format_interval(1e-6, 10**7) == "[1e-06, 10000000]"


# ------------------------------------------------------------------ check_bool
def test_check_bool():
    assert check_bool("flag", True) is True
    assert check_bool("flag", False) is False
    assert check_bool("flag", np.True_) is True  # a numpy bool comes back as a Python bool


@pytest.mark.parametrize("value", [0, 1, 1.0, "true", None, torch.tensor(True), np.int8(1)])
def test_check_bool_rejects_non_bools(value):
    with pytest.raises(TypeError, match=re.escape("Expected `flag` to be a bool, got ")):
        check_bool("flag", value)


def test_check_bool_what():
    with pytest.raises(TypeError, match=_msg("Expected `train.shuffle` to be true or false, got 'yes'.")):
        check_bool("train.shuffle", "yes", what="to be true or false")


# ------------------------------------------------------------------ the guards that now go through check_number
_Z, _Y, _W = torch.zeros(2, 3), torch.tensor([0, 1]), torch.zeros(3, 4)
CALL_SITES = {
    "eps": lambda: ls.class_prior(_Y, 3, eps=True),
    "beta": lambda: ls.confidence_penalty(_Z, _Y, beta="0.1"),
    "gamma": lambda: ls.focal_loss(_Z, _Y, gamma=True),
    "steps": lambda: theory.descend_logit_gap(0.1, 3, steps=10.0),
    "lr": lambda: theory.descend_logit_gap(0.1, 3, lr=True),
    "chunk_size": lambda: ls.linear_cross_entropy(torch.zeros(2, 4), _W, _Y, chunk_size=2.0),
    "inplace": lambda: ls.fused_cross_entropy(_Z, _Y, inplace=1),
    "level": lambda: exercises.hint("logit_gap", True),
    "noise.batch_size": lambda: noise.NoiseSection(batch_size=True).validate(),
    "distill.batch_size": lambda: distill.DistillSection(batch_size=8.0).validate(),
    "privacy.width": lambda: privacy.PrivacySection(width="64").validate(),
}


@pytest.mark.parametrize("name", sorted(CALL_SITES))
def test_a_wrong_type_at_a_call_site_is_a_type_error_naming_the_argument(name):
    with pytest.raises(TypeError, match=re.escape(f"Expected `{name}` ")):
        CALL_SITES[name]()
