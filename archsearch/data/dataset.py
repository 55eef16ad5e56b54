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
    1..T) marks ragged sequences padded to T. A fixed test split, when given, is used as-is.
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
