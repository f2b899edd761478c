"""Datasets for a study: the embedded digits, synthetic Gaussian mixtures, and the user's files.

Every loader returns a :class:`Dataset` of float32 inputs and int64 labels in [0, K). Nothing is
downloaded unless the user asks (``download = true``, CIFAR-10 only). Loading happens before the output
folder is created, so a missing file or a bad label column is an error that leaves nothing behind.
"""

from __future__ import annotations

import csv
import hashlib
import math
import pickle
import tarfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from labelsmooth._validation import expected
from labelsmooth.study.config import DataConfig

CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
CIFAR10_MD5 = "c58f30108f718f92721af3b95e74349a"
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".npy")


@dataclass(frozen=True, eq=False)
class Dataset:
    """Inputs ``X`` (N, D) or (N, C, H, W) float32, labels ``y`` (N,) int64 in [0, num_classes)."""

    name: str
    X: np.ndarray
    y: np.ndarray
    num_classes: int
    fingerprint: str
    classes: tuple[str, ...] = ()

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.X.shape[1:])

    @property
    def is_image(self) -> bool:
        return self.X.ndim == 4


@dataclass(frozen=True)
class Split:
    """Indices of the seeded, stratified train / validation / test split."""

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray


def from_arrays(X: object, y: object, name: str = "user") -> Dataset:
    """Wrap the user's arrays; labels are re-indexed to 0..K-1 (the original values kept as class names)."""
    Xa = np.asarray(X)
    ya = np.asarray(y)
    if Xa.ndim not in (2, 4):
        raise ValueError(expected("X", "to have shape (N, D) or (N, C, H, W)", Xa))
    if ya.ndim != 1 or ya.shape[0] != Xa.shape[0]:
        raise ValueError(expected("y", f"to have shape ({Xa.shape[0]},)", ya))
    if not np.issubdtype(Xa.dtype, np.number):
        raise TypeError(expected("X", "to hold numbers", Xa.dtype))
    Xa = Xa.astype(np.float32)
    if not np.isfinite(Xa).all():
        raise ValueError(expected("X", "to be finite", "NaN or inf values"))
    values, yi = np.unique(ya, return_inverse=True)
    if len(values) < 2:
        raise ValueError(expected("y", "to hold at least 2 classes", len(values)))
    yi = yi.astype(np.int64)
    return Dataset(name, Xa, yi, len(values), _fingerprint(Xa, yi), tuple(str(v) for v in values))


def _fingerprint(X: np.ndarray, y: np.ndarray) -> str:
    h = hashlib.sha1()
    h.update(str(X.shape).encode())
    h.update(np.ascontiguousarray(X).tobytes())
    h.update(np.ascontiguousarray(y).tobytes())
    return h.hexdigest()[:16]


def load_digits() -> Dataset:
    """scikit-learn's bundled 8x8 digits: 1797 images, 10 classes, pixel values scaled to [0, 1]."""
    X, y = _digits_arrays()
    return from_arrays((X / 16.0).reshape(-1, 1, 8, 8), y, "digits")


def _digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    """The digits as ``sklearn.datasets.load_digits(return_X_y=True)`` returns them, read from the file it
    reads (``sklearn/datasets/data/digits.csv.gz``) without importing scikit-learn, whose import costs
    about a second of CPU in every process that loads the digits (as much as torch's); scikit-learn's
    own loader where that file is not found."""
    import importlib.util

    spec = importlib.util.find_spec("sklearn")  # locates the package without running it
    if spec is None:
        raise ImportError("The digits dataset needs scikit-learn: pip install 'labelsmooth[study]'")
    for folder in spec.submodule_search_locations or ():
        path = Path(folder, "datasets", "data", "digits.csv.gz")
        if path.is_file():
            data = np.loadtxt(path, delimiter=",")
            return data[:, :-1], data[:, -1].astype(int)
    from sklearn.datasets import load_digits as _load

    return _load(return_X_y=True)


