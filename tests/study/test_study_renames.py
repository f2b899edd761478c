"""The study's Python API says `label_smoothing`; the old spellings work one release with a warning."""

from __future__ import annotations

import pytest

from labelsmooth.study import runner
from labelsmooth.study.grid import Method as GridMethod
from labelsmooth.study.methods import Method, get_method
from labelsmooth.study.tasks import sequence
from labelsmooth.study.verdict import SettingVerdict

RECORDS = [
    {"dataset": "reverse", "method": m, "param": p, "seed": s, "perplexity": v + 0.1 * s, "accuracy": 0.5,
     "exact_match": 0.5, "ece": 0.1, "ts_ece": 0.05, "temperature": 1.0}
    for s in range(3)
    for m, p, v in (("hard", None, 2.0), ("smoothing", 0.1, 2.2), ("smoothing", 0.2, 2.5))
]  # fmt: skip


def test_method_label_smoothing_and_its_old_spelling():
    import labelsmooth.study.objectives  # noqa: F401  (registers the classification methods)

    assert get_method("ls").label_smoothing(0.2) == 0.2 and get_method("hard").label_smoothing(None) == 0.0
    assert Method("x", None, lambda p: None).label_smoothing(1.0) is None
    def objective(p):
        return None

    with pytest.deprecated_call(match=r"`Method\(alpha=...\)` is deprecated: use `Method\(label_smoothing"):
        old = Method("x", "a", objective, alpha=float)
    assert old.label_smoothing(0.3) == 0.3 and old == Method("x", "a", objective, label_smoothing=float)
    with pytest.deprecated_call(match=r"`Method.alpha` is deprecated: use `Method.label_smoothing`"):
        assert old.alpha(0.3) == 0.3


def test_grid_method_and_verdict_label_smoothing():
    m = GridMethod("ls", 0.1)
    assert m.label_smoothing == 0.1 and GridMethod("hard").label_smoothing == 0.0
    with pytest.deprecated_call(match=r"`grid.Method.alpha` is deprecated"):
        assert m.alpha == 0.1
    v = SettingVerdict("digits", "symmetric", 0.0, "helps", 0.2)
    assert v.label_smoothing == 0.2
    with pytest.deprecated_call(match=r"`SettingVerdict.alpha` is deprecated"):
        assert v.alpha == 0.2


def test_sequence_claims_take_label_smoothing():
    new = sequence.claims(RECORDS, label_smoothing=0.2)
    assert {c["alpha"] for c in new} == {0.2}
    with pytest.deprecated_call(match=r"claims\(claim_alpha=...\)"):
        old = sequence.claims(RECORDS, claim_alpha=0.2)
    assert [(c["claim"], c["estimate"]) for c in old] == [(c["claim"], c["estimate"]) for c in new]
    with pytest.deprecated_call(match=r"verdict\(claim_alpha=...\)"):
        old_v = sequence.verdict(RECORDS, claim_alpha=0.2)
    assert [v.text for v in old_v] == [v.text for v in sequence.verdict(RECORDS, label_smoothing=0.2)]


def test_runner_prepare_is_prepare_context():
    cfg = {"task": "classification", "data": {"datasets": ["digits"]}}
    with pytest.deprecated_call(match=r"`labelsmooth.study.runner.prepare` is deprecated: use `prepare_context`"):
        old = runner.prepare(cfg)
    new = runner.prepare_context(cfg)
    assert [s.run_hash for s in runner.plan(old)] == [s.run_hash for s in runner.plan(new)]
