"""Meta-features (for the recommender and the report) and a content fingerprint.

:func:`meta_features` is cheap: the signal statistics look at a seeded subsample of at most
``MAX_SEQUENCES`` sequences and ``MAX_CHANNELS`` channels, on their valid (non-padding) steps.
A forecasting data set is described through its underlying series (rebuilt from the windows),
not through the overlapping windows. Every value is a JSON-friendly int, float, str, bool or
None (None: not defined for this data set, e.g. class counts of a regression task).

Fields:
- ``task``, ``n_sequences`` (training part), ``n_test_sequences`` (fixed test split, else 0),
  ``n_features`` (channels), ``n_outputs``, ``seq_len`` (padded), ``length_min/max/mean/std``,
  ``ragged``, ``padding_ratio`` (padding steps / all steps).
- ``n_classes``, ``class_imbalance`` (largest / smallest class count), ``majority_fraction``,
  ``minority_fraction``; ``target_mean``, ``target_std`` (regression, forecast).
- ``lookback``, ``horizon``, ``series_length`` (forecast).
- ``missing_ratio``: values imputed at load time / all valid feature values.
- ``acf_lag1``: mean lag-1 autocorrelation.
- ``dominant_period`` (steps) and ``dominant_period_power`` (its share of the spectrum), from
  the mean normalised power spectrum of the linearly detrended sequences (DC excluded).
- ``spectral_energy_long``: share of spectral power at long lags (periods >= max(8, T/8)
  steps); ``spectral_energy_short``: at short lags (periods <= 4 steps).
- Long-range-dependency probe: ``acf_long_lag``, the mean |autocorrelation| at lags T/4..T/2
  (about 1/sqrt(T) for white noise), and ``hurst_exponent`` from the aggregated-variance method
  (0.5 no memory, > 0.5 persistent long memory; None for sequences shorter than 32 steps).
"""

from __future__ import annotations

import hashlib

import numpy as np

from archsearch.data.dataset import SequenceDataset
from archsearch.types import TaskKind

MAX_SEQUENCES = 256
MAX_CHANNELS = 16
MAX_SERIES_STEPS = 1 << 16
FINGERPRINT_VERSION = b"archsearch-dataset-v1"

MetaValue = float | int | str | bool | None


def meta_features(dataset: SequenceDataset) -> dict[str, MetaValue]:
    """Describe ``dataset`` (see the module docstring for the fields)."""
    n, T, F = dataset.X.shape
    lengths = _lengths(dataset.lengths, n, T)
    test_lengths = (None if dataset.X_test is None
                    else _lengths(dataset.lengths_test, dataset.X_test.shape[0], T))
    all_lengths = lengths if test_lengths is None else np.concatenate([lengths, test_lengths])
    out: dict[str, MetaValue] = {
        "task": dataset.task.value,
        "n_sequences": int(n),
        "n_test_sequences": 0 if dataset.X_test is None else int(dataset.X_test.shape[0]),
        "n_features": int(F),
        "n_outputs": int(dataset.n_outputs),
        "seq_len": int(T),
        "length_min": int(all_lengths.min()),
        "length_max": int(all_lengths.max()),
        "length_mean": float(all_lengths.mean()),
        "length_std": float(all_lengths.std()),
        "ragged": bool((all_lengths < T).any()),
        "padding_ratio": float(1.0 - all_lengths.sum() / (len(all_lengths) * T)),
        "missing_ratio": float(dataset.n_missing / max(int(all_lengths.sum()) * F, 1)),
    }
    out.update(_target_features(dataset))
    out["lookback"], out["horizon"] = dataset.window if dataset.window else (None, None)
    series = _series_sample(dataset, lengths)
    out["series_length"] = int(series[0].shape[0]) if dataset.window else None
    out.update(_signal_features(series))
    return out


def fingerprint(dataset: SequenceDataset) -> str:
    """sha256 (hex) of the task and the content arrays (not the name): equal data, equal print."""
    digest = hashlib.sha256(FINGERPRINT_VERSION)
    digest.update(dataset.task.value.encode())
    digest.update(repr(dataset.window).encode())
    digest.update(repr(dataset.class_names).encode())
    for key in ("X", "y", "lengths", "X_test", "y_test", "lengths_test"):
        array = getattr(dataset, key)
        if array is None:
            digest.update(f"{key}:none;".encode())
            continue
        digest.update(f"{key}:{array.dtype.str}:{array.shape};".encode())
        for start in range(0, max(array.shape[0], 1), 4096):
            digest.update(np.ascontiguousarray(array[start:start + 4096]).tobytes())
    return digest.hexdigest()


def _lengths(lengths: np.ndarray | None, n: int, T: int) -> np.ndarray:
    return np.full(n, T, dtype=np.int64) if lengths is None else np.asarray(lengths, np.int64)


def _target_features(dataset: SequenceDataset) -> dict[str, MetaValue]:
    out: dict[str, MetaValue] = dict.fromkeys(
        ("n_classes", "class_imbalance", "majority_fraction", "minority_fraction",
         "target_mean", "target_std"))
    if dataset.task is TaskKind.CLASSIFICATION:
        counts = np.bincount(dataset.y.astype(np.int64), minlength=dataset.n_outputs)
        present = counts[counts > 0]
        out["n_classes"] = int(dataset.n_outputs)
        out["class_imbalance"] = float(present.max() / present.min())
        out["majority_fraction"] = float(present.max() / counts.sum())
        out["minority_fraction"] = float(present.min() / counts.sum())
    else:
        y = dataset.y.astype(np.float64)
        out["target_mean"] = float(y.mean())
        out["target_std"] = float(y.std())
    return out


