"""Task core `sequence`: data determinism and fingerprint, model shapes, run_one determinism, validation,
and the verdict's wording on hand-made records."""

from __future__ import annotations

import dataclasses
import functools
import json

import pytest
import torch

from labelsmooth.study.tasks import sequence as seq
from labelsmooth.study.tasks.base import metric_table
from labelsmooth.study.tasks.sequence_data import (
    IGNORE,
    CausalTransformer,
    language_model_data,
    reverse_data,
    stdlib_corpus,
)
from study_fixtures import start_python, task_record

TINY = seq.SequenceSection(
    d_model=16, n_layers=1, n_heads=2, steps=4, batch_size=4, context=16, corpus_bytes=20_000,
    eval_tokens=256, vocab=4, min_len=2, max_len=4, n_train=32, n_eval=16, label_smoothing=(0.1,),
)  # fmt: skip


def test_defaults_validate_and_grid():
    s = seq.SequenceSection().validate()
    grid = seq.default_grid(s)
    assert len(grid) == 2 * 4 * 3
    assert grid[0] == ("stdlib", "hard", None, 0)
    assert ("reverse", "smoothing", 0.2, 2) in grid and ("stdlib", "confidence_penalty", 0.1, 1) in grid


def test_corpus_is_deterministic_with_a_fingerprint():
    a, fa = stdlib_corpus(30_000)
    b, fb = stdlib_corpus(30_000)
    assert a == b and fa == fb and len(a) == 30_000 and len(fa) == 16
    assert stdlib_corpus(29_999)[1] != fa
    d = language_model_data(30_000, 16, 256)
    assert d.vocab_size == 256 and d.fingerprint == fa
    x, y = d.val
    assert x.shape == y.shape == (16, 16) and torch.equal(x[0, 1:], y[0, :-1])
    # interleaved 1 KiB blocks: 8/10 of the bytes train
    assert d.train_stream is not None and abs(d.train_stream.numel() / 30_000 - 0.8) < 0.05


def test_reverse_data_is_fixed_and_the_noise_follows_the_seed():
    a, b = reverse_data(5, 2, 4, 50, 10, 0.3, seed=0), reverse_data(5, 2, 4, 50, 10, 0.3, seed=0)
    c = reverse_data(5, 2, 4, 50, 10, 0.3, seed=1)
    assert a.fingerprint == b.fingerprint == c.fingerprint
    assert torch.equal(a.train_inputs, b.train_inputs) and not torch.equal(a.train_inputs, c.train_inputs)
    assert torch.equal(a.test[0], c.test[0])  # held-out sets are clean and shared
    x, y = a.test
    assert a.vocab_size == 8 and x.shape == (10, 9)
    # the first scored position predicts the last source token right after SEP, and the answer ends in EOS
    src = a.test_sources[0]
    row = y[0][y[0] != IGNORE]
    assert torch.equal(row, torch.cat([src.flip(0), torch.tensor([6])]))
    assert x[0, src.numel()] == 5  # SEP
    clean = reverse_data(5, 2, 4, 50, 10, 0.0, seed=3)
    rows = clean.train_targets[clean.train_targets != IGNORE]
    assert rows.numel() > 0


def test_model_shapes():
    m = CausalTransformer(11, 9, 16, 2, 4)
    x = torch.randint(0, 11, (3, 9))
    assert m.hidden(x).shape == (3, 9, 16) and m(x).shape == (3, 9, 11)
    assert m.head.weight.shape == (11, 16) and m.head.bias is None
    # causal: changing a later token leaves earlier outputs unchanged
    x2 = x.clone()
    x2[:, -1] = (x2[:, -1] + 1) % 11
    assert torch.allclose(m(x)[:, :-1], m(x2)[:, :-1], atol=1e-6)


@pytest.mark.parametrize(
    "dataset,method,param",
    [("stdlib", "hard", None), ("reverse", "smoothing", 0.1), ("reverse", "confidence_penalty", 0.2)],
)
def test_run_one_is_deterministic_and_complete(dataset, method, param):
    a = seq.run_one(TINY, method, param, 1, dataset=dataset)
    b = seq.run_one(TINY, method, param, 1, dataset=dataset)
    assert a == b
    assert set(a["metrics"]) == set(metric_table(seq.METRICS))
    assert (a["metrics"]["exact_match"] is None) == (dataset == "stdlib")
    assert len(a["curves"]["train_loss"]) == 4
    assert sum(a["arrays"]["reliability"]["counts"]) > 0
    json.dumps(a)


def test_run_one_differs_by_method_and_is_identical_in_another_process(tmp_path):
    a = seq.run_one(TINY, "hard", None, 0, dataset="reverse")
    assert a["metrics"] != seq.run_one(TINY, "smoothing", 0.1, 0, dataset="reverse")["metrics"]
    kw = {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(TINY).items()}
    out = tmp_path / "metrics.json"
    code = (
        "import json; from labelsmooth.study.tasks import sequence as s; "
        f"sec = s.SequenceSection(**json.loads({json.dumps(kw)!r})); "
        f"open({str(out)!r}, 'w').write(json.dumps(s.run_one(sec, 'hard', None, 0, dataset='reverse')['metrics']))"
    )
    proc = start_python(code)  # another process (its own hash seed), with torch already imported
    proc.join(120)
    assert proc.exitcode == 0
    assert json.loads(out.read_text()) == a["metrics"]


