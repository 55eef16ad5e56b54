"""Meta-features and the content fingerprint."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from archsearch.data import SequenceDataset, fingerprint, list_builtin, load_dataset, meta_features
from archsearch.errors import DataError
from archsearch.types import TaskKind

FIELDS = {
    "task", "n_sequences", "n_test_sequences", "n_features", "n_outputs", "seq_len",
    "length_min", "length_max", "length_mean", "length_std", "ragged", "padding_ratio",
    "missing_ratio", "n_classes", "class_imbalance", "majority_fraction", "minority_fraction",
    "target_mean", "target_std", "lookback", "horizon", "series_length", "acf_lag1",
    "dominant_period", "dominant_period_power", "spectral_energy_long", "spectral_energy_short",
    "acf_long_lag", "hurst_exponent",
}


def _dataset(X: np.ndarray, y: np.ndarray | None = None, **kw) -> SequenceDataset:
    if X.ndim == 2:
        X = X[:, :, None]
    if y is None:
        y = np.zeros(X.shape[0], dtype=np.float32)
    return SequenceDataset("t", kw.pop("task", TaskKind.REGRESSION), X.astype(np.float32), y,
                           **kw)


def _small(name: str) -> str:
    return f"builtin:{name}?length=40&n=80" if name not in (
        "digits", "sunspots", "co2", "gunpoint", "italypowerdemand", "japanesevowels") \
        else f"builtin:{name}"


@pytest.mark.parametrize("name", [name for name, _ in list_builtin()])
def test_every_builtin_has_json_meta_features(name):
    try:
        ds = load_dataset(_small(name))
    except DataError as exc:  # a real data set whose package is not installed
        pytest.skip(str(exc))
    meta = meta_features(ds)
    assert set(meta) == FIELDS
    assert json.loads(json.dumps(meta)) == meta
    assert meta["task"] == ds.task.value and meta["n_sequences"] == ds.n_sequences
    for value in meta.values():
        assert value is None or isinstance(value, (int, float, str, bool))
        if isinstance(value, float):
            assert np.isfinite(value)


def test_length_class_and_missing_features():
    X = np.ones((10, 8, 2), dtype=np.float32)
    lengths = np.array([8] * 5 + [4] * 5)
    y = np.array([0] * 8 + [1] * 2)
    ds = _dataset(X, y, task=TaskKind.CLASSIFICATION, lengths=lengths, class_names=("a", "b"),
                  n_missing=6)
    meta = meta_features(ds)
    assert meta["ragged"] is True and meta["length_min"] == 4 and meta["length_mean"] == 6
    assert meta["padding_ratio"] == pytest.approx(0.25)
    assert meta["n_classes"] == 2 and meta["class_imbalance"] == 4.0
    assert meta["minority_fraction"] == pytest.approx(0.2)
    assert meta["missing_ratio"] == pytest.approx(6 / (60 * 2))
    assert meta["target_mean"] is None and meta["lookback"] is None


def test_dominant_period_and_spectral_bands():
    t = np.arange(256)
    rng = np.random.default_rng(0)
    slow = np.sin(2 * np.pi * t / 64)[None] + 0.01 * rng.normal(size=(20, 256))
    fast = np.sin(2 * np.pi * t / 3)[None] + 0.01 * rng.normal(size=(20, 256))
    slow_meta, fast_meta = meta_features(_dataset(slow)), meta_features(_dataset(fast))
    assert slow_meta["dominant_period"] == pytest.approx(64, rel=0.05)
    assert fast_meta["dominant_period"] == pytest.approx(3, rel=0.05)
    assert slow_meta["spectral_energy_long"] > 0.9 > fast_meta["spectral_energy_long"]
    assert fast_meta["spectral_energy_short"] > 0.9 > slow_meta["spectral_energy_short"]
    assert slow_meta["acf_lag1"] > 0.9


def test_long_range_probe_separates_noise_from_random_walk():
    rng = np.random.default_rng(0)
    noise = rng.normal(size=(30, 512))
    walk = np.cumsum(rng.normal(size=(30, 512)), axis=1)
    noise_meta, walk_meta = meta_features(_dataset(noise)), meta_features(_dataset(walk))
    assert noise_meta["hurst_exponent"] == pytest.approx(0.5, abs=0.1)
    assert walk_meta["hurst_exponent"] > 0.8
    assert walk_meta["acf_long_lag"] > 3 * noise_meta["acf_long_lag"]
    assert meta_features(_dataset(noise[:, :16]))["hurst_exponent"] is None


def test_forecast_meta_uses_the_underlying_series():
    series = np.sin(2 * np.pi * np.arange(300) / 12)
    L, H = 10, 2
    n = 300 - L - H + 1
    X = np.stack([series[i:i + L] for i in range(n)])[:, :, None]
    y = np.stack([series[i + L:i + L + H] for i in range(n)])
    ds = _dataset(X, y.astype(np.float32), task=TaskKind.FORECAST, window=(L, H))
    meta = meta_features(ds)
    assert meta["series_length"] == 300 - H and meta["lookback"] == L and meta["horizon"] == H
    assert meta["dominant_period"] == pytest.approx(12, rel=0.05)


def test_constant_and_tiny_data_do_not_break():
    meta = meta_features(_dataset(np.zeros((3, 2))))
    assert meta["acf_lag1"] is None and meta["dominant_period"] is None
    meta = meta_features(_dataset(np.ones((2, 1))))
    assert meta["seq_len"] == 1


def test_large_data_is_subsampled_quickly():
    import time

    row = np.random.default_rng(0).normal(size=(1, 64, 40)).astype(np.float32)
    X = np.broadcast_to(row, (200_000, 64, 40))  # 2 GB if it were materialised
    ds = SequenceDataset("big", TaskKind.REGRESSION, X, np.zeros(200_000, np.float32))
    start = time.perf_counter()
    meta_features(ds)
    assert time.perf_counter() - start < 5


def test_fingerprint_is_content_based_and_stable():
    a = load_dataset("builtin:parity?length=12&n=30")
    b = load_dataset("builtin:parity?length=12&n=30")
    assert fingerprint(a) == fingerprint(b)
    assert len(fingerprint(a)) == 64 and int(fingerprint(a), 16) >= 0
    assert fingerprint(replace(a, name="renamed")) == fingerprint(a)
    assert fingerprint(load_dataset("builtin:parity?length=12&n=30&seed=1")) != fingerprint(a)
    assert fingerprint(replace(a, task=TaskKind.REGRESSION)) != fingerprint(a)
    X = a.X.copy()
    X[0, 0, 0] += 1
    assert fingerprint(replace(a, X=X)) != fingerprint(a)
    # a known value: guards against accidental changes of the recipe (stable across runs)
    tiny = SequenceDataset("x", TaskKind.REGRESSION, np.zeros((2, 1, 1), np.float32),
                           np.zeros(2, np.float32))
    assert fingerprint(tiny) == \
        "e92f5160ada6f077b483d07bbf56d6b6ebdef5b1775e2bc91c0819c06e60b7ed"


def test_fingerprint_recognises_the_same_file_in_another_format(tmp_path):
    import pandas as pd

    rows = [{"series_id": i, "step": t, "v": float(i * t), "target": i % 2}
            for i in range(8) for t in range(3)]
    pd.DataFrame(rows).to_csv(tmp_path / "d.csv", index=False)
    pd.DataFrame(rows).to_parquet(tmp_path / "d.parquet")
    assert fingerprint(load_dataset(str(tmp_path / "d.csv"))) == \
        fingerprint(load_dataset(str(tmp_path / "d.parquet")))
