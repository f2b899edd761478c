"""The study API end to end on tiny grids: results, resume, determinism, user models and data, report."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from labelsmooth.study import Results, StudyConfig, load_results, run, write_report
from labelsmooth.study.grid import expand
from labelsmooth.study.runner import plan, prepare_context
from study_fixtures import assert_figures_are_not_clipped, tiny

VOLATILE = {"wall_time"}


def _stable(records):
    return {r["run_hash"]: {k: v for k, v in r.items() if k not in VOLATILE} for r in records}


@pytest.fixture(scope="module")
def tiny_study(tmp_path_factory):
    out = tmp_path_factory.mktemp("tiny")
    seen = []
    results = run(tiny(), out=out, on_run=seen.append)
    return out, results, seen


def test_results_table(tiny_study):
    _, results, seen = tiny_study
    assert isinstance(results, Results)
    assert len(results) == len(seen) == 2 * 3 * 2  # noise x methods x seeds
    rec = results[0]
    for key in ("accuracy", "nll", "brier", "ece", "smece", "calibration_gap", "temperature", "ts_ece",
                "ts_calibration_gap", "train_logit_gap", "test_logit_gap", "memorised", "wall_time", "run_hash",
                "library_version", "alpha"):  # fmt: skip
        assert key in rec
    noisy = results.where(noise_rate=0.3)
    assert all(0.0 <= r["memorised"] <= 1.0 for r in noisy)
    assert all(r["memorised"] is None for r in results.where(noise_rate=0.0))
    assert results.where(method="ls")[0]["optimal_logit_gap"] == pytest.approx(np.log1p(10 * 0.9 / 0.1))


def test_results_to_pandas(tiny_study):
    pd = pytest.importorskip("pandas", reason="pandas is optional; Results.to_pandas needs it")
    _, results, _ = tiny_study
    df = results.to_pandas()
    assert isinstance(df, pd.DataFrame)
    assert len(df) == len(results) and "accuracy" in df.columns
    assert df["accuracy"].tolist() == [r["accuracy"] for r in results]


def test_results_to_pandas_without_pandas_says_how_to_get_it(tiny_study, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_pandas(name, *args, **kwargs):
        if name == "pandas" or name.startswith("pandas."):
            raise ImportError("No module named 'pandas'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_pandas)
    _, results, _ = tiny_study
    with pytest.raises(ImportError, match=r"Results.to_pandas\(\) needs pandas: pip install pandas"):
        results.to_pandas()


def test_resume_skips_finished_runs(tiny_study):
    out, results, _ = tiny_study
    again = []
    results2 = run(tiny(), out=out, on_run=again.append, report=False)
    assert again == []
    assert _stable(results2) == _stable(results)


def test_curves_and_arrays_are_stored(tiny_study):
    _, _, seen = tiny_study
    rec = seen[0]
    assert rec["curves"]["epoch"] == [4, 8, 12]
    assert set(rec["curves"]) == {"epoch", "train_loss", "val_nll", "val_accuracy", "val_ece"}
    for key in ("reliability", "reliability_ts", "gap_hist_train", "gap_hist_test", "projection"):
        assert rec["arrays"][key]


def test_report_has_every_figure_and_the_verdict_and_redraws_identically(tiny_study):
    out, _, _ = tiny_study
    html1 = (out / "report.html").read_text()
    for fig in ("metrics_vs_alpha_digits", "reliability_digits_symmetric_0", "logit_gap_digits_symmetric_0",
                "projection_digits_symmetric_0", "curves_digits_symmetric_0_3"):  # fmt: skip
        assert f"id='{fig}'" in html1
        assert (out / "figures" / f"{fig}.png").is_file()
    assert html1.count("data:image/png;base64,") >= 9
    assert assert_figures_are_not_clipped(out) >= 9
    assert "Verdict:" in html1 and 'class="sortable"' in html1 and "<script>" in html1
    assert "http://" not in html1 and "https://" not in html1  # self-contained
    md1 = (out / "report.md").read_text()
    assert "## Verdict" in md1 and "clean labels" in md1 and "30% symmetric label noise" in md1
    write_report(out)
    assert (out / "report.html").read_text() == html1
    assert (out / "report.md").read_text() == md1


def test_one_and_two_workers_store_identical_numbers(tmp_path, tiny_study):
    _, results, _ = tiny_study
    cfg = tiny(seeds=[1], noise={"rates": [0.3]})
    two = run(cfg, out=tmp_path / "w2", workers=2, report=False)
    one = run(cfg, out=tmp_path / "w1", workers=1, report=False)
    assert len(one) == 3
    assert _stable(one) == _stable(two)
    # and identical to the same runs inside the bigger serial study
    assert _stable(one).items() <= _stable(results).items()


def test_a_changed_setting_is_refused_unless_extend_then_the_study_holds_both_grids(tmp_path):
    """Issue 10 §2: a folder holding another grid is refused (nothing trained, config.toml untouched);
    with extend=True the changed runs are new runs and the study is the union of both grids."""
    from labelsmooth.study.runner import StudyMismatchError

    cfg = tiny(seeds=1, noise={"rates": [0.0]})
    first = run(cfg, out=tmp_path, report=False)
    toml = (tmp_path / "config.toml").read_text()
    cfg["train"]["epochs"] = 6
    seen, said = [], []
    with pytest.raises(StudyMismatchError, match=r"holds another study \(3 runs stored.*--extend"):
        run(cfg, out=tmp_path, on_run=seen.append, report=False)
    assert seen == [] and (tmp_path / "config.toml").read_text() == toml
    second = run(cfg, out=tmp_path, on_run=seen.append, report=False, extend=True, log=said.append)
    assert said == [f"extending the study in {tmp_path}: 3 runs kept, 3 new."]
    assert len(seen) == 3 and len(second) == 6
    assert {r["run_hash"] for r in first} < {r["run_hash"] for r in second}
    assert len(load_results(tmp_path)) == 6 and load_results(tmp_path).hidden == 0


class NoFeatures(nn.Module):
    """A user model without the features/head protocol: the projection figure is skipped."""

    def __init__(self, input_shape, num_classes):
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(int(np.prod(input_shape)), num_classes))

    def forward(self, x):
        return self.net(x)


def test_user_model_and_data(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(240, 5)) + np.repeat(np.eye(3, 5) * 3, 80, axis=0)
    y = np.repeat(np.array(["a", "b", "c"]), 80)
    res = run(
        tiny(seeds=1, noise={"rates": [0.0]}, train={"lr": 0.05}),
        model_fn=NoFeatures,
        data=(X, y),
        out=tmp_path,
    )
    assert len(res) == 3 and res[0]["dataset"] == "user"
    assert res[0]["accuracy"] > 0.8
    html = (tmp_path / "report.html").read_text()
    assert "projection_user" not in html and "reliability_user" in html


def test_model_fn_must_return_a_module(tmp_path):
    # a run that raises is stored as failed with its error (the study goes on; rerunning retries it)
    res = run(
        tiny(seeds=1, noise={"rates": [0.0]}),
        model_fn=lambda shape, k: "nope",
        out=tmp_path,
        report=False,
        log=lambda message: None,
    )
    assert len(res) == 0 and res.failed
    assert all(f["error"].startswith("TypeError: Expected `model_fn` to return") for f in res.failed)


def test_bad_inputs_fail_before_anything_is_written(tmp_path):
    out = tmp_path / "never"
    with pytest.raises(ValueError, match=r"train.epochs"):
        run(tiny(train={"epochs": 0}), out=out)
    with pytest.raises(FileNotFoundError):
        run(tiny(data={"datasets": ["npz"], "path": str(tmp_path / "missing.npz")}), out=out)
    with pytest.raises(ValueError, match=r"model.kind"):
        run(tiny(data={"datasets": ["synthetic"]}, model={"kind": "cnn"}), out=out)
    with pytest.raises(TypeError, match="`data`"):
        run(tiny(), data=[1, 2, 3], out=out)
    assert not out.exists()


def test_grid_and_run_hashes():
    cfg = StudyConfig()
    specs = expand(cfg)
    assert len(specs) == 1 * 2 * 9 * 5
    ctx = prepare_context(tiny())
    h = {s.run_hash for s in plan(ctx)}
    assert len(h) == len(expand(ctx.config))
    # workers and output folder are not part of a run's identity
    ctx2 = prepare_context(tiny(workers=2, out="elsewhere"))
    assert {s.run_hash for s in plan(ctx2)} == h


def test_cnn_and_logreg_train(tmp_path):
    for kind in ("cnn", "logreg"):
        cfg = tiny(seeds=1, noise={"rates": [0.0]}, model={"kind": kind, "channels": 4, "width": 16},
                   methods={"focal": [], "label_smoothing": [0.1], "hard": True})  # fmt: skip
        res = run(cfg, out=tmp_path / kind, report=False)
        assert len(res) == 2 and all(np.isfinite(r["nll"]) for r in res)


def test_minibatches_are_seeded(tmp_path):
    cfg = tiny(seeds=1, noise={"rates": [0.0]}, train={"batch_size": 256, "epochs": 3})
    a = run(cfg, out=tmp_path / "a", report=False)
    b = run(cfg, out=tmp_path / "b", report=False)
    assert _stable(a) == _stable(b)


def test_serial_runs_train_on_one_thread_and_restore_the_callers_threads(tmp_path):
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        run(tiny(seeds=1, noise={"rates": [0.0]}, methods={"focal": []}), out=tmp_path, report=False)
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


class Exploding(nn.Module):
    """Logits overflow to inf: the run is stored as diverged, without metrics, and the study goes on."""

    def __init__(self, input_shape, num_classes):
        super().__init__()
        self.lin = nn.Linear(int(np.prod(input_shape)), num_classes)

    def forward(self, x):
        return self.lin(x.flatten(1)) * 1e38 * 1e38


def test_a_diverged_run_is_stored_and_reported(tmp_path):
    res = run(tiny(seeds=1, noise={"rates": [0.0]}), model_fn=Exploding, out=tmp_path)
    assert len(res) == 3 and all(r["diverged"] for r in res)
    assert all("accuracy" not in r for r in res)
    assert "Verdict" in (tmp_path / "report.html").read_text()
