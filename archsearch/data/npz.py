"""Loader for the NPZ contract: ``X`` (N, T[, F]), ``y`` (N,), optional ``lengths``."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from archsearch.data.dataset import SequenceDataset
from archsearch.errors import DataError
from archsearch.types import TaskKind


def load_npz(path: Path, task: TaskKind | None) -> SequenceDataset:
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {key: archive[key] for key in archive.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DataError(f"cannot read '{path}' as an NPZ archive ({reason}).") from None
    for key in ("X", "y"):
        if key not in arrays:
            raise DataError(
                f"'{path}' has no array '{key}' (found: {', '.join(arrays) or 'none'}); an NPZ "
                "data set needs X with shape (N, T) or (N, T, F) and y with shape (N,)."
            )
    X = _as_3d(arrays["X"], "X", path)
    y = arrays["y"]
    if y.ndim != 1 or y.shape[0] != X.shape[0]:
        raise DataError(f"'{path}': y has shape {y.shape}; it must be ({X.shape[0]},), one "
                        "target per sequence in X.")
    if y.dtype.kind not in "biuf":
        raise DataError(f"'{path}': y has dtype {y.dtype}; numeric targets are required.")
    lengths = arrays.get("lengths")
    if lengths is not None:
        lengths = _check_lengths(lengths, X, path)
    if not np.isfinite(X).all():
        bad = np.argwhere(~np.isfinite(X))
        raise DataError(f"'{path}': X holds {len(bad)} NaN or infinite values (first at index "
                        f"{tuple(int(i) for i in bad[0])}); remove or impute them.")
    if not np.isfinite(y.astype(np.float64)).all():
        raise DataError(f"'{path}': y holds NaN or infinite values.")
    if task is None:
        task = TaskKind.CLASSIFICATION if y.dtype.kind in "biu" else TaskKind.REGRESSION
    class_names = None
    if task is TaskKind.CLASSIFICATION:
        labels, y = np.unique(y, return_inverse=True)
        if len(labels) < 2:
            raise DataError(f"'{path}': y has a single class ({labels[0]}); classification "
                            "needs at least two.")
        class_names = tuple(str(label) for label in labels)
        y = y.astype(np.int64)
    else:
        y = y.astype(np.float32)
    return SequenceDataset(
        name=path.name,
        task=task,
        X=X,
        y=y,
        lengths=lengths,
        feature_names=tuple(f"x{i}" for i in range(X.shape[2])),
        class_names=class_names,
    )


def _as_3d(X: np.ndarray, key: str, path: Path) -> np.ndarray:
    if X.dtype.kind not in "biuf":
        raise DataError(f"'{path}': {key} has dtype {X.dtype}; a numeric array is required.")
    if X.ndim == 2:
        X = X[:, :, None]
    if X.ndim != 3:
        raise DataError(f"'{path}': {key} has shape {X.shape}; it must be (N, T) or (N, T, F).")
    if 0 in X.shape:
        raise DataError(f"'{path}': {key} has shape {X.shape}; it holds no data.")
    return X.astype(np.float32)


def _check_lengths(lengths: np.ndarray, X: np.ndarray, path: Path) -> np.ndarray:
    if lengths.ndim != 1 or lengths.shape[0] != X.shape[0] or lengths.dtype.kind not in "iu":
        raise DataError(f"'{path}': lengths must be an integer array of shape ({X.shape[0]},).")
    if lengths.min() < 1 or lengths.max() > X.shape[1]:
        raise DataError(f"'{path}': lengths must lie in 1..{X.shape[1]} (found "
                        f"{lengths.min()}..{lengths.max()}).")
    return lengths.astype(np.int64)
