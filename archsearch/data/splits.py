"""Seeded train/validation/test splits and normalisation fitted on training data only.

- Classification: stratified (each class split in proportion, seeded).
- Regression: a seeded shuffle.
- Forecasting: windows stay in time order: the most recent windows are the test split, the ones
  before them validation, the rest training. Windows overlap (stride 1), so at each cut the
  ``lookback + horizon - 1`` windows just before it are dropped: no time step, input or target,
  is shared by two splits, and every validation/test step comes after every training step.
- A fixed test split (NPZ ``X_test``, UCR sets) is used as-is; validation comes from training.

Inputs are standardised per channel with the mean and standard deviation of the training
split's valid (non-padding) steps. Forecast targets are standardised per target channel with
the training targets' statistics, so forecast MSE is in units of each channel's training
variance (``PreparedData.target_std`` converts back); regression targets keep their units.
"""

from __future__ import annotations

import numpy as np

from archsearch.data.dataset import PreparedData, SequenceDataset, Split
from archsearch.errors import DataError
from archsearch.types import TaskKind

VAL_FRACTION = 0.2
TEST_FRACTION = 0.2
_CHUNK_ROWS = 4096


def prepare(dataset: SequenceDataset, seed: int) -> PreparedData:
    """Split (stratified for classification, time-ordered for forecasting) and normalise."""
    train_idx, val_idx, test_idx = split_indices(dataset, seed)
    lengths = _lengths_or_full(dataset.lengths, dataset.X)
    train = Split(dataset.X[train_idx], dataset.y[train_idx], lengths[train_idx])
    val = Split(dataset.X[val_idx], dataset.y[val_idx], lengths[val_idx])
    if test_idx is None:  # a fixed test split, used as-is
        test = Split(dataset.X_test, dataset.y_test,
                     _lengths_or_full(dataset.lengths_test, dataset.X_test))
    else:
        test = Split(dataset.X[test_idx], dataset.y[test_idx], lengths[test_idx])
    mean, std = _channel_stats(train)
    target_mean = target_std = None
    unit = "raw"
    anchors: tuple[tuple[int, float, float], ...] = ()
    if dataset.task is TaskKind.FORECAST:
        target_mean, target_std = _target_stats(train.y, dataset.window)
        train, val, test = (_scale_targets(s, target_mean, target_std) for s in (train, val, test))
        unit = "standardised"
        # input x = (raw - mean_i) / std_i, target units (raw - target_mean) / target_std
        anchors = tuple((i, float(std[i] / target_std[k]),
                         float((mean[i] - target_mean[k]) / target_std[k]))
                        for k, i in enumerate(dataset.target_channels))
    return PreparedData(
        name=dataset.name,
        task=dataset.task,
        train=_normalise(train, mean, std),
        val=_normalise(val, mean, std),
        test=_normalise(test, mean, std),
        n_features=dataset.n_features,
        n_outputs=dataset.n_outputs,
        seq_len=dataset.seq_len,
        target_mean=target_mean,
        target_std=target_std,
        target_unit=unit,
        anchors=anchors,
    )