def _series_sample(dataset: SequenceDataset, lengths: np.ndarray) -> list[np.ndarray]:
    """A seeded subsample of (length_i, channels) float64 series, valid steps only."""
    X = dataset.X
    channels = np.arange(X.shape[2])
    if len(channels) > MAX_CHANNELS:
        channels = np.sort(np.random.default_rng(1).choice(channels, MAX_CHANNELS, replace=False))
    if dataset.window is not None:
        # Windows of one series with stride 1: the series is the first window plus the last
        # step of every later window.
        series = np.concatenate([X[0], X[1:, -1]], axis=0)[:, channels]
        return [series[-MAX_SERIES_STEPS:].astype(np.float64)]
    n = X.shape[0]
    rows = np.arange(n)
    if n > MAX_SEQUENCES:
        rows = np.sort(np.random.default_rng(0).choice(n, MAX_SEQUENCES, replace=False))
    return [np.asarray(X[i, :lengths[i]][:, channels], dtype=np.float64) for i in rows]


def _signal_features(series: list[np.ndarray]) -> dict[str, MetaValue]:
    T = max(s.shape[0] for s in series)
    grid = np.fft.rfftfreq(T)[1:]  # cycles per step, DC excluded
    spectrum = np.zeros(len(grid))
    n_spectra = 0
    lag1, long_lag, hursts = [], [], []
    for s in series:
        L = s.shape[0]
        x = s - s.mean(axis=0)
        var = (x ** 2).sum(axis=0)
        live = var > 1e-12 * max(L, 1)
        if L < 3 or not live.any():
            continue
        x, var = x[:, live], var[live]
        n_fft = 1 << int(np.ceil(np.log2(2 * L)))
        f = np.fft.rfft(x, n=n_fft, axis=0)
        acf = np.fft.irfft(np.abs(f) ** 2, n=n_fft, axis=0)[:L] / var  # (L, C)
        lag1.append(float(acf[1].mean()))
        lo, hi = max(2, L // 4), L // 2
        if hi > lo:
            long_lag.append(float(np.abs(acf[lo:hi + 1]).mean()))
        power = np.abs(np.fft.rfft(_detrend(x), axis=0)[1:]) ** 2  # (L//2, C)
        power = power / np.maximum(power.sum(axis=0, keepdims=True), 1e-300)
        freqs = np.fft.rfftfreq(L)[1:]
        if len(freqs) and len(grid):
            mean_power = power.mean(axis=1)
            spectrum += np.interp(grid, freqs, mean_power) if L != T else mean_power
            n_spectra += 1
        if L >= 32:
            hursts.append(_hurst(x))
    out: dict[str, MetaValue] = {
        "acf_lag1": _mean(lag1),
        "dominant_period": None,
        "dominant_period_power": None,
        "spectral_energy_long": None,
        "spectral_energy_short": None,
        "acf_long_lag": _mean(long_lag),
        "hurst_exponent": _mean([h for h in hursts if h is not None]),
    }
    if n_spectra:
        spectrum /= max(spectrum.sum(), 1e-300)
        k = int(np.argmax(spectrum))
        periods = 1.0 / grid
        out["dominant_period"] = float(periods[k])
        out["dominant_period_power"] = float(spectrum[k])
        out["spectral_energy_long"] = float(spectrum[periods >= max(8.0, T / 8)].sum())
        out["spectral_energy_short"] = float(spectrum[periods <= 4.0].sum())
    return out


def _detrend(x: np.ndarray) -> np.ndarray:
    """Remove each channel's least-squares line, so a trend does not pose as the longest period."""
    t = np.arange(x.shape[0], dtype=np.float64)
    t -= t.mean()
    slope = (t[:, None] * x).sum(axis=0) / max((t ** 2).sum(), 1e-300)
    return x - t[:, None] * slope


def _hurst(x: np.ndarray) -> float | None:
    """Aggregated-variance Hurst estimate of a centred (L, C) series, averaged over channels."""
    L = x.shape[0]
    sizes = [m for m in (2 ** k for k in range(int(np.log2(L // 4)) + 1)) if L // m >= 4]
    if len(sizes) < 3:
        return None
    variances = []
    for m in sizes:
        blocks = x[: (L // m) * m].reshape(L // m, m, -1).mean(axis=1)  # (L//m, C)
        variances.append(blocks.var(axis=0))
    variances = np.array(variances)  # (len(sizes), C)
    variances = variances[:, (variances > 1e-12).all(axis=0)]
    if variances.shape[1] == 0:
        return None
    slope = np.polyfit(np.log(sizes), np.log(variances), 1)[0]  # (C,)
    return float(np.clip(1.0 + slope / 2.0, 0.0, 1.0).mean())


def _mean(values: list[float]) -> float | None:
    values = [v for v in values if np.isfinite(v)]
    return float(np.mean(values)) if values else None