def make_synthetic(cfg: DataConfig, seed: int = 0) -> Dataset:
    """A Gaussian mixture: K class means placed at random directions at distance ``separation`` (in units of
    the unit noise standard deviation) from the origin. Large separation = the chapter's "clean, simple"
    problem; small = overlapping classes. The data is fixed by ``seed`` (0 for the grid)."""
    rng = np.random.default_rng(seed)
    k, d, n = cfg.n_classes, cfg.n_features, cfg.n_samples
    directions = rng.standard_normal((k, d))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    means = directions * cfg.separation
    y = np.arange(n) % k
    rng.shuffle(y)
    X = means[y] + rng.standard_normal((n, d))
    ds = from_arrays(X, y, "synthetic")
    return ds


NPY_MAGIC, ZIP_MAGIC = b"\x93NUMPY", b"PK\x03\x04"


def load_npz(path: Path) -> Dataset:
    """A ``.npz`` file (``np.savez``) holding arrays ``X`` and ``y``. Never unpickles: object arrays are
    refused (save labels as integers or strings)."""
    with path.open("rb") as fh:
        head = fh.read(6)
    if head.startswith(NPY_MAGIC):
        raise ValueError(
            f"{path} is a .npy file (one array), not a .npz archive: save X and y together with "
            "np.savez(path, X=X, y=y)."
        )
    if not head.startswith(ZIP_MAGIC):
        raise ValueError(
            f"{path} is not a .npz archive (np.savez writes a zip file; this one starts with {head[:4]!r}); "
            "save X and y with np.savez(path, X=X, y=y)."
        )
    with np.load(path, allow_pickle=False) as f:
        missing = [k for k in ("X", "y") if k not in f.files]
        if missing:
            raise ValueError(
                expected("data.path", "to be a .npz file with arrays X and y", f"arrays {f.files}")
            )
        arrays = {}
        for key in ("X", "y"):
            try:
                arrays[key] = f[key]
            except ValueError:  # object dtype: loading it would run pickle
                raise ValueError(
                    f"{path}: array {key} has object dtype, which is never loaded (it would run pickle); "
                    f"save {key} with a number or string dtype, e.g. np.asarray({key}, dtype=str)."
                ) from None
        return from_arrays(arrays["X"], arrays["y"], "npz")


def load_csv(path: Path, label_column: str) -> Dataset:
    """A ``.csv`` file with a header; ``label_column`` holds the labels, every other column a number."""
    try:
        with path.open(newline="", encoding="utf-8") as fh:
            reader = csv.reader(fh)
            header = next(reader, None)
            if not header:
                raise ValueError(expected("data.path", "to be a CSV file with a header row", str(path)))
            if label_column not in header:
                raise ValueError(
                    expected("data.label_column", "to name a column of " + ", ".join(header), label_column)
                )
            li = header.index(label_column)
            rows = list(reader)
    except UnicodeDecodeError as exc:
        raise ValueError(not_utf8(path, exc)) from None
    labels, feats = [], []
    for line, row in enumerate(rows, start=2):
        if not row:
            continue
        if len(row) != len(header):
            raise ValueError(expected(f"{path.name} line {line}", f"to have {len(header)} fields", len(row)))
        labels.append(row[li].strip())
        try:
            values = [float(v) for i, v in enumerate(row) if i != li]
        except ValueError:
            raise ValueError(
                expected(f"{path.name} line {line}", "to hold numbers outside the label column", row)
            ) from None
        bad = next((i for i, v in enumerate(row) if i != li and not math.isfinite(float(v))), None)
        if bad is not None:
            raise ValueError(
                expected(
                    f"{path.name} line {line}, column {header[bad]!r}", "to be a finite number", row[bad]
                )
            )
        feats.append(values)
    if not feats:
        raise ValueError(expected("data.path", "to hold at least one data row", str(path)))
    return from_arrays(np.asarray(feats, dtype=np.float64), np.asarray(labels), "csv")


def not_utf8(path: Path, exc: UnicodeDecodeError) -> str:
    """The one-line message for a text file that is not UTF-8."""
    return (
        f"{path} is not UTF-8 text (byte {exc.object[exc.start]:#04x} at offset {exc.start}); "
        "save it as UTF-8."
    )