def split_indices(dataset: SequenceDataset, seed: int
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """(train, validation, test) row indices of ``dataset.X``; test is None when the data set
    has a fixed test split. Raises DataError when a split would be empty."""
    n = dataset.n_sequences
    rng = np.random.default_rng(seed)
    if dataset.task is TaskKind.FORECAST:
        train_idx, val_idx, test_idx = forecast_indices(dataset)
        if dataset.X_test is not None:
            test_idx = None
    elif dataset.X_test is not None:
        # A fixed test split is used as-is; validation is carved from the training part only.
        train_idx, val_idx = _split_indices(dataset, np.arange(n), VAL_FRACTION, rng)
        test_idx = None
    else:
        rest_idx, test_idx = _split_indices(dataset, np.arange(n), TEST_FRACTION, rng)
        train_idx, val_idx = _split_indices(dataset, rest_idx, VAL_FRACTION / (1 - TEST_FRACTION),
                                            rng)
    n_test = dataset.X_test.shape[0] if test_idx is None else len(test_idx)
    if len(train_idx) == 0 or len(val_idx) == 0 or n_test == 0:
        needed = "2 in training" if dataset.X_test is not None else "5"
        raise DataError(
            f"data set '{dataset.name}' has {n} sequences: too few to split into train, "
            f"validation and test sets (at least {needed} are needed)."
        )
    return train_idx, val_idx, test_idx


def forecast_indices(dataset: SequenceDataset) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(train, val, test) window indices of a forecasting data set, in time order, with the
    windows that would share a time step across a cut dropped (see the module docstring)."""
    n = dataset.n_sequences
    gap = 0 if dataset.window is None else sum(dataset.window) - 1
    n_val = max(1, int(round(n * VAL_FRACTION)))
    if dataset.X_test is not None:
        n_test, test_start = 0, n
    else:
        n_test = max(1, int(round(n * TEST_FRACTION)))
        test_start = n - n_test
    val_end = test_start - (gap if n_test else 0)
    val_start = val_end - n_val
    train_end = val_start - gap
    if train_end < 1:
        lookback, horizon = dataset.window or (0, 1)
        raise DataError(
            f"data set '{dataset.name}' has {n} forecast windows, too few to keep "
            f"{n_val} for validation and {n_test} for testing with a gap of {gap} windows "
            f"(lookback {lookback} + horizon {horizon} - 1) at each cut so that no time step "
            "leaks between splits; use a smaller lookback or a longer series.")
    return (np.arange(0, train_end), np.arange(val_start, val_end),
            np.arange(test_start, test_start + n_test))


def _lengths_or_full(lengths: np.ndarray | None, X: np.ndarray) -> np.ndarray:
    if lengths is None:
        return np.full(X.shape[0], X.shape[1], dtype=np.int64)
    return lengths.astype(np.int64)


def _split_indices(dataset: SequenceDataset, idx: np.ndarray, fraction: float,
                   rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Return (keep, held_out) index arrays drawn from ``idx``."""
    if dataset.task is TaskKind.CLASSIFICATION:
        keep, held = [], []
        for label in np.unique(dataset.y[idx]):
            members = rng.permutation(idx[dataset.y[idx] == label])
            n_held = int(round(len(members) * fraction))
            if len(members) > 1:
                n_held = min(max(n_held, 1), len(members) - 1)
            held.append(members[:n_held])
            keep.append(members[n_held:])
        keep_idx, held_idx = np.concatenate(keep), np.concatenate(held)
        if len(held_idx) == 0 and len(keep_idx) > 1:
            # Every class has a single member: stratifying is impossible, hold out one anyway.
            pick = rng.integers(len(keep_idx))
            held_idx = keep_idx[pick:pick + 1]
            keep_idx = np.delete(keep_idx, pick)
        return np.sort(keep_idx), np.sort(held_idx)
    shuffled = rng.permutation(idx)
    n_held = max(1, int(round(len(idx) * fraction)))
    return np.sort(shuffled[n_held:]), np.sort(shuffled[:n_held])


def _valid_mask(split: Split) -> np.ndarray:
    steps = np.arange(split.X.shape[1])
    return steps[None, :] < split.lengths[:, None]  # (n, T)


def _channel_stats(train: Split) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and std over the valid steps of the training split (chunked)."""
    F = train.X.shape[2]
    total, total_sq, count = np.zeros(F), np.zeros(F), 0
    for start in range(0, len(train), _CHUNK_ROWS):
        chunk = Split(train.X[start:start + _CHUNK_ROWS], train.y[start:start + _CHUNK_ROWS],
                      train.lengths[start:start + _CHUNK_ROWS])
        values = chunk.X[_valid_mask(chunk)].astype(np.float64)  # (n_valid_steps, F)
        total += values.sum(axis=0)
        total_sq += (values ** 2).sum(axis=0)
        count += values.shape[0]
    mean = total / max(count, 1)
    std = np.sqrt(np.maximum(total_sq / max(count, 1) - mean ** 2, 0.0))
    std[std < 1e-8] = 1.0
    return mean.astype(np.float32), std.astype(np.float32)


def _target_stats(y: np.ndarray, window: tuple[int, int] | None) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and std of (n, H*C) forecast targets (flattened horizon-major)."""
    horizon = 1 if window is None else window[1]
    per_channel = y.reshape(-1, y.shape[1] // horizon).astype(np.float64)  # (n*H, C)
    mean, std = per_channel.mean(axis=0), per_channel.std(axis=0)
    std[std < 1e-8] = 1.0
    return mean.astype(np.float32), std.astype(np.float32)


def _scale_targets(split: Split, mean: np.ndarray, std: np.ndarray) -> Split:
    C = mean.shape[0]
    y = ((split.y.reshape(len(split), -1, C) - mean) / std).reshape(split.y.shape)
    return Split(split.X, y.astype(np.float32), split.lengths)


def _normalise(split: Split, mean: np.ndarray, std: np.ndarray) -> Split:
    X = ((split.X - mean) / std).astype(np.float32)
    X[~_valid_mask(split)] = 0.0  # padding stays exactly zero
    return Split(X, split.y, split.lengths)
