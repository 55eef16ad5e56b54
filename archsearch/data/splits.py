"""Seeded train/validation/test splits and normalisation fitted on training data only."""

from __future__ import annotations

import numpy as np

from archsearch.data.dataset import PreparedData, SequenceDataset, Split
from archsearch.errors import DataError
from archsearch.types import TaskKind

VAL_FRACTION = 0.2
TEST_FRACTION = 0.2


def prepare(dataset: SequenceDataset, seed: int) -> PreparedData:
    """Split (stratified for classification, time-ordered for forecasting) and normalise."""
    n = dataset.n_sequences
    lengths = _lengths_or_full(dataset.lengths, dataset.X)
    rng = np.random.default_rng(seed)
    if dataset.X_test is not None:
        # A fixed test split is used as-is; validation is carved from the training part only.
        train_idx, val_idx = _split_indices(dataset, np.arange(n), VAL_FRACTION, rng)
        test = Split(dataset.X_test, dataset.y_test, _lengths_or_full(dataset.lengths_test,
                                                                        dataset.X_test))
    else:
        rest_idx, test_idx = _split_indices(dataset, np.arange(n), TEST_FRACTION, rng)
        train_idx, val_idx = _split_indices(dataset, rest_idx, VAL_FRACTION / (1 - TEST_FRACTION),
                                            rng)
        test = Split(dataset.X[test_idx], dataset.y[test_idx], lengths[test_idx])
    train = Split(dataset.X[train_idx], dataset.y[train_idx], lengths[train_idx])
    val = Split(dataset.X[val_idx], dataset.y[val_idx], lengths[val_idx])
    if len(train) == 0 or len(val) == 0 or len(test) == 0:
        raise DataError(
            f"data set '{dataset.name}' has {n} sequences: too few to split into train, "
            "validation and test sets (at least 5 are needed)."
        )
    mean, std = _channel_stats(train)
    return PreparedData(
        name=dataset.name,
        task=dataset.task,
        train=_normalise(train, mean, std),
        val=_normalise(val, mean, std),
        test=_normalise(test, mean, std),
        n_features=dataset.n_features,
        n_outputs=dataset.n_outputs,
        seq_len=dataset.seq_len,
    )


def _lengths_or_full(lengths: np.ndarray | None, X: np.ndarray) -> np.ndarray:
    if lengths is None:
        return np.full(X.shape[0], X.shape[1], dtype=np.int64)
    return lengths.astype(np.int64)


def _split_indices(dataset: SequenceDataset, idx: np.ndarray, fraction: float,
                   rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Return (keep, held_out) index arrays drawn from ``idx``."""
    if dataset.task is TaskKind.FORECAST:
        # Windows are in time order: hold out the most recent ones, never shuffle (no leakage).
        cut = len(idx) - max(1, int(round(len(idx) * fraction)))
        return idx[:cut], idx[cut:]
    if dataset.task is TaskKind.CLASSIFICATION:
        keep, held = [], []
        for label in np.unique(dataset.y[idx]):
            members = rng.permutation(idx[dataset.y[idx] == label])
            n_held = int(round(len(members) * fraction))
            if len(members) > 1:
                n_held = min(max(n_held, 1), len(members) - 1)
            held.append(members[:n_held])
            keep.append(members[n_held:])
        return np.sort(np.concatenate(keep)), np.sort(np.concatenate(held))
    shuffled = rng.permutation(idx)
    n_held = max(1, int(round(len(idx) * fraction)))
    return np.sort(shuffled[n_held:]), np.sort(shuffled[:n_held])


def _valid_mask(split: Split) -> np.ndarray:
    steps = np.arange(split.X.shape[1])
    return steps[None, :] < split.lengths[:, None]  # (n, T)


def _channel_stats(train: Split) -> tuple[np.ndarray, np.ndarray]:
    values = train.X[_valid_mask(train)]  # (n_valid_steps, F)
    mean = values.mean(axis=0)
    std = values.std(axis=0)
    std[std < 1e-8] = 1.0
    return mean.astype(np.float32), std.astype(np.float32)


def _normalise(split: Split, mean: np.ndarray, std: np.ndarray) -> Split:
    X = ((split.X - mean) / std).astype(np.float32)
    X[~_valid_mask(split)] = 0.0  # padding stays exactly zero
    return Split(X, split.y, split.lengths)
