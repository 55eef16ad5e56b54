"""Loader for the NPZ contract.

``X`` float (N, T, F) or (N, T); ``y`` (N,) integer or string class labels, or float targets;
optional ``lengths`` (N,) for ragged sequences padded to T; optional fixed test split
``X_test``, ``y_test``, ``lengths_test`` (used as-is for the test score). Nothing is ever
unpickled (``allow_pickle=False``); object arrays are refused. Large uncompressed members
(``np.savez``, not ``np.savez_compressed``) are memory-mapped instead of read into memory.
Every member's header is read first: the data limits (inflated size, sequences, steps,
channels) and the X/y shapes are checked on the declared shapes before any data is inflated.
"""

from __future__ import annotations

import math
import struct
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from archsearch.data.dataset import SequenceDataset
from archsearch.data.limits import MIB, DataLimits
from archsearch.data.options import LoadOptions
from archsearch.data.validate import (
    check_lengths,
    check_target,
    clean_features,
    encode_labels,
    float32_targets,
    infer_task,
    quote,
    quote_list,
    reason_of,
)
from archsearch.errors import DataError
from archsearch.types import TaskKind

KNOWN_ARRAYS = ("X", "y", "lengths", "X_test", "y_test", "lengths_test")
_READ_ERRORS = (ValueError, OSError, EOFError, zipfile.BadZipFile, struct.error, KeyError,
                SyntaxError, TypeError, OverflowError, NotImplementedError, RuntimeError)
# Uncompressed members at least this large are memory-mapped rather than read.
MMAP_MIN_BYTES = 64 * 2**20
_CONTRACT = ("an NPZ data set holds X (N, T) or (N, T, F), y (N,), optionally lengths (N,), and "
             "optionally a fixed test split X_test, y_test, lengths_test")


def load_npz(path: Path, options: LoadOptions | None = None) -> SequenceDataset:
    """Read and validate an NPZ data set (see the module docstring for the contract)."""
    options = options or LoadOptions()
    where = quote(path.name)
    if options.task is TaskKind.FORECAST:
        raise DataError(f"{where}: forecasting reads a CSV or Parquet series (a time column and "
                        "value columns); an NPZ file holds one target per sequence, so use "
                        "--task classification or regression with it.")
    set_options = options.non_default(ignore=("task", "impute"))
    if set_options:
        raise DataError(f"{where}: the option(s) {', '.join(set_options)} apply to CSV/Parquet "
                        f"files only; {_CONTRACT}.")
    arrays = _read_arrays(path, where, options.limits)
    for key in ("X", "y"):
        if key not in arrays:
            raise DataError(f"{where} has no array '{key}' (found: "
                            f"{quote_list(sorted(arrays)) or 'none'}); {_CONTRACT}.")
    if ("X_test" in arrays) != ("y_test" in arrays):
        have, lack = ("X_test", "y_test") if "X_test" in arrays else ("y_test", "X_test")
        raise DataError(f"{where} has {have} but no {lack}; a fixed test split needs both.")
    if "lengths_test" in arrays and "X_test" not in arrays:
        raise DataError(f"{where} has lengths_test but no X_test and y_test.")
    if "lengths_test" in arrays and "lengths" not in arrays:
        raise DataError(f"{where} has lengths_test but no lengths; give both or neither.")

    X = _as_3d(arrays["X"], "X", where)
    n, T, F = X.shape
    y = _as_targets(arrays["y"], n, "y", where)
    lengths = None
    if "lengths" in arrays:
        lengths = check_lengths(arrays["lengths"], n, T, where)
    X, n_missing = clean_features(X, lengths, where, options.impute)

    X_test = y_test = lengths_test = None
    if "X_test" in arrays:
        X_test = _as_3d(arrays["X_test"], "X_test", where)
        if X_test.shape[1:] != (T, F):
            raise DataError(f"{where}: X_test has {X_test.shape[1]} steps x {X_test.shape[2]} "
                            f"channels per sequence but X has {T} x {F}; the test split must "
                            "have the training shape (pad shorter sequences to the same length "
                            "and give lengths / lengths_test).")
        y_test = _as_targets(arrays["y_test"], X_test.shape[0], "y_test", where)
        if "lengths_test" in arrays:
            lengths_test = check_lengths(arrays["lengths_test"], X_test.shape[0], T, where,
                                         "lengths_test")
        X_test, missing_test = clean_features(X_test, lengths_test, where, options.impute,
                                              name="X_test")
        n_missing += missing_test

    task = infer_task(y, options.task, where)
    class_names = None
    if task is TaskKind.CLASSIFICATION:
        y, y_test, class_names = encode_labels(y, where, y_test)
    else:
        if y_test is not None and y_test.dtype.kind in "US":
            raise DataError(f"{where}: y is numeric but y_test holds strings; both splits must "
                            "use the same kind of target.")
        y = float32_targets(y, where)
        y_test = None if y_test is None else float32_targets(y_test, where, "y_test")
    return SequenceDataset(
        name=path.name,
        task=task,
        X=X,
        y=y,
        lengths=lengths,
        X_test=X_test,
        y_test=y_test,
        lengths_test=lengths_test,
        feature_names=tuple(f"x{i}" for i in range(F)),
        class_names=class_names,
        n_missing=n_missing,
    )