def load_image_folder(path: Path) -> Dataset:
    """``path/<class name>/<image>``: one sub-folder per class. ``.npy`` images need only numpy; other formats
    need Pillow (optional). All images must share one size; pixel values are scaled to [0, 1]."""
    class_dirs = sorted(p for p in path.iterdir() if p.is_dir())
    if len(class_dirs) < 2:
        raise ValueError(expected("data.path", "to hold one sub-folder per class (at least 2)", str(path)))
    images, labels = [], []
    for ci, d in enumerate(class_dirs):
        for f in sorted(d.iterdir()):
            if f.suffix.lower() in IMAGE_SUFFIXES:
                images.append(_read_image(f))
                labels.append(ci)
    if not images:
        raise ValueError(
            expected("data.path", "to hold images (" + ", ".join(IMAGE_SUFFIXES) + ")", str(path))
        )
    shapes = {im.shape for im in images}
    if len(shapes) > 1:
        raise ValueError(expected("images", "to share one size", sorted(shapes)))
    X = np.stack(images)
    ds = from_arrays(X, np.asarray(labels), "images")
    return Dataset(ds.name, ds.X, ds.y, ds.num_classes, ds.fingerprint, tuple(d.name for d in class_dirs))


def _read_image(f: Path) -> np.ndarray:
    """One image as (C, H, W) float in [0, 1]."""
    if f.suffix.lower() == ".npy":
        a = np.load(f, allow_pickle=False).astype(np.float32)
        scale = 255.0 if a.max(initial=0) > 1.0 else 1.0
    else:
        try:
            from PIL import Image
        except ImportError:
            raise ImportError(
                f"Reading {f.suffix} images needs Pillow (pip install pillow); or save the images as .npy"
            ) from None
        with Image.open(f) as im:
            a = np.asarray(im.convert("RGB") if im.mode not in ("L", "RGB") else im, dtype=np.float32)
        scale = 255.0
    a = a / scale
    if a.ndim == 2:
        a = a[None]
    elif a.ndim == 3 and a.shape[-1] in (1, 3, 4) and a.shape[0] not in (1, 3, 4):
        a = a.transpose(2, 0, 1)
    if a.ndim != 3:
        raise ValueError(expected(str(f), "to be a 2-D or 3-D image", a))
    return a


def load_cifar10(path: Path, download: bool = False) -> Dataset:
    """CIFAR-10 python batches (``data_batch_*`` and ``test_batch``, pickled) in ``path`` or in
    ``path/cifar-10-batches-py``. With ``download=True`` the official archive is fetched and its MD5 checked
    first. The official test batch is pooled with the training batches; the study makes its own split."""
    folder = _find_cifar(path)
    if folder is None and download:
        _download_cifar10(path)
        folder = _find_cifar(path)
    if folder is None:
        raise FileNotFoundError(
            expected(
                "data.path",
                "to hold CIFAR-10 python batches (data_batch_*, test_batch); pass --download to fetch them",
                str(path),
            )
        )
    xs, ys, names = [], [], None
    for f in sorted(folder.glob("data_batch_*")) + sorted(folder.glob("test_batch")):
        with f.open("rb") as fh:
            batch = pickle.load(fh, encoding="bytes")
        data = batch.get(b"data", batch.get("data"))
        labels = batch.get(b"labels", batch.get("labels"))
        if data is None or labels is None:
            raise ValueError(expected(f.name, "to be a CIFAR-10 batch with data and labels", sorted(batch)))
        xs.append(np.asarray(data, dtype=np.uint8).reshape(-1, 3, 32, 32))
        ys.append(np.asarray(labels, dtype=np.int64))
    meta = folder / "batches.meta"
    if meta.is_file():
        with meta.open("rb") as fh:
            m = pickle.load(fh, encoding="bytes")
        raw = m.get(b"label_names", m.get("label_names"))
        names = tuple(n.decode() if isinstance(n, bytes) else str(n) for n in raw) if raw else None
    X = np.concatenate(xs).astype(np.float32) / 255.0
    y = np.concatenate(ys)
    ds = from_arrays(X, y, "cifar10")
    if names and len(names) == ds.num_classes:
        ds = Dataset(ds.name, ds.X, ds.y, ds.num_classes, ds.fingerprint, names)
    return ds


