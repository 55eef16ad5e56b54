"""The in-memory data contract every loader produces and every trial consumes."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from archsearch.types import TaskKind


@dataclass(frozen=True)
class SequenceDataset:
    """A validated sequence data set.

    ``X`` is float32 ``(N, T, F)``; ``y`` is int64 class indices ``(N,)`` for classification,
    float32 ``(N,)`` for regression, float32 ``(N, H)`` for forecasting. ``lengths`` (``(N,)``,
    1..T) marks ragged sequences padded to T at the end (padding is zero). A fixed test split,
    when given, is used as-is; its class indices use the training ``class_names``.

    Forecasting data sets are the windows of one series, in time order with stride 1:
    ``window = (lookback, horizon)``, window ``i`` reads steps ``i .. i+lookback-1`` and its
    target holds steps ``i+lookback .. i+lookback+horizon-1`` of the target channels, flattened
    horizon-major (``y[i, h * C + c]``). :func:`archsearch.data.splits.prepare` uses ``window`` to
    keep the windows of different splits from sharing any time step. ``n_missing`` counts the
    feature values that were imputed while loading.
    """

    name: str
    task: TaskKind
    X: np.ndarray
    y: np.ndarray
    lengths: np.ndarray | None = None
    X_test: np.ndarray | None = None
    y_test: np.ndarray | None = None
    lengths_test: np.ndarray | None = None
    feature_names: tuple[str, ...] = ()
    class_names: tuple[str, ...] | None = None
    target_name: str = "y"
    window: tuple[int, int] | None = None  # (lookback, horizon) of forecast windows
    n_missing: int = 0  # feature values imputed at load time
    target_channels: tuple[int, ...] = ()  # forecasting: the input channel of each target

    @property
    def n_sequences(self) -> int:
        return int(self.X.shape[0])

    @property
    def seq_len(self) -> int:
        return int(self.X.shape[1])

    @property
    def n_features(self) -> int:
        return int(self.X.shape[2])

    @property
    def n_outputs(self) -> int:
        if self.task is TaskKind.CLASSIFICATION:
            return len(self.class_names or ())
        return 1 if self.y.ndim == 1 else int(self.y.shape[1])


@dataclass(frozen=True)
class Split:
    """One split of prepared (normalised) data."""

    X: np.ndarray  # (n, T, F) float32
    y: np.ndarray  # (n,) or (n, H)
    lengths: np.ndarray  # (n,) int64, 1..T

    def __len__(self) -> int:
        return int(self.X.shape[0])

    def subset(self, max_series: int, seed: int) -> Split:
        """The split itself, or a seeded random subset of ``max_series`` of its series (in
        their order)."""
        if len(self) <= max_series:
            return self
        keep = np.sort(np.random.default_rng(seed).choice(len(self), max_series, replace=False))
        return Split(self.X[keep], self.y[keep], self.lengths[keep])


@dataclass(frozen=True)
class PreparedData:
    """Train/validation/test splits ready for training; put in Ray's object store once."""

    name: str
    task: TaskKind
    train: Split
    val: Split
    test: Split
    n_features: int
    n_outputs: int
    seq_len: int
    # Forecast targets are standardised per target channel with training statistics, so their
    # MSE is in units of the training variance of each channel; raw MSE of channel c is
    # mse_c * target_std[c] ** 2. Regression targets stay in their own units (None here).
    target_mean: np.ndarray | None = None  # (C,) float32
    target_std: np.ndarray | None = None  # (C,) float32
    target_unit: str = "raw"  # "raw" | "standardised"
    # Forecasting: per target channel (its input channel i, a, b) such that a * x[..., i] + b
    # is that input, as normalised, in the target's standardised units (a window's last value
    # as a forecast: see ModelIO.anchors).
    anchors: tuple[tuple[int, float, float], ...] = ()