@pytest.mark.parametrize(
    "kwargs,exc,match",
    [
        (dict(vocab=1), ValueError, "`sequence.vocab` >= 2, got 1"),
        (dict(context=0), ValueError, "`sequence.context` >= 1, got 0"),
        (dict(max_len=2, min_len=3), ValueError, "`sequence.max_len` >= 3, got 2"),
        (dict(min_len=0), ValueError, "`sequence.min_len` >= 1"),
        (dict(datasets=("stdlb",)), ValueError, "did you mean 'stdlib'"),
        (dict(datasets=()), ValueError, "`sequence.datasets` to name at least one"),
        (dict(datasets="stdlib"), TypeError, "`sequence.datasets` to be a list"),
        (dict(label_smoothing=(1.0,)), ValueError, "`sequence.label_smoothing\\[0\\]` in \\[0, 1\\)"),
        (dict(label_smoothing=(0.1, 0.1)), ValueError, "no repeats"),
        (dict(penalty=(-1.0,)), ValueError, "`sequence.penalty\\[0\\]`"),
        (dict(d_model=10, n_heads=4), ValueError, "`sequence.d_model` divisible by sequence.n_heads = 4"),
        (dict(steps=0), ValueError, "`sequence.steps` >= 1"),
        (dict(steps=1.5), TypeError, "`sequence.steps` to be an int"),
        (dict(lr=0.0), ValueError, "`sequence.lr` in \\(0, inf\\]"),
        (dict(target_noise=1.5), ValueError, "`sequence.target_noise` in \\[0, 1\\]"),
        (dict(corpus_bytes=100), ValueError, "`sequence.corpus_bytes` >="),
        (dict(eval_tokens=1), ValueError, "`sequence.eval_tokens` >= 64"),
    ],
)
def test_validate_errors(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        seq.SequenceSection(**kwargs).validate()


def test_from_mapping_and_unknown_keys():
    s = seq.SequenceSection.from_mapping({"datasets": ["reverse"], "steps": 10})
    assert s.datasets == ("reverse",) and s.steps == 10
    with pytest.raises(ValueError, match=r"did you mean `sequence\.steps`"):
        seq.SequenceSection.from_mapping({"step": 10})


def test_run_one_rejects_unknown_methods_and_params():
    with pytest.raises(ValueError, match="`method` to be one of 'hard', 'smoothing', 'confidence_penalty'"):
        seq.run_one(TINY, "focal", 1.0, 0)
    with pytest.raises(ValueError, match="`param` to be a number for method 'smoothing'"):
        seq.run_one(TINY, "smoothing", None, 0)
    with pytest.raises(ValueError, match="`param` in \\[0, 1\\)"):
        seq.run_one(TINY, "smoothing", 1.0, 0)
    with pytest.raises(ValueError, match="`dataset` to be one of"):
        seq.run_one(TINY, "hard", None, 0, dataset="wiki")


_rec = functools.partial(task_record, "stdlib")


def test_summarize_and_claims_on_hand_made_records():
    recs = []
    for s in range(3):
        recs.append(_rec("hard", None, s, perplexity=4.6 + 0.01 * s, accuracy=0.50 + 0.001 * s, ece=0.05,
                         ts_ece=0.01, temperature=1.2, exact_match=None))  # fmt: skip
        recs.append(_rec("smoothing", 0.1, s, perplexity=4.9 + 0.012 * s, accuracy=0.51 + 0.0013 * s,
                         ece=0.02 + 0.001 * s, ts_ece=0.01, temperature=0.9, exact_match=None))  # fmt: skip
    cl = {c["claim"]: c for c in seq.claims(recs)}
    assert cl["smoothing raises perplexity"]["status"] == "reproduced"
    assert cl["smoothing raises token accuracy"]["status"] == "reproduced"
    assert cl["smoothing lowers next-token ECE"]["status"] == "reproduced"
    assert cl["smoothing raises perplexity"]["estimate"].mean == pytest.approx(0.302)
    text = "\n".join(seq.summarize(recs))
    assert "smoothing (a=0.1) vs hard: perplexity 0.302" in text and "(worse)" in text
    assert "after temperature scaling ECE 0.0000 ± 0.0000 (no difference on any of 3 seeds)" in text
    one_seed = [r for r in recs if r["seed"] == 0]
    assert {c["status"] for c in seq.claims(one_seed)} == {"not enough seeds"}
    assert seq.summarize([r for r in recs if r["method"] != "hard"]) == [
        "stdlib: no hard-target runs, nothing to compare with."
    ]


def test_the_baseline_is_found_by_method_whatever_its_stored_param():
    recs = [
        _rec("hard", 0.0, s, perplexity=4.0 + s / 10, accuracy=0.5, ece=0.05, ts_ece=0.01, temperature=1.0)
        for s in range(2)
    ] + [
        _rec(
            "smoothing", 0.1, s, perplexity=4.5 + s / 9, accuracy=0.5, ece=0.04, ts_ece=0.01, temperature=1.0
        )
        for s in range(2)
    ]
    assert [c["estimate"].n for c in seq.claims(recs)] == [2, 2, 2, 2]
