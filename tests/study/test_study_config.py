"""Study configuration: defaults, TOML round trip, precedence, and every validation error."""

from __future__ import annotations

import re

import pytest

from labelsmooth.study.config import (
    StudyConfig,
    apply_overrides,
    from_mapping,
    load_config,
    parse_value,
    to_toml,
)


def test_defaults_are_valid_and_round_trip_through_toml(tmp_path):
    cfg = load_config()
    assert cfg == StudyConfig()
    path = tmp_path / "c.toml"
    path.write_text(to_toml(cfg))
    assert load_config(path) == cfg


def test_seed_count_expands_and_lists_become_tuples():
    cfg = from_mapping({"seeds": 3, "noise": {"rates": [0, 0.2]}, "data": {"datasets": "synthetic"}})
    assert cfg.seeds == (0, 1, 2)
    assert cfg.noise.rates == (0.0, 0.2)
    assert cfg.data.datasets == ("synthetic",)


def test_file_then_overrides(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text("seeds = 2\n[train]\nepochs = 7\nlr = 0.01\n")
    cfg = load_config(path, {"train.epochs": 9})
    assert (cfg.seeds, cfg.train.epochs, cfg.train.lr) == ((0, 1), 9, 0.01)
    assert cfg.replace(**{"model.width": 8}).model.width == 8


def test_matrix_noise_round_trips(tmp_path):
    m = [[0.8, 0.2], [0.1, 0.9]]
    cfg = from_mapping({"noise": {"kind": "matrix", "rates": [1.0], "matrix": m}})
    assert cfg.noise.matrix == ((0.8, 0.2), (0.1, 0.9))
    path = tmp_path / "c.toml"
    path.write_text(to_toml(cfg))
    assert load_config(path) == cfg


@pytest.mark.parametrize(
    ("mapping", "key"),
    [
        ({"train": {"epoch": 3}}, "`train.epoch`"),
        ({"trian": {}}, "`trian`"),
        ({"sedes": 3}, "`sedes`"),
    ],
)
def test_unknown_keys_are_errors_that_name_the_key(mapping, key):
    with pytest.raises(ValueError, match=key) as info:
        from_mapping(mapping)
    assert "known config key" in str(info.value)


def test_unknown_key_suggests_the_close_one():
    with pytest.raises(ValueError, match=r"did you mean `train.epochs`"):
        from_mapping({"train": {"epoch": 3}})


OUT_OF_RANGE = [
    ("data.datasets", ["mnist"]),
    ("data.datasets", []),
    ("data.datasets", ["digits", "digits"]),
    ("data.val_fraction", 0.0),
    ("data.test_fraction", 1.0),
    ("data.separation", -1.0),
    ("data.n_samples", 5),
    ("data.n_features", 0),
    ("data.n_classes", 1),
    ("data.max_samples", 3),
    ("noise.kind", "uniform"),
    ("noise.rates", []),
    ("noise.rates", [1.0]),
    ("noise.rates", [-0.1]),
    ("noise.rates", [0.1, 0.1]),
    ("noise.matrix", [[1.0, 0.0], [0.0, 1.0]]),  # only with kind = matrix
    ("methods.label_smoothing", [0.0]),
    ("methods.label_smoothing", [1.0]),
    ("methods.prior", [1.5]),
    ("methods.negative", [0.1]),
    ("methods.negative", [-1.5]),
    ("methods.confidence_penalty", [0.0]),
    ("methods.focal", [-1.0]),
    ("methods.focal", ["flsd-99"]),
    ("model.kind", "resnet"),
    ("model.width", 0),
    ("model.depth", 0),
    ("model.channels", 0),
    ("train.epochs", 0),
    ("train.lr", 0.0),
    ("train.batch_size", -1),
    ("train.weight_decay", 2.0),
    ("train.eval_every", 0),
    ("seeds", 0),
    ("seeds", [-1]),
    ("seeds", [1, 1]),
    ("workers", -1),
    ("n_bins", 1),
    ("out", ""),
]


@pytest.mark.parametrize(("key", "value"), OUT_OF_RANGE)
def test_out_of_range_values_name_the_key(key, value):
    with pytest.raises(ValueError, match=re.escape(f"Expected `{key}")):
        apply_overrides(None, {key: value})


def test_split_fractions_must_leave_a_training_split():
    with pytest.raises(ValueError, match=r"data.val_fraction"):
        apply_overrides(None, {"data.val_fraction": 0.5, "data.test_fraction": 0.45})


def test_at_least_one_method():
    off = {
        "hard": False,
        "label_smoothing": [],
        "prior": [],
        "negative": [],
        "confidence_penalty": [],
        "focal": [],
    }
    with pytest.raises(ValueError, match="`methods`"):
        from_mapping({"methods": off})


def test_file_datasets_need_a_path():
    with pytest.raises(ValueError, match=r"`data.path`"):
        apply_overrides(None, {"data.datasets": ["npz"]})


def test_one_file_dataset_at_most():
    with pytest.raises(ValueError, match=r"data.datasets"):
        apply_overrides(None, {"data.datasets": ["npz", "csv"], "data.path": "x"})


@pytest.mark.parametrize(
    ("matrix", "fragment"),
    [
        ([[1.0]], "square"),
        ([[0.5, 0.5], [1.0]], "square"),
        ([[1.5, -0.5], [0.0, 1.0]], "non-negative"),
        ([[0.5, 0.4], [0.0, 1.0]], r"noise.matrix\[0\]"),
    ],
)
def test_matrix_checks(matrix, fragment):
    with pytest.raises(ValueError, match=fragment):
        from_mapping({"noise": {"kind": "matrix", "rates": [1.0], "matrix": matrix}})


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("train.epochs", "ten"),
        ("train.epochs", 1.5),
        ("train.lr", "fast"),
        ("data.download", "yes"),
        ("model.kind", 3),
        ("noise.rates", "0.3"),
        ("noise.rates", [True]),
        ("seeds", "3"),
        ("noise.matrix", 1),
        ("methods.focal", [None]),
    ],
)
def test_wrong_types_are_type_errors_naming_the_key(key, value):
    with pytest.raises(TypeError, match=re.escape(f"Expected `{key}")):
        apply_overrides(None, {key: value})


