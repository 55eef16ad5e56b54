"""Checks and repairs shared by every loader: finiteness, imputation, lengths, class labels.

Every failure raises :class:`~archsearch.errors.DataError` with one paragraph saying what is
wrong, where, how many, and how to fix it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from archsearch.data.dataset import SequenceDataset
from archsearch.data.limits import DataLimits
from archsearch.errors import DataError
from archsearch.types import TaskKind

_CHUNK_ROWS = 4096

Locate = Callable[[int, int, int], str]  # (sequence, step, channel) -> where, for messages


def quote(name: object, limit: int = 60) -> str:
    """A column or file name made safe for a one-line message (escaped, quoted, shortened)."""
    text = repr(str(name))
    return text if len(text) <= limit else text[: limit - 4] + "...'"


def quote_list(names: list[object] | tuple[object, ...], limit: int = 8) -> str:
    shown = ", ".join(quote(n) for n in list(names)[:limit])
    more = len(names) - limit
    return shown + (f" and {more} more" if more > 0 else "")


def reason_of(exc: BaseException) -> str:
    """The first line of an exception's message (or its type), for quoting in a DataError."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text if len(text) <= 200 else text[:197] + "..."


def default_locate(i: int, t: int, f: int) -> str:
    return f"sequence {i}, step {t}, channel {f}"


def valid_mask(lengths: np.ndarray | None, n: int, T: int) -> np.ndarray:
    """(n, T) bool: True on the steps that belong to each sequence (not padding)."""
    if lengths is None:
        return np.ones((n, T), dtype=bool)
    return np.arange(T)[None, :] < np.asarray(lengths)[:, None]


def check_size(n: int, T: int, F: int, where: str, limits: DataLimits) -> None:
    """Refuse ``n`` sequences x ``T`` steps x ``F`` channels over a data limit, before the
    (padded) array is allocated."""
    limits.check_shape(n, T, F, where)


def check_lengths(lengths: np.ndarray, n: int, T: int, where: str, name: str = "lengths"
                  ) -> np.ndarray:
    """Validate a ``lengths`` array: integer, shape (n,), every value in 1..T."""
    if lengths.ndim != 1 or lengths.shape[0] != n:
        raise DataError(f"{where}: {name} has shape {lengths.shape}; it must be ({n},), one "
                        "length per sequence.")
    if lengths.dtype.kind not in "iu":
        raise DataError(f"{where}: {name} has dtype {lengths.dtype}; it must hold integers "
                        f"(the number of valid steps of each sequence, 1..{T}).")
    bad = np.flatnonzero((lengths < 1) | (lengths > T))
    if len(bad):
        i = int(bad[0])
        raise DataError(f"{where}: {len(bad)} value(s) of {name} lie outside 1..{T} (the padded "
                        f"length); the first is {name}[{i}] = {int(lengths[i])}. Each length "
                        "counts the valid steps at the start of its padded sequence.")
    return lengths.astype(np.int64)


@dataclass(frozen=True)
class NonFinite:
    n_nan: int
    n_inf: int
    first_nan: tuple[int, ...] | None
    first_inf: tuple[int, ...] | None


def scan_nonfinite(X: np.ndarray, lengths: np.ndarray | None = None) -> NonFinite:
    """Count NaN and infinite values of a (N, T, F) array on its valid steps, in row chunks."""
    n_nan = n_inf = 0
    first_nan = first_inf = None
    for start in range(0, X.shape[0], _CHUNK_ROWS):
        block = np.asarray(X[start:start + _CHUNK_ROWS])
        nan = np.isnan(block)
        inf = np.isinf(block)
        if lengths is not None:
            valid = valid_mask(lengths[start:start + _CHUNK_ROWS], block.shape[0],
                               block.shape[1])[:, :, None]
            nan &= valid
            inf &= valid
        k_nan, k_inf = int(nan.sum()), int(inf.sum())
        if k_nan and first_nan is None:
            first_nan = tuple(int(v) for v in np.argwhere(nan)[0])
            first_nan = (first_nan[0] + start, *first_nan[1:])
        if k_inf and first_inf is None:
            first_inf = tuple(int(v) for v in np.argwhere(inf)[0])
            first_inf = (first_inf[0] + start, *first_inf[1:])
        n_nan += k_nan
        n_inf += k_inf
    return NonFinite(n_nan, n_inf, first_nan, first_inf)


