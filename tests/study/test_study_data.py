"""Study data: the embedded digits, synthetic mixtures, the user's files, and the stratified split."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from labelsmooth.study.config import DataConfig
from labelsmooth.study.data import from_arrays, load, make_synthetic, split


def test_digits_is_embedded():
    ds = load("digits", DataConfig())
    assert ds.X.shape == (1797, 1, 8, 8) and ds.num_classes == 10
    assert ds.X.dtype == np.float32 and 0.0 <= ds.X.min() and ds.X.max() <= 1.0
    assert ds.is_image


def test_synthetic_separation_knob():
    far = make_synthetic(DataConfig(separation=8.0, n_samples=600, n_features=5, n_classes=3))
    near = make_synthetic(DataConfig(separation=0.5, n_samples=600, n_features=5, n_classes=3))

    def nearest_mean_accuracy(ds):
        means = np.stack([ds.X[ds.y == c].mean(0) for c in range(3)])
        pred = ((ds.X[:, None] - means[None]) ** 2).sum(-1).argmin(1)
        return (pred == ds.y).mean()

    assert nearest_mean_accuracy(far) > 0.99
    assert nearest_mean_accuracy(near) < 0.8
    assert far.X.shape == (600, 5) and far.num_classes == 3


def test_npz(tmp_path):
    X = np.random.default_rng(0).normal(size=(30, 4))
    y = np.arange(30) % 3
    np.savez(tmp_path / "d.npz", X=X, y=y)
    ds = load("npz", DataConfig(datasets=("npz",), path=str(tmp_path / "d.npz")))
    np.testing.assert_allclose(ds.X, X.astype(np.float32))
    np.testing.assert_array_equal(ds.y, y)
    np.savez(tmp_path / "bad.npz", features=X, y=y)
    with pytest.raises(ValueError, match="arrays X and y"):
        load("npz", DataConfig(datasets=("npz",), path=str(tmp_path / "bad.npz")))


def test_csv_with_named_label_column(tmp_path):
    rows = ["a,species,b"] + [f"{i},{'cat' if i % 2 else 'dog'},{i * 2}" for i in range(12)]
    (tmp_path / "d.csv").write_text("\n".join(rows) + "\n")
    ds = load("csv", DataConfig(datasets=("csv",), path=str(tmp_path / "d.csv"), label_column="species"))
    assert ds.X.shape == (12, 2) and ds.classes == ("cat", "dog")
    assert ds.y[0] == 1  # row 0 is a dog
    with pytest.raises(ValueError, match=r"data.label_column"):
        load("csv", DataConfig(datasets=("csv",), path=str(tmp_path / "d.csv"), label_column="label"))
    (tmp_path / "bad.csv").write_text("x,label\n1,a\nfoo,b\n")
    with pytest.raises(ValueError, match="line 3"):
        load("csv", DataConfig(datasets=("csv",), path=str(tmp_path / "bad.csv")))


def test_image_folder_of_npy(tmp_path):
    rng = np.random.default_rng(0)
    for c in ("ant", "bee"):
        (tmp_path / c).mkdir()
        for i in range(4):
            np.save(tmp_path / c / f"{i}.npy", rng.integers(0, 255, size=(6, 6)).astype(np.uint8))
    ds = load("images", DataConfig(datasets=("images",), path=str(tmp_path)))
    assert ds.X.shape == (8, 1, 6, 6) and ds.classes == ("ant", "bee")
    assert ds.X.max() <= 1.0


def test_image_folder_errors(tmp_path):
    (tmp_path / "only").mkdir()
    with pytest.raises(ValueError, match="sub-folder per class"):
        load("images", DataConfig(datasets=("images",), path=str(tmp_path)))
    with pytest.raises(FileNotFoundError, match=r"data.path"):
        load("images", DataConfig(datasets=("images",), path=str(tmp_path / "missing")))


def _write_cifar_batch(path, n, seed):
    rng = np.random.default_rng(seed)
    batch = {
        b"data": rng.integers(0, 256, size=(n, 3072), dtype=np.uint8),
        b"labels": list(np.arange(n) % 10),
    }
    with open(path, "wb") as fh:
        pickle.dump(batch, fh)


def test_cifar10_python_batches_on_disk(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    _write_cifar_batch(folder / "data_batch_1", 20, 0)
    _write_cifar_batch(folder / "test_batch", 10, 1)
    with open(folder / "batches.meta", "wb") as fh:
        pickle.dump({b"label_names": [f"c{i}".encode() for i in range(10)]}, fh)
    ds = load("cifar10", DataConfig(datasets=("cifar10",), path=str(tmp_path)))
    assert ds.X.shape == (30, 3, 32, 32) and ds.num_classes == 10
    assert ds.classes[3] == "c3"


def test_cifar10_missing_says_how_to_download(tmp_path):
    with pytest.raises(FileNotFoundError, match="--download"):
        load("cifar10", DataConfig(datasets=("cifar10",), path=str(tmp_path)))


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"data.path"):
        load("npz", DataConfig(datasets=("npz",), path=str(tmp_path / "nope.npz")))


def test_from_arrays_checks():
    with pytest.raises(ValueError, match="`X`"):
        from_arrays(np.zeros(5), np.zeros(5))
    with pytest.raises(ValueError, match="`y`"):
        from_arrays(np.zeros((5, 2)), np.zeros(4))
    with pytest.raises(ValueError, match="at least 2 classes"):
        from_arrays(np.zeros((5, 2)), np.zeros(5))
    with pytest.raises(ValueError, match="finite"):
        from_arrays(np.full((4, 2), np.nan), np.arange(4) % 2)


def test_max_samples_subsamples_stratified():
    ds = load("digits", DataConfig(max_samples=500))
    assert abs(len(ds.y) - 500) <= 10
    counts = np.bincount(ds.y)
    assert counts.min() >= 45


def test_split_is_stratified_disjoint_and_seeded():
    y = np.repeat(np.arange(4), [50, 30, 100, 20])
    s = split(y, 0.2, 0.25, seed=0)
    allidx = np.concatenate([s.train, s.val, s.test])
    assert len(allidx) == len(y) and len(np.unique(allidx)) == len(y)
    for c, n in enumerate([50, 30, 100, 20]):
        assert (y[s.test] == c).sum() == round(n * 0.25)
        assert (y[s.val] == c).sum() == round(n * 0.2)
    again = split(y, 0.2, 0.25, seed=0)
    np.testing.assert_array_equal(s.test, again.test)
    other = split(y, 0.2, 0.25, seed=1)
    assert not np.array_equal(s.test, other.test)


def test_split_refuses_tiny_classes():
    with pytest.raises(ValueError, match="class 1"):
        split(np.array([0, 0, 0, 0, 0, 1, 1]), 0.2, 0.2, seed=0)


def test_image_folder_of_png_with_pillow(tmp_path):
    Image = pytest.importorskip("PIL.Image")
    rng = np.random.default_rng(0)
    for c in ("a", "b"):
        (tmp_path / c).mkdir()
        for i in range(3):
            Image.fromarray(rng.integers(0, 255, size=(5, 5, 3), dtype=np.uint8)).save(
                tmp_path / c / f"{i}.png"
            )
    ds = load("images", DataConfig(datasets=("images",), path=str(tmp_path)))
    assert ds.X.shape == (6, 3, 5, 5) and 0.0 <= ds.X.min() and ds.X.max() <= 1.0


def test_digits_are_read_without_importing_sklearn_and_equal_its_loader(monkeypatch, tmp_path):
    import importlib.machinery
    import importlib.util
    import sys

    from sklearn.datasets import load_digits as sklearn_digits

    import labelsmooth.study.data as data

    want_X, want_y = sklearn_digits(return_X_y=True)
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)  # importing it would raise
    X, y = data._digits_arrays()
    assert np.array_equal(X, want_X) and X.dtype == want_X.dtype
    assert np.array_equal(y, want_y) and y.dtype == want_y.dtype
    monkeypatch.undo()
    # another scikit-learn layout (no digits.csv.gz where it is read): scikit-learn's loader
    spec = importlib.machinery.ModuleSpec("sklearn", None, is_package=True)
    spec.submodule_search_locations = [str(tmp_path)]
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: spec)
    X, y = data._digits_arrays()
    assert np.array_equal(X, want_X) and np.array_equal(y, want_y)
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)  # no scikit-learn
    with pytest.raises(ImportError, match=r"labelsmooth\[study\]"):
        data.load_digits()
