"""Membership-inference scores and their evaluation: formulas in float64, stability at extreme logits,
ROC and AUC against scikit-learn, TPR at low FPR and advantage by brute force, bad input."""

from __future__ import annotations

import importlib
import math

import numpy as np
import pytest
import torch

from labelsmooth import privacy as P
from metrics_fixtures import random_logits
from reference import modified_entropy_loop


@pytest.mark.parametrize("from_logits", [True, False])
def test_scores_match_their_formulas(from_logits):
    z, y = random_logits(200, 5, 0, 3.0)
    z = z.double()
    p = torch.softmax(z, 1)
    x = z if from_logits else p
    py = p.gather(1, y[:, None]).squeeze(1)

    def s(kind):
        return P.membership_scores(x, y, from_logits=from_logits, kind=kind)

    assert torch.allclose(s("loss"), py.log())
    assert torch.allclose(s("confidence"), p.amax(1))
    assert torch.allclose(s("entropy"), (p * p.log()).sum(1))
    assert torch.allclose(s("logit_confidence"), py.log() - (1 - py).log())
    ment = torch.tensor(modified_entropy_loop(p, y), dtype=torch.float64)
    assert torch.allclose(s("modified_entropy"), -ment)


def test_label_free_scores_do_not_need_target():
    z, _ = random_logits(20, 3, 1, 1.0)
    assert P.membership_scores(z, from_logits=True, kind="entropy").shape == (20,)
    with pytest.raises(ValueError, match="needs the labels"):
        P.membership_scores(z, from_logits=True, kind="loss")


def test_extreme_logits_stay_exact():
    z = torch.tensor([[80.0, 0.0, 0.0], [0.0, 80.0, 0.0]], dtype=torch.float64)
    y = torch.tensor([0, 0])
    phi = P.membership_scores(z, y, from_logits=True, kind="logit_confidence")
    assert phi.tolist() == pytest.approx([80.0 - math.log(2.0), -80.0])
    ment = P.membership_scores(z, y, from_logits=True, kind="modified_entropy")
    assert torch.isfinite(ment).all()
    # row 2: p_0 = e^-80 / Z, p_1 ~ 1 on a wrong class; -p_1 log(1 - p_1) = -log(2 e^-80) approximately
    assert float(ment[1]) == pytest.approx(-(80.0 + (80.0 - math.log(2.0))), rel=1e-9)
    f32 = P.membership_scores(z.float(), y, from_logits=True, kind="logit_confidence")
    assert f32.dtype == torch.float64 and torch.isfinite(f32).all()


def _sets(seed=0, n_in=300, n_out=250):
    rng = np.random.default_rng(seed)
    m = np.round(rng.normal(0.5, 1.0, n_in), 1)  # rounded: ties across the two sets
    nm = np.round(rng.normal(0.0, 1.0, n_out), 1)
    return m, nm


@pytest.fixture(scope="module")
def sk_metrics():
    """scikit-learn's metrics module (the test extra installs it), imported by the tests that compare with
    it: importing it (scipy, pandas) costs ~2 s, which collecting this module made every xdist worker pay."""
    return importlib.import_module("sklearn.metrics")


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_roc_and_auc_match_scikit_learn(seed, sk_metrics):
    roc_auc_score, roc_curve = sk_metrics.roc_auc_score, sk_metrics.roc_curve
    m, nm = _sets(seed)
    y = np.r_[np.ones(len(m)), np.zeros(len(nm))]
    s = np.r_[m, nm]
    fpr, tpr, thr = P.membership_roc(m, nm)
    sk_fpr, sk_tpr, sk_thr = roc_curve(y, s, drop_intermediate=False)
    np.testing.assert_allclose(fpr, sk_fpr)
    np.testing.assert_allclose(tpr, sk_tpr)
    np.testing.assert_allclose(thr[1:], sk_thr[1:])
    r = P.membership_attack(m, nm)
    assert r.auc == pytest.approx(roc_auc_score(y, s), abs=1e-12)
    assert (r.n_members, r.n_nonmembers) == (len(m), len(nm))