def test_section_must_be_a_table():
    with pytest.raises(TypeError, match="`train`"):
        from_mapping({"train": 3})
    with pytest.raises(TypeError, match="`config`"):
        from_mapping([1, 2])


def test_bad_dotted_key():
    with pytest.raises(ValueError, match="`key`"):
        apply_overrides(None, {"a.b.c": 1})
    with pytest.raises(ValueError, match="`nope`"):
        apply_overrides(None, {"nope.x": 1})


def test_missing_and_invalid_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="`config`"):
        load_config(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("seeds = [1, \n")
    with pytest.raises(ValueError, match="valid TOML"):
        load_config(bad)
    unknown = tmp_path / "unknown.toml"
    unknown.write_text("[model]\nwidht = 3\n")
    with pytest.raises(ValueError, match=r"`model.widht`"):
        load_config(unknown)


def test_parse_value():
    assert parse_value("5") == 5
    assert parse_value("0.1") == 0.1
    assert parse_value("[0, 0.3]") == [0, 0.3]
    assert parse_value('"mlp"') == "mlp"
    assert parse_value("mlp") == "mlp"
    assert parse_value("true") is True


def test_resolved_workers(monkeypatch):
    import labelsmooth.study.config as config_mod

    monkeypatch.setattr(config_mod, "available_cores", lambda: 4)
    assert StudyConfig(workers=3).resolved_workers(2) == 2
    assert StudyConfig(workers=3).resolved_workers(10) == 3
    assert StudyConfig(workers=0).resolved_workers(1) == 1
    # issue 10 §1: never more processes than cores (--workers 1000 on a 90-run grid)
    assert StudyConfig(workers=1000).resolved_workers(90) == 4
    assert StudyConfig(workers=0).resolved_workers(90) == 4


def test_the_sample_config_lists_every_key_with_its_default():
    from pathlib import Path

    sample = Path(__file__).resolve().parents[2] / "examples" / "study.toml"
    assert load_config(sample) == StudyConfig()
    text = sample.read_text()
    for section, fields in StudyConfig().to_dict().items():
        if isinstance(fields, dict):
            for key in fields:
                assert f"\n{key} = " in text, f"{section}.{key} missing from examples/study.toml"
        else:
            assert f"\n{section} = " in text or text.startswith(f"{section} = ")