def clean_features(X: np.ndarray, lengths: np.ndarray | None, where: str, impute_method: str | None,
                   *, causal: bool = False, locate: Locate = default_locate,
                   name: str = "X") -> tuple[np.ndarray, int]:
    """Refuse infinities, impute or refuse NaN, zero the padding; return (X float32, n_imputed).

    ``X`` is (N, T, F). Values on padding steps (beyond ``lengths``) may be anything, NaN
    included; they are set to zero.
    """
    with np.errstate(over="ignore"):  # values beyond float32 become inf, refused below
        X = X.astype(np.float32, copy=False)
    report = scan_nonfinite(X, lengths)
    if report.n_inf:
        raise DataError(f"{where}: {report.n_inf} infinite value(s) (or values too large for "
                        f"float32) in {name}, the first at {locate(*report.first_inf)}; "
                        "infinities are never imputed: fix or remove them at the source.")
    if report.n_nan and impute_method is None:
        total = int(valid_mask(lengths, X.shape[0], X.shape[1]).sum()) * X.shape[2]
        raise DataError(f"{where}: {report.n_nan} NaN value(s) in {name} "
                        f"({report.n_nan / max(total, 1):.2%} of its values), the first at "
                        f"{locate(*report.first_nan)}; remove them, or fill them with "
                        "--impute zero|ffill|mean.")
    if report.n_nan:
        X = impute(X, lengths, impute_method, causal=causal)
    if lengths is not None:
        pad = ~valid_mask(lengths, X.shape[0], X.shape[1])
        if pad.any() and np.any(X[pad] != 0):
            X = np.array(X, dtype=np.float32)  # a writable copy (X may be a read-only map)
            X[pad] = 0.0
    return X, report.n_nan


def impute(X: np.ndarray, lengths: np.ndarray | None, method: str, *, causal: bool = False
           ) -> np.ndarray:
    """Fill the NaN values of (N, T, F) ``X`` on its valid steps, each sequence on its own.

    - ``zero``: 0.
    - ``ffill``: the last observed value of the same channel in the same sequence.
    - ``mean``: the mean of the observed values of the channel in the same sequence; with
      ``causal=True`` (forecasting, where one series is split in time) only values observed
      before the gap count, so nothing is borrowed from the future.
    Gaps at the start of a sequence (nothing observed before them) take the first observed
    value for ``ffill`` and ``mean``; a channel never observed in a sequence gets 0.
    """
    X = np.array(X, dtype=np.float32)  # a writable copy
    nan = np.isnan(X)
    valid = valid_mask(lengths, X.shape[0], X.shape[1])[:, :, None]
    nan &= valid
    if method == "zero":
        X[nan] = 0.0
        return X
    observed = ~np.isnan(X) & valid  # (N, T, F)
    steps = np.arange(X.shape[1])[None, :, None]
    values = np.where(observed, X, 0.0).astype(np.float64)
    if method == "ffill":
        last = np.maximum.accumulate(np.where(observed, steps, -1), axis=1)  # (N, T, F)
        rows = np.arange(X.shape[0])[:, None, None]
        cols = np.arange(X.shape[2])[None, None, :]
        filled = X[rows, np.maximum(last, 0), cols]
        before_any = last < 0
    elif method == "mean":
        if causal:
            total = np.cumsum(values, axis=1)
            count = np.cumsum(observed, axis=1)
            filled = (total / np.maximum(count, 1)).astype(np.float32)
            before_any = count == 0
        else:
            count = observed.sum(axis=1, keepdims=True)
            mean = values.sum(axis=1, keepdims=True) / np.maximum(count, 1)
            filled = np.broadcast_to(mean, X.shape).astype(np.float32)
            before_any = np.broadcast_to(count == 0, X.shape)
    else:  # pragma: no cover - LoadOptions validates the method
        raise DataError(f"unknown impute method '{method}'.")
    out = np.where(nan, filled, X)
    # Leading gaps: the first observed value of that channel in that sequence (0 if none).
    first_idx = np.argmax(observed, axis=1)[:, None, :]  # (N, 1, F)
    first_val = np.take_along_axis(np.where(observed, X, 0.0), first_idx, axis=1)
    lead = nan & before_any
    out = np.where(lead, np.broadcast_to(first_val, X.shape), out)
    out[np.isnan(out) & valid] = 0.0
    return out.astype(np.float32)


def infer_task(y: np.ndarray, task: TaskKind | None, where: str) -> TaskKind:
    """Integer, boolean and string labels mean classification; floats mean regression."""
    if task is None:
        return TaskKind.CLASSIFICATION if y.dtype.kind in "biuUS" else TaskKind.REGRESSION
    if task is TaskKind.REGRESSION and y.dtype.kind in "US":
        raise DataError(f"{where}: the targets are strings, so they cannot be regressed; use "
                        "--task classification, or give numeric targets.")
    return task


def check_target(y: np.ndarray, where: str, name: str = "y") -> None:
    """Refuse non-numeric, non-string, NaN or infinite targets."""
    if y.dtype.kind not in "biufUS":
        raise DataError(f"{where}: {name} has dtype {y.dtype}; targets must be numbers or "
                        "fixed-width strings (class labels).")
    if y.dtype.kind == "f":
        bad = ~np.isfinite(y)
        if bad.any():
            i = int(np.flatnonzero(bad.reshape(-1))[0])
            raise DataError(f"{where}: {name} holds {int(bad.sum())} NaN or infinite value(s) "
                            f"(the first at flat index {i}); targets are never imputed: "
                            "remove those sequences or fix their targets.")


