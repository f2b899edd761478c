"""The chapter's claims, checked on digits with 5 seeds and the default model and training (reduced grid).

(a) on clean data, a = 0.1 gives a negative signed gap (underconfidence) where a = 0 does not;
(b) with 30% symmetric label noise, smoothing improves test NLL over a = 0 at the a the verdict picks (by
    validation NLL) and at a = 0.1, and test accuracy at a = 0.3 (the verdict's a moved from 0.3 to 0.1
    when the selection rule changed from validation accuracy to validation NLL, issue 10 §5);
(c) the trained logit gap shrinks toward optimal_logit_gap(a, K) as a grows.

The thresholds are the verdict's: paired 95% t-intervals over the seeds that exclude 0. Measured numbers
are recorded in docs/study.md; if a claim fails here, report it, do not tune this test.
"""

from __future__ import annotations

import pytest

from labelsmooth.study import run
from labelsmooth.study.stats import estimate, paired
from labelsmooth.study.verdict import judge
from labelsmooth.theory import optimal_logit_gap

pytestmark = pytest.mark.slow

GRID = {
    "seeds": 5,
    "workers": 2,
    "noise": {"rates": [0.0, 0.3]},
    "methods": {
        "label_smoothing": [0.1, 0.3],
        "prior": [],
        "negative": [],
        "confidence_penalty": [],
        "focal": [],
    },
}


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    return run(GRID, out=tmp_path_factory.mktemp("science"), report=False)


def _m(results, rate, method, param=None):
    return results.where(noise_rate=rate, method=method, param=param)


def test_a_clean_data_smoothing_makes_the_model_underconfident(results):
    gap_ls = estimate(r["calibration_gap"] for r in _m(results, 0.0, "ls", 0.1))
    gap_hard = estimate(r["calibration_gap"] for r in _m(results, 0.0, "hard"))
    assert gap_ls.high < 0, gap_ls
    assert not gap_hard.high < 0, gap_hard


def test_b_label_noise_smoothing_improves_accuracy_and_nll(results):
    hard = _m(results, 0.3, "hard")
    (verdict,) = [v for v in judge(list(results)) if v.noise_rate == 0.3]
    assert verdict.outcome == "helps", verdict.text
    chosen = _m(results, 0.3, "ls", verdict.label_smoothing)
    d_nll = paired(chosen, hard, "nll")
    assert d_nll.significant and d_nll.mean < 0, (verdict.label_smoothing, d_nll)
    d_acc_03 = paired(_m(results, 0.3, "ls", 0.3), hard, "accuracy")
    assert d_acc_03.significant and d_acc_03.mean > 0, d_acc_03
    d_nll_01 = paired(_m(results, 0.3, "ls", 0.1), hard, "nll")
    assert d_nll_01.significant and d_nll_01.mean < 0, d_nll_01


def test_c_logit_gap_shrinks_toward_its_optimum(results):
    gaps = {a: estimate(r["train_logit_gap"] for r in _m(results, 0.0, "ls", a)).mean for a in (0.1, 0.3)}
    hard = estimate(r["train_logit_gap"] for r in _m(results, 0.0, "hard")).mean
    assert hard > gaps[0.1] > gaps[0.3]
    err = {a: abs(gaps[a] - optimal_logit_gap(a, 10)) for a in gaps}
    assert err[0.3] < err[0.1]
    for a in gaps:
        assert err[a] < 0.2 * optimal_logit_gap(a, 10), (a, gaps[a])
