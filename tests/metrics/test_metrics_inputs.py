"""Bad input to the metrics (one clear error naming the argument), from_logits required, and half-precision
probabilities (accepted within the dtype's epsilon, still checked)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from labelsmooth import metrics as M

# --------------------------------------------------------------------------- bad input
P = torch.tensor([[0.7, 0.3], [0.4, 0.6]])
Y = torch.tensor([0, 1])
SCALAR_METRICS = [
    M.expected_calibration_error,
    M.classwise_calibration_error,
    M.smooth_calibration_error,
    M.negative_log_likelihood,
    M.brier_score,
    M.accuracy,
    M.mean_confidence,
    M.calibration_gap,
    M.predictive_entropy,
    M.calibration_bins,
]

BAD_DATA = [
    # (input, target, exception, fragment of the message)
    (torch.tensor([[0.7, 0.2], [0.4, 0.6]]), Y, ValueError, "rows to sum to 1"),
    (torch.tensor([[1.2, -0.2], [0.4, 0.6]]), Y, ValueError, "in [0, 1]"),
    (torch.tensor([[float("nan"), 0.3], [0.4, 0.6]]), Y, ValueError, "finite"),
    (torch.tensor([[float("inf"), 0.3], [0.4, 0.6]]), Y, ValueError, "finite"),
    (torch.zeros(0, 2), torch.zeros(0, dtype=torch.long), ValueError, "at least one sample"),
    (torch.tensor([[1.0], [1.0]]), Y, ValueError, "at least 2 classes"),
    (torch.tensor([0.7, 0.3]), Y, ValueError, "shape (N, K)"),
    (P, torch.tensor([0, 2]), ValueError, "class indices in [0, 2)"),
    (P, torch.tensor([-1, 0]), ValueError, "class indices in [0, 2)"),
    (P, torch.tensor([0, 1, 1]), ValueError, "length 2"),
    (P, torch.tensor([[0], [1]]), ValueError, "shape (N,)"),
    (torch.tensor([[1, 0], [0, 1]]), Y, TypeError, "floating-point"),
    (P, torch.tensor([0.0, 1.0]), TypeError, "integer class indices"),
    (np.array([["a", "b"]], dtype=object), Y, TypeError, "numeric array"),
    (["a", "b"], Y, TypeError, "torch.Tensor or a numpy array"),
]


@pytest.mark.parametrize("fn", SCALAR_METRICS, ids=lambda f: f.__name__)
@pytest.mark.parametrize("bad", BAD_DATA, ids=lambda b: b[3])
def test_bad_data_raises_naming_the_argument(fn, bad):
    x, t, exc, fragment = bad
    with pytest.raises(exc, match=r"Expected `(input|target)`") as info:
        fn(x, t, from_logits=False)
    assert fragment in str(info.value)


@pytest.mark.parametrize("fn", [*SCALAR_METRICS, M.calibration_summary], ids=lambda f: f.__name__)
def test_from_logits_is_required_and_keyword_only(fn):
    """No default: a wrong one silently computes a wrong number. Leaving it out is a TypeError naming it."""
    with pytest.raises(TypeError, match="from_logits"):
        fn(P, Y)
    with pytest.raises(TypeError):
        fn(P, Y, False)  # keyword-only
    assert fn(P, Y, from_logits=False) is not None


def test_logits_are_not_checked_as_probabilities_but_must_be_finite():
    z = torch.tensor([[5.0, -3.0], [0.2, 0.1]])
    assert M.expected_calibration_error(z, Y, from_logits=True) >= 0.0
    with pytest.raises(ValueError, match=r"probabilities in \[0, 1\] \(pass from_logits=True for logits\)"):
        M.expected_calibration_error(z, Y, from_logits=False)
    with pytest.raises(ValueError, match="Expected `input` to be finite"):
        M.expected_calibration_error(torch.tensor([[math.inf, 0.0], [0.0, 0.0]]), Y, from_logits=True)
    with pytest.raises(ValueError, match="Expected `logits` to be finite"):
        M.logit_gap(torch.tensor([[math.nan, 0.0], [0.0, 0.0]]), Y)
    with pytest.raises(ValueError, match="Expected `logits` to hold at least 2 classes"):
        M.top2_gap(torch.zeros(3, 1))


@pytest.mark.parametrize(
    "kwargs,exc,fragment",
    [
        ({"n_bins": 0}, ValueError, "Expected `n_bins` >= 1, got 0."),
        ({"n_bins": -3}, ValueError, "Expected `n_bins` >= 1, got -3."),
        ({"n_bins": 2.5}, TypeError, "Expected `n_bins` to be an int"),
        ({"n_bins": True}, TypeError, "Expected `n_bins` to be an int"),
        (
            {"strategy": "equal"},
            ValueError,
            "Expected `strategy` to be one of 'uniform', 'quantile', got 'equal'.",
        ),
        ({"norm": "l3"}, ValueError, "Expected `norm` to be one of 'l1', 'l2', 'max', got 'l3'."),
        ({"from_logits": "yes"}, TypeError, "Expected `from_logits` to be a bool"),
        ({"right_closed": 1}, TypeError, "Expected `right_closed` to be a bool"),
    ],
)
def test_bad_arguments_raise(kwargs, exc, fragment):
    with pytest.raises(exc) as info:
        M.expected_calibration_error(P, Y, **{"from_logits": False, **kwargs})
    assert fragment in str(info.value)


def test_bad_arguments_of_other_functions():
    with pytest.raises(ValueError, match="Expected `n_bins` >= 1"):
        M.classwise_calibration_error(P, Y, n_bins=0, from_logits=False)
    with pytest.raises(ValueError, match="Expected `n_bins` >= 1"):
        M.calibration_summary(P, Y, from_logits=False, n_bins=0)
    with pytest.raises(ValueError, match="Expected `strategy`"):
        M.calibration_bins(P, Y, strategy="kmeans", from_logits=False)
    with pytest.raises(ValueError, match="Expected `norm`"):
        M.calibration_bins(P, Y, from_logits=False).calibration_error("l0")
    with pytest.raises(ValueError, match=r"Expected `label_smoothing` in \[0, 1\], got 1.5."):
        M.logit_gap_summary(P, Y, label_smoothing=1.5)
    with pytest.raises(TypeError, match="Expected `label_smoothing` to be a float"):
        M.logit_gap_summary(P, Y, label_smoothing="0.1")


# ---------------------------------------------------------------- half-precision probabilities
HALF_FUNCTIONS = [
    "expected_calibration_error",
    "negative_log_likelihood",
    "brier_score",
    "accuracy",
    "smooth_calibration_error",
    "classwise_calibration_error",
    "calibration_gap",
    "mean_confidence",
    "predictive_entropy",
]


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_half_probabilities_accepted_and_exact(dtype):
    """Half-precision rows pass the sum check within the dtype's epsilon and give the float64 result.

    Rows of dyadic probabilities are exact in every dtype, so bf16/fp16 input must give exactly what
    float64 input of the same values gives (no computation in the half dtype). A real bf16 softmax,
    whose rows sum to 1 only within ~3e-3, is accepted too.
    """
    g = torch.Generator().manual_seed(0)
    base = torch.tensor(
        [[0.5, 0.25, 0.125, 0.125], [0.75, 0.125, 0.0625, 0.0625], [0.25] * 4, [0.375, 0.375, 0.125, 0.125]]
    )
    p = base[torch.randint(0, 4, (400,), generator=g)][:, torch.randperm(4, generator=g)]
    y = torch.randint(0, 4, (400,), generator=g)
    for name in HALF_FUNCTIONS:
        fn = getattr(M, name)
        assert float(fn(p.to(dtype), y, from_logits=False)) == float(fn(p.double(), y, from_logits=False)), name
    z = torch.randn(2000, 1000, generator=g) * 3
    q = torch.softmax(z, 1).to(dtype)
    assert (q.double().sum(1) - 1).abs().max() > 1e-4  # the float32 tolerance would refuse it
    yq = torch.randint(0, 1000, (2000,), generator=g)
    ece = M.expected_calibration_error(q, yq, from_logits=False)
    assert abs(ece - M.expected_calibration_error(z, yq, from_logits=True)) < 1e-2


def test_float16_subnormal_probabilities_accepted():
    """A uniform float16 row over 50000 classes (2e-5 each, subnormal) sums to 1.0014: still a distribution."""
    p = torch.softmax(torch.zeros(4, 50000), 1).half()
    assert (p.double().sum(1) - 1).abs().max() > torch.finfo(torch.float16).eps
    assert M.accuracy(p, torch.zeros(4, dtype=torch.long), from_logits=False) == 1.0  # ties resolved to the first index


def test_half_probabilities_still_checked():
    p = torch.tensor([[0.5, 0.25, 0.25], [0.5, 0.25, 0.27]], dtype=torch.bfloat16)  # second row: 1.02
    with pytest.raises(ValueError, match=r"within 0\.0078125"):
        M.expected_calibration_error(p, torch.tensor([0, 1]), from_logits=False)
    p32 = torch.tensor([[0.5, 0.25, 0.25], [0.5, 0.25, 0.251]])  # 1.001: fine in bf16, not in float32
    with pytest.raises(ValueError, match=r"within 0\.0001 "):
        M.expected_calibration_error(p32, torch.tensor([0, 1]), from_logits=False)