def float32_targets(y: np.ndarray, where: str, name: str = "y") -> np.ndarray:
    """Numeric targets as float32, what training uses; refused when a value is beyond float32's
    range (it would become infinite: about 3.4e38)."""
    check_target(y, where, name)
    with np.errstate(over="ignore"):
        y32 = y.astype(np.float32)
    if y.dtype.kind == "f" and not np.isfinite(y32).all():
        i = int(np.flatnonzero(~np.isfinite(y32.reshape(-1)))[0])
        raise DataError(f"{where}: {name} holds values too large for float32 (beyond about "
                        f"3.4e38; the first at flat index {i}); rescale the targets.")
    return y32


def _label_text(label: object) -> str:
    if isinstance(label, bytes):
        return label.decode("utf-8", "replace")
    if isinstance(label, np.generic):
        label = label.item()
    return str(label)


def encode_labels(y: np.ndarray, where: str, y_test: np.ndarray | None = None,
                  test_where: str = "y_test"
                  ) -> tuple[np.ndarray, np.ndarray | None, tuple[str, ...]]:
    """Map class labels to indices 0..K-1 (sorted labels); the test split uses the same map."""
    labels, y_idx = np.unique(y, return_inverse=True)
    if len(labels) < 2:
        only = quote(_label_text(labels[0]))
        raise DataError(f"{where}: every target has the same class ({only}); classification "
                        "needs at least two classes (or use --task regression for numeric "
                        "targets).")
    names = tuple(_label_text(label) for label in labels)
    if len(set(names)) != len(names):
        raise DataError(f"{where}: distinct class labels print the same way ({quote_list(names)});"
                        " give the classes distinct names.")
    test_idx = None
    if y_test is not None:
        numeric = set("biuf")
        if (y.dtype.kind in numeric) != (y_test.dtype.kind in numeric) or \
                (y.dtype.kind not in numeric and y.dtype.kind != y_test.dtype.kind):
            raise DataError(f"{where}: the training labels have dtype {y.dtype} but {test_where} "
                            f"has dtype {y_test.dtype}; both splits must use the same labels.")
        pos = np.clip(np.searchsorted(labels, y_test), 0, len(labels) - 1)
        unseen = labels[pos] != y_test
        if unseen.any():
            missing = sorted({_label_text(v) for v in y_test[unseen]})
            raise DataError(f"{where}: {int(unseen.sum())} test target(s) carry labels never "
                            f"seen in training: {quote_list(missing)}; the model can only "
                            f"predict the training classes ({quote_list(names)}).")
        test_idx = pos.astype(np.int64)
    return y_idx.reshape(-1).astype(np.int64), test_idx, names


def check_dataset(dataset: SequenceDataset, limits: DataLimits, where: str) -> None:
    """The limits every loaded data set must meet (whatever its source), then its targets
    (:func:`check_learnable`)."""
    n_test = 0 if dataset.X_test is None else int(dataset.X_test.shape[0])
    limits.check_shape(dataset.n_sequences, dataset.seq_len, dataset.n_features, where, n_test)
    if dataset.class_names is not None:
        k = len(dataset.class_names)
        limits.check("max_classes", k, where, f"has {k:,} classes")
    check_learnable(dataset, where)


def check_learnable(dataset: SequenceDataset, where: str) -> None:
    """Refuse targets that leave nothing to learn (see docs/data-limits.md).

    - Classification where every class has a single sequence (e.g. a label per series): no
      class could be both trained on and validated on. Some classes of one sequence are kept
      (the stratified split keeps them in training), and cross-validation then uses plain
      folds.
    - Regression or forecasting where every training target has the same value.
    """
    y = dataset.y
    if y.size == 0:
        return
    target = quote(dataset.target_name)
    if dataset.task is TaskKind.CLASSIFICATION:
        counts = np.bincount(y.astype(np.int64))
        present = np.flatnonzero(counts)
        if counts.max() < 2:
            names = dataset.class_names or tuple(str(i) for i in range(len(counts)))
            shown = quote_list([names[i] for i in present[:3]], limit=3)
            split = "training " if dataset.X_test is not None else ""
            raise DataError(
                f"{where}: each of its {len(y):,} {split}sequences has a class of its own "
                f"({len(present):,} classes, e.g. {shown}), so no class can be both trained on "
                f"and validated on: there is nothing to learn. The target {target} looks like "
                "a per-sequence identifier; give a target that groups the sequences into "
                "classes of two or more (--target), or --task regression for a numeric target.")
        return
    first = y.reshape(-1)[0]
    if np.all(y == first):
        kind = "forecast target" if dataset.task is TaskKind.FORECAST else "target"
        raise DataError(
            f"{where}: every {kind} value ({target}) is {float(first):g}, over all "
            f"{len(y):,} sequences: a constant target leaves nothing to learn, and every model "
            "would score the same. Check that --target names the column you mean, or that the "
            "file holds the values you expect.")
