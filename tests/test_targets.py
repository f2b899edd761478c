import pytest
import torch
from hypothesis import strategies as st

from labelsmooth import class_prior, convert_smoothing, smooth_labels
from reference import seeded_property, smoothed_target_loop


def test_chapter_example_golden():
    # K = 5, true class 3 (index 2), alpha = 0.1 -> [0.02, 0.02, 0.92, 0.02, 0.02]
    p = smooth_labels(torch.tensor([2]), 5, 0.1, dtype=torch.float64)
    torch.testing.assert_close(p, torch.tensor([[0.02, 0.02, 0.92, 0.02, 0.02]], dtype=torch.float64))


def test_matches_loop_reference_with_priors_and_per_sample_alpha():
    g = torch.Generator().manual_seed(0)
    y = torch.randint(0, 7, (9,), generator=g)
    alpha = torch.rand(9, generator=g, dtype=torch.float64)
    prior = torch.softmax(torch.randn(7, generator=g, dtype=torch.float64), -1)
    per_row = torch.softmax(torch.randn(9, 7, generator=g, dtype=torch.float64), -1)
    for a in (0.3, alpha):
        for u in (None, prior, per_row):
            got = smooth_labels(y, 7, a, prior=u, dtype=torch.float64)
            torch.testing.assert_close(got, smoothed_target_loop(y, 7, a, u))


def test_class_dim_last_for_any_shape():
    y = torch.tensor([[0, 1], [2, 1]])
    p = smooth_labels(y, 3, 0.3)
    assert p.shape == (2, 2, 3)
    assert p.dtype == torch.get_default_dtype()
    torch.testing.assert_close(p.sum(-1), torch.ones(2, 2))


def test_negative_smoothing_needs_flag():
    with pytest.raises(ValueError, match=r"allow_negative=True"):
        smooth_labels(torch.tensor([0]), 3, -0.1)
    p = smooth_labels(torch.tensor([0]), 3, -0.3, allow_negative=True, dtype=torch.float64)
    torch.testing.assert_close(p, torch.tensor([[1.2, -0.1, -0.1]], dtype=torch.float64))


@seeded_property(60, k=st.integers(2, 12), n=st.integers(1, 8), a=st.floats(0.0, 1.0))
def test_properties(k, n, a, seed):
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, k, (n,), generator=g)
    p = smooth_labels(y, k, a, dtype=torch.float64)
    torch.testing.assert_close(p.sum(-1), torch.ones(n, dtype=torch.float64))
    assert bool((p >= 0).all())
    if a < 1:
        assert torch.equal(p.argmax(-1), y)
    # permuting classes and labels together permutes the rows' entries the same way
    perm = torch.randperm(k, generator=g)
    inv = torch.argsort(perm)
    p_perm = smooth_labels(inv[y], k, a, dtype=torch.float64)
    torch.testing.assert_close(p_perm[:, inv], p)


def test_extremes():
    y = torch.tensor([1, 0])
    torch.testing.assert_close(smooth_labels(y, 4, 0.0), torch.nn.functional.one_hot(y, 4).float())
    torch.testing.assert_close(smooth_labels(y, 4, 1.0), torch.full((2, 4), 0.25))
    prior = torch.tensor([0.4, 0.3, 0.2, 0.1])
    torch.testing.assert_close(smooth_labels(y, 4, 1.0, prior=prior), prior.expand(2, 4))


def _one_sample(**kwargs):
    """The arguments of one valid call (label 0 of 3 classes, smoothing 0.1), updated by ``kwargs``."""
    return dict(target=torch.tensor([0]), num_classes=3, label_smoothing=0.1) | kwargs