@dataclass(frozen=True)
class _Header:
    """What a member's ``.npy`` header declares, read before any of its data."""

    shape: tuple[int, ...]
    fortran: bool
    dtype: np.dtype
    length: int  # bytes of the header

    @property
    def nbytes(self) -> int:
        return math.prod(self.shape) * self.dtype.itemsize  # exact: a forged shape cannot overflow


def _read_arrays(path: Path, where: str, limits: DataLimits) -> dict[str, np.ndarray]:
    """Read the contract's arrays, refusing object arrays and anything not in the contract.

    Every member's header is read and checked (dtype, declared vs stored size, the data limits,
    X/y shapes) before any member's data is inflated."""
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, ValueError) as exc:
        raise DataError(f"cannot read {where} as an NPZ archive ({reason_of(exc)}); the file is "
                        "corrupt, truncated, or not an .npz file (save one with numpy.savez)."
                        ) from None
    with archive:
        members = {info.filename: info for info in archive.infolist()}
        keys = {name[:-4]: info for name, info in members.items() if name.endswith(".npy")}
        unknown = sorted(set(members) - {k + ".npy" for k in keys} | set(keys) - set(KNOWN_ARRAYS))
        if unknown:
            raise DataError(f"{where} holds entries outside the NPZ contract: "
                            f"{quote_list(unknown)}; {_CONTRACT}. Remove the others.")
        headers = {key: _member_header(archive, info, key, where) for key, info in keys.items()}
        _check_headers(headers, where, limits)
        arrays = {}
        for key, info in keys.items():
            arrays[key] = _read_member(path, archive, info, headers[key], key, where)
    return arrays


def _member_header(archive: zipfile.ZipFile, info: zipfile.ZipInfo, key: str,
                   where: str) -> _Header:
    try:
        if info.flag_bits & 0x1:
            raise DataError(f"{where}: array '{key}' is encrypted; save the data set unencrypted.")
        with archive.open(info) as member:
            header = _Header(*_read_header(member))
        _check_dtype(header.dtype, key, where)
        if info.file_size < header.length + header.nbytes:
            raise DataError(f"{where}: array '{key}' declares shape {header.shape} "
                            f"({header.nbytes} bytes) but holds only "
                            f"{max(info.file_size - header.length, 0)} bytes; the file is "
                            "truncated or corrupt.")
        return header
    except DataError:
        raise
    except _READ_ERRORS as exc:
        raise DataError(f"{where}: array '{key}' cannot be read ({reason_of(exc)}); the file is "
                        "corrupt or truncated, or the array was not saved by numpy.") from None


def _check_headers(headers: dict[str, _Header], where: str, limits: DataLimits) -> None:
    """The data limits and the X/y shapes, from the declared shapes alone."""
    total = sum(h.nbytes for h in headers.values())
    if total > limits.max_inflated_bytes:
        largest = max(headers, key=lambda key: headers[key].nbytes)
        h = headers[largest]
        raise limits.refusal(
            "max_inflated_mb", where,
            f"declares arrays of {total / MIB:,.0f} MiB once inflated (the largest, "
            f"'{largest}', has shape {h.shape} of {h.dtype})")
    for x_key, y_key in (("X", "y"), ("X_test", "y_test")):
        x, y = headers.get(x_key), headers.get(y_key)
        if x is None or y is None or len(x.shape) not in (2, 3):
            continue  # missing arrays and wrong ranks are refused with the data's own message
        if len(y.shape) != 1 or y.shape[0] != x.shape[0]:
            raise DataError(_targets_mismatch(y_key, y.shape, x.shape[0], where))
    x = headers.get("X")
    if x is not None and len(x.shape) in (2, 3):
        n, T = x.shape[:2]
        F = x.shape[2] if len(x.shape) == 3 else 1
        x_test = headers.get("X_test")
        n_test = x_test.shape[0] if x_test is not None and x_test.shape else 0
        limits.check_shape(n, T, F, where, n_test)


