"""Run a label-smoothing study on your own model and data through the Python API (a few seconds).

The model follows the study's protocol -- ``forward`` returns logits, ``features(x)`` the penultimate
activations and ``head`` is the last ``nn.Linear`` -- so the report can also draw the penultimate-layer
projection. A model without ``features``/``head`` works too; that figure is then skipped.

    python examples/own_model.py [OUT_DIR]
"""

from __future__ import annotations

import sys

import numpy as np
from torch import nn

from labelsmooth.study import run


class TinyNet(nn.Module):
    """A one-hidden-layer network with the features/head protocol."""

    def __init__(self, input_shape: tuple[int, ...], num_classes: int) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Flatten(), nn.Linear(input_shape[0], 32), nn.ReLU())
        self.head = nn.Linear(32, num_classes)

    def features(self, x):
        return self.body(x)

    def forward(self, x):
        return self.head(self.features(x))


def make_data(n: int = 600, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Four overlapping Gaussian classes in 6 dimensions, string labels (any labels work)."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 4
    means = rng.normal(size=(4, 6)) * 2.0
    X = means[y] + rng.normal(size=(n, 6))
    return X, np.array(["ant", "bee", "cat", "dog"])[y]


if __name__ == "__main__":  # needed: worker processes (workers > 1) re-import this file
    out = sys.argv[1] if len(sys.argv) > 1 else "labelsmooth-study-own-model"
    config = {
        "seeds": 2,
        "workers": 1,
        "noise": {"rates": [0.0, 0.3]},
        "methods": {"label_smoothing": [0.1, 0.2], "prior": [], "negative": [], "confidence_penalty": [],
                    "focal": []},
        "train": {"epochs": 60, "lr": 0.01, "eval_every": 10},
    }  # fmt: skip
    results = run(config, model_fn=TinyNet, data=make_data(), out=out)
    for r in results.where(seed=0):
        print(f"noise {r['noise_rate']:.1f}  {r['label']:12s}  acc {r['accuracy']:.3f}  NLL {r['nll']:.3f}  "
              f"gap {r['calibration_gap']:+.3f}  T {r['temperature']:.2f}")  # fmt: skip
    try:  # pandas is optional
        print(results.to_pandas().groupby(["noise_rate", "label"])[["accuracy", "nll", "ece"]].mean())
    except ImportError:
        pass
    print(f"report: {out}/report.html")