def _find_cifar(path: Path) -> Path | None:
    for cand in (path, path / "cifar-10-batches-py"):
        if cand.is_dir() and any(cand.glob("data_batch_*")):
            return cand
    return None


def _download_cifar10(path: Path) -> None:  # pragma: no cover - never run in tests (no network)
    """Fetch the official archive with urllib, check its MD5, extract it into ``path``."""
    path.mkdir(parents=True, exist_ok=True)
    archive = path / "cifar-10-python.tar.gz"
    urllib.request.urlretrieve(CIFAR10_URL, archive)
    digest = hashlib.md5(archive.read_bytes()).hexdigest()
    if digest != CIFAR10_MD5:
        archive.unlink()
        raise ValueError(expected("CIFAR-10 archive MD5", f"to be {CIFAR10_MD5}", digest))
    with tarfile.open(archive) as tar:
        tar.extractall(path, filter="data")


def load(name: str, cfg: DataConfig) -> Dataset:
    """Load the dataset ``name`` as the config describes, subsampled to ``max_samples`` if set."""
    path = Path(cfg.path).expanduser() if cfg.path else Path()
    if name in ("npz", "csv", "images", "cifar10") and name != "cifar10" and not path.exists():
        raise FileNotFoundError(expected("data.path", "to exist", str(path)))
    if name in ("npz", "csv") and not path.is_file():
        raise ValueError(
            expected("data.path", f"to be a .{name} file for dataset {name!r}", f"{path} (a folder)")
        )
    if name == "digits":
        ds = load_digits()
    elif name == "synthetic":
        ds = make_synthetic(cfg)
    elif name == "npz":
        ds = load_npz(path)
    elif name == "csv":
        ds = load_csv(path, cfg.label_column)
    elif name == "images":
        if not path.is_dir():
            raise ValueError(expected("data.path", "to be a folder for dataset 'images'", str(path)))
        ds = load_image_folder(path)
    elif name == "cifar10":
        ds = load_cifar10(path, cfg.download)
    else:  # pragma: no cover - validated by the config
        raise ValueError(expected("data.datasets", "to name a known dataset", name))
    if cfg.max_samples and len(ds.y) > cfg.max_samples:
        keep = stratified_subsample(ds.y, cfg.max_samples, seed=0)
        sub = from_arrays(ds.X[keep], ds.y[keep], ds.name)
        ds = Dataset(ds.name, sub.X, ds.y[keep], ds.num_classes, sub.fingerprint, ds.classes)
    return ds


def stratified_subsample(y: np.ndarray, n: int, seed: int) -> np.ndarray:
    """``n`` indices keeping the class proportions (sorted)."""
    rng = np.random.default_rng(seed)
    frac = n / len(y)
    keep = []
    for c in np.unique(y):
        idx = np.flatnonzero(y == c)
        rng.shuffle(idx)
        keep.append(idx[: max(1, round(len(idx) * frac))])
    return np.sort(np.concatenate(keep))


def split(
    y: np.ndarray, val_fraction: float, test_fraction: float, seed: int, classes: tuple[str, ...] = ()
) -> Split:
    """A seeded, stratified split: each class is shuffled and cut in the given proportions, so every class
    appears in every part in (rounded) proportion. Raises if a class is too small to appear in all three,
    naming it by ``classes[c]`` (the user's label) when given."""
    rng = np.random.default_rng([seed, 7])
    parts: tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray]] = ([], [], [])
    for c in np.unique(y):
        idx = np.flatnonzero(y == c)
        rng.shuffle(idx)
        n = len(idx)
        n_test = max(1, round(n * test_fraction))
        n_val = max(1, round(n * val_fraction))
        if n - n_test - n_val < 1:
            raise ValueError(
                expected(
                    f"class {classes[c]!r}" if len(classes) > c else f"class {c}",
                    "to have at least 3 examples for a train/val/test split",
                    n,
                )
            )
        parts[2].append(idx[:n_test])
        parts[1].append(idx[n_test : n_test + n_val])
        parts[0].append(idx[n_test + n_val :])
    train, val, test = (np.sort(np.concatenate(p)) for p in parts)
    return Split(train, val, test)