def _read_member(path: Path, archive: zipfile.ZipFile, info: zipfile.ZipInfo, header: _Header,
                 key: str, where: str) -> np.ndarray:
    try:
        if info.compress_type == zipfile.ZIP_STORED and header.nbytes >= MMAP_MIN_BYTES:
            offset = _data_offset(path, info) + header.length
            return np.memmap(path, dtype=header.dtype, mode="r", offset=offset,
                             shape=header.shape, order="F" if header.fortran else "C")
        with archive.open(info) as member:
            return np.lib.format.read_array(member, allow_pickle=False)
    except DataError:
        raise
    except _READ_ERRORS as exc:
        raise DataError(f"{where}: array '{key}' cannot be read ({reason_of(exc)}); the file is "
                        "corrupt or truncated, or the array was not saved by numpy.") from None


def _read_header(fp) -> tuple[tuple[int, ...], bool, np.dtype, int]:  # noqa: ANN001
    """Parse a .npy header; return (shape, fortran_order, dtype, header length in bytes)."""
    version = np.lib.format.read_magic(fp)
    if version == (1, 0):
        shape, fortran, dtype = np.lib.format.read_array_header_1_0(fp)
    elif version in ((2, 0), (3, 0)):
        shape, fortran, dtype = np.lib.format.read_array_header_2_0(fp)
    else:  # pragma: no cover - read_magic only returns versions numpy knows
        raise ValueError(f"unsupported .npy format version {version}")
    return tuple(int(s) for s in shape), bool(fortran), np.dtype(dtype), int(fp.tell())


def _check_dtype(dtype: np.dtype, key: str, where: str) -> None:
    if dtype.hasobject:
        raise DataError(f"{where}: array '{key}' holds Python objects (dtype=object), which would "
                        "have to be unpickled, and archsearch never unpickles files; save it with "
                        "a numeric dtype, or a fixed-width string dtype for class labels "
                        "(numpy.asarray(labels, dtype=str)).")
    if dtype.fields is not None or dtype.subdtype is not None:
        raise DataError(f"{where}: array '{key}' has the structured dtype {dtype}; save a plain "
                        "numeric (or, for labels, string) array.")


def _data_offset(path: Path, info: zipfile.ZipInfo) -> int:
    """Where a stored member's bytes start: after its local file header."""
    with open(path, "rb") as fh:
        fh.seek(info.header_offset)
        local = fh.read(30)
    if len(local) != 30 or local[:4] != b"PK\x03\x04":
        raise ValueError("bad local file header")
    name_len, extra_len = struct.unpack("<HH", local[26:30])
    return info.header_offset + 30 + name_len + extra_len


def _as_3d(X: np.ndarray, key: str, where: str) -> np.ndarray:
    if X.dtype.kind not in "biuf":
        raise DataError(f"{where}: {key} has dtype {X.dtype}; features must be numeric (encode "
                        "categorical features as numbers first).")
    if X.ndim == 2:
        X = X[:, :, None]
    if X.ndim != 3:
        raise DataError(f"{where}: {key} has shape {X.shape} (rank {X.ndim}); it must be (N, T) "
                        "or (N, T, F): sequences x steps [x channels].")
    if 0 in X.shape:
        raise DataError(f"{where}: {key} has shape {X.shape}; it holds no data (every dimension "
                        "must be at least 1).")
    return X


def _targets_mismatch(key: str, shape: tuple[int, ...], n: int, where: str) -> str:
    x_key = "X" if key == "y" else "X_test"
    return (f"{where}: {key} has shape {shape}; it must be ({n},), one target per sequence of "
            f"{x_key}.")


def _as_targets(y: np.ndarray, n: int, key: str, where: str) -> np.ndarray:
    if y.ndim != 1 or y.shape[0] != n:
        raise DataError(_targets_mismatch(key, y.shape, n, where))
    check_target(y, where, key)
    return np.asarray(y)