def test_advantage_and_tpr_at_fpr_by_brute_force():
    m, nm = _sets(5, 400, 1000)
    r = P.membership_attack(torch.from_numpy(m), nm, fpr_levels=(0.01, 0.001, 0.25))
    best, at = 0.0, {0.01: 0.0, 0.001: 0.0, 0.25: 0.0}
    for t in np.unique(np.r_[m, nm, np.inf]):
        tpr, fpr = float((m >= t).mean()), float((nm >= t).mean())
        best = max(best, tpr - fpr)
        for a in at:
            if fpr <= a:
                at[a] = max(at[a], tpr)
    assert r.advantage == pytest.approx(best)
    assert r.tpr_at_fpr == pytest.approx(at)


def test_membership_inference_end_to_end():
    g = torch.Generator().manual_seed(0)
    zin, zout = 4 * torch.randn(100, 3, generator=g), torch.randn(100, 3, generator=g)
    yin, yout = zin.argmax(1), torch.randint(0, 3, (100,), generator=g)
    res = P.membership_inference(zin, yin, zout, yout, from_logits=True)
    assert list(res) == list(P.MEMBERSHIP_SCORES)
    assert all(0.5 < r.auc <= 1.0 for r in res.values())
    same = P.membership_inference(zout, yout, zout, yout, from_logits=True, kinds=("loss",))
    assert same["loss"].auc == pytest.approx(0.5) and same["loss"].advantage == 0.0


def test_bad_input():
    m = np.array([1.0, 2.0])
    with pytest.raises(ValueError, match="`member_scores` to hold at least one score"):
        P.membership_attack(np.array([]), m)
    with pytest.raises(ValueError, match="`nonmember_scores` to hold at least one score"):
        P.membership_attack(m, [])
    with pytest.raises(ValueError, match="NaN"):
        P.membership_attack(m, [float("nan")])
    with pytest.raises(ValueError, match=r"shape \(N,\)"):
        P.membership_roc(m[:, None], m)
    for bad in (0.0, 1.0, -0.1, 1.5, (0.01, 2.0)):
        with pytest.raises(ValueError, match=r"`fpr_levels` in \(0, 1\)"):
            P.membership_attack(m, m, fpr_levels=bad)
    with pytest.raises(ValueError, match="at least one level"):
        P.membership_attack(m, m, fpr_levels=())
    with pytest.raises(TypeError, match="fpr_levels"):
        P.membership_attack(m, m, fpr_levels="0.01")
    with pytest.raises(TypeError, match="fpr_levels"):
        P.membership_attack(m, m, fpr_levels=[True])
    z, y = random_logits(5, 3, 0, 1.0)
    with pytest.raises(ValueError, match="`member_input` to hold at least one example"):
        P.membership_inference(z[:0], y[:0], z, y, from_logits=True)
    with pytest.raises(ValueError, match="`nonmember_input` to hold at least one example"):
        P.membership_inference(z, y, z[:0], y[:0], from_logits=True)
    with pytest.raises(ValueError, match="one of 'loss'"):
        P.membership_scores(z, y, from_logits=True, kind="lira")
    with pytest.raises(ValueError, match="length 5"):
        P.membership_scores(z, y[:4], from_logits=True)


def test_half_precision_inputs_and_saturated_probabilities(sk_metrics):
    z, y = random_logits(64, 4, 3, 2.0)
    for dtype in (torch.float16, torch.bfloat16):
        for kind in P.MEMBERSHIP_SCORES:
            got = P.membership_scores(z.to(dtype), y, from_logits=True, kind=kind)
            want = P.membership_scores(z.to(dtype).double(), y, from_logits=True, kind=kind)
            assert got.dtype == torch.float64 and torch.allclose(got, want)
    p = torch.tensor([[1.0, 0.0], [0.5, 0.5]])
    phi = P.membership_scores(p, torch.tensor([0, 0]), from_logits=False, kind="logit_confidence")
    assert phi.tolist() == [math.inf, 0.0]
    r = P.membership_attack(phi, torch.tensor([0.0, -1.0]))
    assert r.auc == pytest.approx(sk_metrics.roc_auc_score([1, 1, 0, 0], [1e300, 0.0, 0.0, -1.0]))
