"""Renamed keywords (issue 11, "one name per idea"): the smoothing factor is `label_smoothing` everywhere.

Each old spelling keeps working for one release with a DeprecationWarning naming the new one; both
spellings in one call are a TypeError.
"""

import inspect

import pytest
import torch

import labelsmooth as ls
from labelsmooth._deprecation import renamed_keywords

CONVERT = {"num_classes": 5, "from_convention": "off_target", "to_convention": "uniform"}

# (function, its arguments under the new spellings, {old spelling: new spelling})
RENAMED = [
    (ls.convert_smoothing, {"label_smoothing": 0.1, **CONVERT}, {"value": "label_smoothing"}),
    (
        ls.classwise_smoothing,
        {"class_counts": [100, 10, 1], "label_smoothing_low": 0.05, "label_smoothing_high": 0.2},
        {"low": "label_smoothing_low", "high": "label_smoothing_high"},
    ),
]
IDS = [f.__name__ for f, _, _ in RENAMED]


def _old(kwargs, renames, only=None):
    """``kwargs`` with the new spellings in ``only`` (default: all renamed) replaced by the old ones."""
    out = dict(kwargs)
    for old, new in renames.items():
        if only is None or old in only:
            out[old] = out.pop(new)
    return out


def _same(a, b):
    if isinstance(a, torch.Tensor):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    else:
        assert a == b


@pytest.mark.parametrize(("func", "kwargs", "renames"), RENAMED, ids=IDS)
def test_new_name_is_the_signature(func, kwargs, renames):
    params = inspect.signature(func).parameters
    assert set(renames.values()) <= set(params)
    assert not set(renames) & set(params)


@pytest.mark.parametrize(("func", "kwargs", "renames"), RENAMED, ids=IDS)
def test_old_name_warns_and_gives_the_same_result(func, kwargs, renames):
    want = func(**kwargs)
    for old, new in renames.items():
        with pytest.warns(DeprecationWarning, match=rf"`{old}` is deprecated in .*: use `{new}`"):
            _same(func(**_old(kwargs, renames, only={old})), want)
    with pytest.warns(DeprecationWarning):
        _same(func(**_old(kwargs, renames)), want)


@pytest.mark.parametrize(("func", "kwargs", "renames"), RENAMED, ids=IDS)
def test_both_spellings_are_a_type_error(func, kwargs, renames):
    for old, new in renames.items():
        with pytest.raises(TypeError, match=rf"`{new}` or its deprecated spelling `{old}` .*got both"):
            func(**kwargs, **{old: kwargs[new]})


def test_positional_and_old_keyword_is_a_type_error():
    with pytest.raises(TypeError), pytest.warns(DeprecationWarning):
        ls.convert_smoothing(0.1, 5, value=0.1, from_convention="uniform", to_convention="uniform")


def test_renamed_keywords_keeps_metadata_and_other_arguments():
    @renamed_keywords(old="new")
    def f(x, new=1, *, other=2):
        """Doc."""
        return x, new, other

    assert f.__name__ == "f" and f.__doc__ == "Doc."
    assert list(inspect.signature(f).parameters) == ["x", "new", "other"]
    assert f(0, 3, other=4) == (0, 3, 4)
    with pytest.warns(DeprecationWarning, match=r"`old` is deprecated in .*f\(\): use `new`"):
        assert f(0, old=5) == (0, 5, 2)