@pytest.mark.parametrize(
    ("kwargs", "exc", "fragment"),
    [
        (
            dict(target=torch.tensor([0]), num_classes=1, label_smoothing=0.1),
            ValueError,
            "`num_classes` >= 2, got 1",
        ),
        (
            dict(target=torch.tensor([0]), num_classes=2.0, label_smoothing=0.1),
            TypeError,
            "`num_classes` to be an int",
        ),
        (dict(target=torch.tensor([3]), num_classes=3, label_smoothing=0.1), ValueError, "[0, 3), got 3"),
        (dict(target=torch.tensor([-1]), num_classes=3, label_smoothing=0.1), ValueError, "got -1"),
        (
            dict(target=torch.tensor([0.0]), num_classes=3, label_smoothing=0.1),
            TypeError,
            "integer class indices",
        ),
        (dict(target=[0], num_classes=3, label_smoothing=0.1), TypeError, "`target` to be a torch.Tensor"),
        (
            dict(target=torch.tensor([0]), num_classes=3, label_smoothing=1.2),
            ValueError,
            "`label_smoothing` in [0, 1], got 1.2",
        ),
        (
            dict(target=torch.tensor([0]), num_classes=3, label_smoothing=float("nan")),
            ValueError,
            "`label_smoothing`",
        ),
        (
            dict(target=torch.tensor([0]), num_classes=3, label_smoothing="0.1"),
            TypeError,
            "`label_smoothing` to be a float",
        ),
        (
            dict(target=torch.tensor([0, 1]), num_classes=3, label_smoothing=torch.tensor([0.1])),
            ValueError,
            "shape (2,)",
        ),
        (
            dict(target=torch.tensor([0, 1]), num_classes=3, label_smoothing=torch.tensor([0.1, 1.5])),
            ValueError,
            "for every sample, got 1.5",
        ),
        (
            dict(target=torch.tensor([0, 1]), num_classes=3, label_smoothing=torch.tensor([0, 1])),
            TypeError,
            "floating-point",
        ),
        (_one_sample(prior=torch.tensor([0.5, 0.6, 0.1])), ValueError, "`prior` to sum to 1"),
        (_one_sample(prior=torch.tensor([1.2, -0.2, 0.0])), ValueError, "`prior` to be non-negative"),
        (_one_sample(prior=torch.tensor([0.5, 0.5])), ValueError, "`prior` of shape (3,) or (1, 3)"),
        (_one_sample(prior=torch.tensor([1, 0, 0])), TypeError, "`prior` to be a floating-point"),
        (_one_sample(prior=torch.tensor([float("nan"), 0.5, 0.5])), ValueError, "`prior` to be finite"),
        (
            dict(target=torch.tensor([[0]]), num_classes=3, label_smoothing=torch.tensor([0.1])),
            ValueError,
            "`target` to be 1-D",
        ),
    ],
)
def test_smooth_labels_errors(kwargs, exc, fragment):
    with pytest.raises(exc) as info:
        smooth_labels(**kwargs)
    assert fragment in str(info.value)


def test_convert_round_trip_and_equivalence():
    k = 7
    for a in (0.0, 0.05, 0.1, 0.5, 1.0):
        off = convert_smoothing(a, k, from_convention="uniform", to_convention="off_target")
        back = convert_smoothing(off, k, from_convention="off_target", to_convention="uniform")
        assert back == pytest.approx(a)
        # the same target: true class 1 - off, others off/(K-1)
        p = smooth_labels(torch.tensor([0]), k, a, dtype=torch.float64)[0]
        assert p[0].item() == pytest.approx(1 - off)
        assert p[1].item() == pytest.approx(off / (k - 1))
    t = convert_smoothing(torch.tensor([0.1, 0.2]), 5, from_convention="off_target", to_convention="uniform")
    torch.testing.assert_close(t, torch.tensor([0.125, 0.25]))
    assert convert_smoothing(0.3, 5, from_convention="uniform", to_convention="uniform") == 0.3


def test_convert_errors():
    with pytest.raises(
        ValueError, match=r"`from_convention` to be one of 'uniform', 'off_target', got 'megatron'"
    ):
        convert_smoothing(0.1, 5, from_convention="megatron", to_convention="uniform")
    with pytest.raises(ValueError, match=r"`to_convention`"):
        convert_smoothing(0.1, 5, from_convention="uniform", to_convention="x")
    with pytest.raises(ValueError, match=r"`label_smoothing` <= 0.8"):
        convert_smoothing(0.9, 5, from_convention="off_target", to_convention="uniform")
    with pytest.raises(ValueError, match=r"`label_smoothing` in \[0, 1\], got 1.5"):
        convert_smoothing(1.5, 5, from_convention="off_target", to_convention="uniform")
    with pytest.raises(ValueError, match=r"`num_classes` >= 2"):
        convert_smoothing(0.1, 1, from_convention="off_target", to_convention="uniform")


def test_class_prior():
    y = torch.tensor([0, 0, 1, -100, 2, 2, 2, 2])
    torch.testing.assert_close(class_prior(y, 4), torch.tensor([2 / 7, 1 / 7, 4 / 7, 0.0]))
    torch.testing.assert_close(class_prior(y, 4, eps=1.0), torch.tensor([3 / 11, 2 / 11, 5 / 11, 1 / 11]))
    with pytest.raises(ValueError, match=r"`target` to hold at least one label"):
        class_prior(torch.tensor([-100]), 3)
    with pytest.raises(ValueError, match=r"`eps` >= 0, got -1"):
        class_prior(y, 4, eps=-1)
    with pytest.raises(ValueError, match=r"\[0, 2\) or ignore_index=-100, got 2"):
        class_prior(y, 2)
    with pytest.raises(TypeError, match=r"`target` to be a torch.Tensor"):
        class_prior([0, 1], 2)
