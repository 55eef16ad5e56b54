"""CSV and Parquet loaders: the long format and forecasting series.

Long format (classification / regression): one row per (sequence id, step); the id and step
columns (``series_id`` and ``step`` unless renamed), a target column constant within each
sequence, and every other column a numeric feature. Sequences may have different numbers of
rows: they are padded at the end to the longest and ``lengths`` records each one's length.

Forecasting: one series, a time column plus one or more numeric value columns. Windows of
``lookback`` input steps (all value columns) predict the next ``horizon`` steps of the target
column (``--target``) or of every value column. Windows come in time order; the split keeps the
windows of different splits from sharing any time step (see :mod:`archsearch.data.splits`).

In a forecasting series the targets are value columns too, so ``--impute`` fills their gaps as
well (causally: never with later values, except a gap at the very start, which takes the first
observed value). Column names are kept verbatim (they reach reports, which must escape them).
"""

from __future__ import annotations

import csv
import gzip
import io
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd

from archsearch.data.dataset import SequenceDataset
from archsearch.data.limits import HEADER_BYTES_PER_COLUMN, MIB, DataLimits
from archsearch.data.options import LoadOptions
from archsearch.data.validate import (
    check_size,
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

TARGET_NAMES = ("target", "y", "label", "class")
TIME_NAMES = ("time", "date", "timestamp", "datetime", "ds", "t")
DEFAULT_LOOKBACK = 32
_SCAN_CHUNK = 1 << 20


def read_table(path: Path, fmt: str, limits: DataLimits | None = None) -> pd.DataFrame:
    """Read a CSV/TSV (optionally gzipped) or Parquet file into a DataFrame, or raise DataError.

    The data limits are checked first, without parsing: a CSV file's text is streamed once
    (inflated, for ``.gz``) counting bytes and rows, and its header line's columns are counted,
    reading no further than the limits; a Parquet file's footer gives its rows, columns and
    uncompressed size."""
    limits = limits if limits is not None else DataLimits()
    where = quote(path.name)
    try:
        if fmt == "parquet":
            _check_parquet(path, where, limits)
            frame = pd.read_parquet(path, engine="pyarrow", memory_map=True)
        else:
            sep = "\t" if ".tsv" in path.name.lower() else ","
            _check_csv_header(_scan_csv(path, sep, where, limits), where)
            gz = path.name.lower().endswith(".gz")
            frame = pd.read_csv(path, sep=sep, memory_map=not gz, low_memory=False,
                                encoding="utf-8")
    except DataError:
        raise
    except UnicodeDecodeError:
        raise DataError(f"{where} is not UTF-8 text; save it as UTF-8 CSV.") from None
    except pd.errors.EmptyDataError:
        raise DataError(f"{where} is empty: it has no header and no rows.") from None
    except Exception as exc:  # noqa: BLE001 - parser errors of pandas / pyarrow / zlib vary
        kind = "Parquet" if fmt == "parquet" else "CSV"
        raise DataError(f"cannot read {where} as {kind} ({reason_of(exc)}); the file is corrupt, "
                        f"truncated, or not a {kind} file.") from None
    frame.columns = [str(c) for c in frame.columns]
    if fmt == "csv" and len(frame.columns) == 1 and ";" in frame.columns[0]:
        raise DataError(f"{where} has a single column named {quote(frame.columns[0])}: it seems "
                        "to use ';' as its separator, but archsearch reads comma-separated "
                        "(.csv) or tab-separated (.tsv) files; save it with commas.")
    dup = sorted(name for name, count in Counter(frame.columns).items() if count > 1)
    if dup:
        raise DataError(f"{where} has duplicate column names: {quote_list(dup)}; every column "
                        "needs its own name.")
    if frame.shape[0] == 0:
        raise DataError(f"{where} has a header ({len(frame.columns)} columns) but no rows.")
    return frame


# Bytes a value of each Parquet physical type takes once read (variable-size values: at least
# their offset); dictionary and run-length encodings make the stored size no bound on this.
_PARQUET_WIDTH = {"BOOLEAN": 1, "INT32": 4, "FLOAT": 4, "INT64": 8, "DOUBLE": 8, "INT96": 12,
                  "BYTE_ARRAY": 8}


def _check_parquet(path: Path, where: str, limits: DataLimits) -> None:
    """Rows, columns and size once read from the footer, before any column is read."""
    import pyarrow.parquet as pq

    meta = pq.read_metadata(path)
    limits.check("max_columns", meta.num_columns, where, f"has {meta.num_columns:,} columns")
    limits.check("max_rows", meta.num_rows, where, f"has {meta.num_rows:,} rows")
    stored = sum(meta.row_group(i).total_byte_size for i in range(meta.num_row_groups))
    width = sum(max(_PARQUET_WIDTH.get(column.physical_type, 8), column.length or 0)
                for column in (meta.schema.column(i) for i in range(meta.num_columns)))
    inflated = max(stored, meta.num_rows * width)
    if inflated > limits.max_inflated_bytes:
        raise limits.refusal("max_inflated_mb", where, f"holds {inflated / MIB:,.1f} MiB of "
                             "column data once decompressed")


def _scan_csv(path: Path, sep: str, where: str, limits: DataLimits) -> list[str] | None:
    """One streaming pass over the text (inflated from ``.gz``) before pandas parses it: stop
    at the first broken limit (bytes, rows, columns of the header line); return the header's
    column names (None for an empty file)."""
    gz = path.name.lower().endswith(".gz")
    max_bytes = limits.max_inflated_bytes
    if not gz:
        size = path.stat().st_size
        if size > max_bytes:
            raise limits.refusal("max_inflated_mb", where, f"is {size / MIB:,.0f} MiB of text")
    header = bytearray()
    header_lines = 0  # lines of the header (a quoted name may hold a line break)
    header_done = False
    total = newlines = 0
    with (gzip.open(path, "rb") if gz else open(path, "rb")) as fh:
        while chunk := fh.read(_SCAN_CHUNK):
            total += len(chunk)
            if total > max_bytes:
                raise limits.refusal("max_inflated_mb", where,
                                     f"inflates to more than {limits.max_inflated_mb:,} MiB of "
                                     f"text (reading stopped there; the file itself is "
                                     f"{path.stat().st_size / MIB:,.1f} MiB)")
            if not header_done:
                header_done, header_lines = _grow_header(header, chunk, header_lines)
                _check_header_width(header, header_done, sep, where, limits)
            # Rows end in \n (or \r\n); a file of old Mac line ends has \r alone.
            newlines += chunk.count(b"\n") or chunk.count(b"\r")
            unfinished = chunk[-1:] not in (b"\n", b"\r")  # a last row without a line end
            if newlines - max(header_lines, 1) + unfinished > limits.max_rows:
                raise limits.refusal("max_rows", where, f"has more than {limits.max_rows:,} "
                                     "data rows (counting stopped there)")
    if total == 0:
        return None
    if not header_done:  # a file of one line, without a line end
        _check_header_width(header, True, sep, where, limits)
    text = bytes(header).decode("utf-8")
    return next(csv.reader(io.StringIO(text, newline=""), delimiter=sep), None)


def _grow_header(header: bytearray, chunk: bytes, lines: int) -> tuple[bool, int]:
    """Append the header line's part of ``chunk`` to ``header``; (complete, its lines). A line
    break inside a quoted name (an odd number of quotes before it) continues the header."""
    start, odd = 0, header.count(b'"') % 2  # one count per chunk: the header is capped
    while True:
        cut = chunk.find(b"\n", start)
        if cut < 0:
            header += chunk[start:]
            return False, lines
        header += chunk[start:cut + 1]
        lines += 1
        odd ^= chunk.count(b'"', start, cut + 1) % 2
        if not odd:
            return True, lines
        start = cut + 1


def _check_header_width(header: bytearray, complete: bool, sep: str, where: str,
                        limits: DataLimits) -> None:
    """Refuse a header line of more than ``max_columns`` columns (or longer than they may be)
    before pandas sees it. Counting separators bounds the columns from above (quotes can only
    merge them), so the names are parsed only past the limit, once the line is complete (or
    over ``max_header_bytes``)."""
    too_long = not complete and len(header) > limits.max_header_bytes
    if not (complete or too_long):
        return  # wait for the rest of the line
    if header.count(sep.encode()) + 1 > limits.max_columns:
        text = bytes(header).decode("utf-8", errors="replace")
        names = next(csv.reader(io.StringIO(text, newline=""), delimiter=sep), [])
        if len(names) > limits.max_columns:
            count = f"{len(names):,}" if complete else f"more than {len(names):,}"
            raise limits.refusal("max_columns", where,
                                 f"has {count} columns in its header line")
    if too_long:
        raise limits.refusal("max_columns", where,
                             f"has a header line longer than {limits.max_header_bytes:,} bytes "
                             f"(a column name may take {HEADER_BYTES_PER_COLUMN:,} bytes)")


def _check_csv_header(header: list[str] | None, where: str) -> None:
    """pandas renames duplicate header names silently ('a', 'a.1'); refuse them instead."""
    if header is None:
        raise DataError(f"{where} is empty: it has no header and no rows.")
    seen, dup = set(), []
    for name in header:
        if name in seen and name not in dup:
            dup.append(name)
        seen.add(name)
    if dup:
        raise DataError(f"{where} has duplicate column names: {quote_list(dup)}; every column "
                        "needs its own name.")


def load_table(path: Path, fmt: str, options: LoadOptions | None = None) -> SequenceDataset:
    """Load a CSV/Parquet file in the long format or as a forecasting series (auto-detected)."""
    options = options or LoadOptions()
    frame = read_table(path, fmt, options.limits)
    where = quote(path.name)
    columns = list(frame.columns)
    time_column = options.time_column or _find(columns, TIME_NAMES)
    if options.task is TaskKind.FORECAST or options.time_column is not None:
        return _forecast(frame, path.name, where, options)
    if options.id_column in columns:
        return _long(frame, path.name, where, options)
    if options.task is None and time_column is not None:
        return _forecast(frame, path.name, where, options)
    raise DataError(
        f"{where}: cannot tell its layout. The long format (one row per sequence and step) needs "
        f"an id column {quote(options.id_column)} (rename it with --id-column) and a step column; "
        "a forecasting series needs a time column (name it with --time-column). Found columns: "
        f"{quote_list(columns)}.")


def _find(columns: list[str], names: tuple[str, ...]) -> str | None:
    for name in names:
        if name in columns:
            return name
    lowered = {c.lower(): c for c in columns}
    for name in names:
        if name in lowered:
            return lowered[name]
    return None


def _numeric_columns(frame: pd.DataFrame, columns: list[str], where: str, role: str) -> None:
    bad = [c for c in columns if not _is_numeric(frame[c])]
    if bad:
        kinds = ", ".join(f"{quote(c)} ({frame[c].dtype})" for c in bad[:5])
        raise DataError(f"{where}: {len(bad)} {role} column(s) are not numeric: {kinds}; every "
                        f"column other than the id, step/time and target columns is read as a "
                        "feature, so drop these columns or encode them as numbers.")


def _is_numeric(series: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_complex_dtype(series)


def _float_values(frame: pd.DataFrame, columns: list[str]) -> np.ndarray:
    """(rows, len(columns)) float64, with pandas' missing values (NA) as NaN."""
    return frame[columns].astype("float64").to_numpy(dtype=np.float64, na_value=np.nan)


def _order_key(series: pd.Series, name: str, where: str) -> pd.Series:
    """A sortable step/time key: numbers or datetimes; strings are parsed as datetimes."""
    if series.isna().any():
        i = int(np.flatnonzero(series.isna().to_numpy())[0])
        raise DataError(f"{where}: column {quote(name)} has {int(series.isna().sum())} missing "
                        f"value(s) (the first in data row {i + 1}); every row needs its step/time.")
    if _is_numeric(series) or pd.api.types.is_datetime64_any_dtype(series):
        return series
    try:
        return pd.to_datetime(series, format="mixed")
    except (ValueError, TypeError, OverflowError) as exc:
        raise DataError(f"{where}: column {quote(name)} is neither numeric nor a date/time "
                        f"({reason_of(exc)}); steps and times must be numbers or dates.") from None


# --------------------------------------------------------------------------- long format


def _long(frame: pd.DataFrame, name: str, where: str, options: LoadOptions) -> SequenceDataset:
    columns = list(frame.columns)
    if options.lookback is not None or options.horizon != 1:
        raise DataError(f"{where} is in the long format (it has the id column "
                        f"{quote(options.id_column)}), so lookback and horizon do not apply; "
                        "they shape forecasting windows (use --task forecast and --time-column).")
    id_col, step_col = options.id_column, options.step_column
    if step_col not in columns:
        raise DataError(f"{where}: no step column {quote(step_col)} (found {quote_list(columns)});"
                        " the long format needs one row per (sequence id, step): name the step "
                        "column with --step-column.")
    target = options.target or _find(columns, TARGET_NAMES)
    if target is None:
        raise DataError(f"{where}: no target column (looked for {', '.join(TARGET_NAMES)}); name "
                        f"it with --target. Found columns: {quote_list(columns)}.")
    if target not in columns:
        raise DataError(f"{where}: the target column {quote(target)} is not in the file (found "
                        f"{quote_list(columns)}).")
    if target in (id_col, step_col):
        raise DataError(f"{where}: the target column {quote(target)} is also the id or step "
                        "column; choose another with --target.")
    features = [c for c in columns if c not in (id_col, step_col, target)]
    if not features:
        raise DataError(f"{where}: no feature columns: besides the id, step and target columns "
                        "the long format needs at least one numeric feature column.")
    _numeric_columns(frame, features, where, "feature")
    if frame[id_col].isna().any():
        raise DataError(f"{where}: the id column {quote(id_col)} has "
                        f"{int(frame[id_col].isna().sum())} missing value(s); every row needs "
                        "the id of its sequence.")
    steps = _order_key(frame[step_col], step_col, where)
    ids = frame[id_col]
    if not _is_numeric(ids):
        ids = ids.astype(str)
    order = pd.DataFrame({"id": ids, "step": steps, "row": np.arange(len(frame))})
    order = order.sort_values(["id", "step"], kind="stable")
    dup = order.duplicated(["id", "step"], keep=False)
    if dup.any():
        first = order[dup].iloc[0]
        raise DataError(f"{where}: {int(dup.sum())} rows share their (id, step) with another "
                        f"row, e.g. id {quote(first['id'])} at step {quote(first['step'])}; each "
                        "sequence needs one row per step.")
    rows = order["row"].to_numpy()
    seq_codes, seq_ids = pd.factorize(order["id"], sort=True)
    n = len(seq_ids)
    lengths = np.bincount(seq_codes, minlength=n).astype(np.int64)
    T, F = int(lengths.max()), len(features)
    check_size(n, T, F, where, options.limits)
    pos = order.groupby("id", sort=False).cumcount().to_numpy()

    values = _float_values(frame, features)[rows]  # (rows, F), sorted by (id, step)
    X = np.zeros((n, T, F), dtype=np.float32)
    with np.errstate(over="ignore"):  # beyond float32: becomes inf, refused below
        X[seq_codes, pos] = values
    step_values = order["step"].to_numpy()

    def locate(i: int, t: int, f: int) -> str:
        j = int(np.flatnonzero((seq_codes == i) & (pos == t))[0])
        return (f"column {quote(features[f])}, id {quote(seq_ids[i])}, step "
                f"{quote(step_values[j])}")

    X, n_missing = clean_features(X, lengths, where, options.impute, locate=locate,
                                  name="the feature columns")
    y = _sequence_targets(frame[target].iloc[rows], seq_codes, seq_ids, n, target, where)
    task = infer_task(y, options.task, where)
    class_names = None
    if task is TaskKind.CLASSIFICATION:
        y, _, class_names = encode_labels(y, where)
    else:
        y = float32_targets(y, where, f"target column {quote(target)}")
    return SequenceDataset(name=name, task=task, X=X, y=y, lengths=lengths,
                           feature_names=tuple(features), class_names=class_names,
                           target_name=target, n_missing=n_missing)


def _sequence_targets(column: pd.Series, codes: np.ndarray, seq_ids: pd.Index, n: int,
                      target: str, where: str) -> np.ndarray:
    missing = column.isna().to_numpy()
    if missing.any():
        first = quote(seq_ids[codes[missing][0]])
        raise DataError(f"{where}: the target column {quote(target)} has {int(missing.sum())} "
                        f"missing value(s) (the first in sequence {first}); targets are never "
                        "imputed: fix them or drop those sequences.")
    if _is_numeric(column) and not pd.api.types.is_bool_dtype(column):
        values = column.to_numpy()
        if values.dtype.kind not in "biuf":
            values = values.astype(np.float64)
    elif pd.api.types.is_bool_dtype(column):
        values = column.to_numpy().astype(bool)
    else:
        values = column.astype(str).to_numpy().astype(str)
    per_seq = pd.Series(values).groupby(codes).nunique()
    varying = np.flatnonzero(per_seq.to_numpy() > 1)
    if len(varying):
        shown = quote_list([str(seq_ids[i]) for i in varying])
        raise DataError(f"{where}: the target column {quote(target)} changes within "
                        f"{len(varying)} sequence(s) ({shown}); in the long format the target is "
                        "one value per sequence, repeated on each of its rows.")
    _, first = np.unique(codes, return_index=True)  # the first row of each sequence
    return values[first]


# --------------------------------------------------------------------------- forecasting


def _forecast(frame: pd.DataFrame, name: str, where: str, options: LoadOptions
              ) -> SequenceDataset:
    if options.task not in (None, TaskKind.FORECAST):
        raise DataError(f"{where}: a time column was given, which makes this a forecasting "
                        f"series, but the task is {options.task.value}; leave out --time-column "
                        "or use --task forecast.")
    columns = list(frame.columns)
    stray = options.non_default(ignore=("task", "target", "id_column", "time_column", "lookback",
                                        "horizon", "impute"))
    if stray:
        raise DataError(f"{where} is read as a forecasting series (a time column and value "
                        f"columns), so {', '.join(stray)} does not apply; it belongs to the long "
                        "format.")
    time_col = options.time_column or _find(columns, TIME_NAMES)
    if time_col is None:
        raise DataError(f"{where}: a forecasting series needs a time column (looked for "
                        f"{', '.join(TIME_NAMES)}); name it with --time-column. Found columns: "
                        f"{quote_list(columns)}.")
    if time_col not in columns:
        raise DataError(f"{where}: the time column {quote(time_col)} is not in the file (found "
                        f"{quote_list(columns)}).")
    if options.id_column in columns and options.id_column != time_col:
        raise DataError(f"{where}: the file has an id column {quote(options.id_column)}, but "
                        "forecasting reads a single series; give one series per file, or the "
                        "long format with --task classification/regression.")
    value_cols = [c for c in columns if c != time_col]
    if not value_cols:
        raise DataError(f"{where}: a forecasting series needs at least one value column besides "
                        f"the time column {quote(time_col)}.")
    _numeric_columns(frame, value_cols, where, "value")
    if options.target is not None and options.target not in value_cols:
        raise DataError(f"{where}: the target column {quote(options.target)} is not a value "
                        f"column of the file (value columns: {quote_list(value_cols)}).")
    targets = [options.target] if options.target is not None else value_cols
    times = _order_key(frame[time_col], time_col, where)
    order = np.argsort(times.to_numpy(), kind="stable")
    sorted_times = times.to_numpy()[order]
    dup = sorted_times[1:] == sorted_times[:-1]
    if dup.any():
        raise DataError(f"{where}: {int(dup.sum())} rows repeat an earlier time (e.g. "
                        f"{quote(sorted_times[1:][dup][0])}); a series needs one row per time.")
    series = _float_values(frame, value_cols)[order]  # (S, C)
    S, C = series.shape
    lookback = options.lookback or DEFAULT_LOOKBACK
    horizon = options.horizon
    n_windows = S - lookback - horizon + 1
    if n_windows < 1:
        raise DataError(f"{where}: the series has {S} time steps, too few for windows of "
                        f"lookback {lookback} + horizon {horizon}; use a smaller --lookback or "
                        "--horizon, or a longer series.")
    check_size(n_windows, lookback, C, where, options.limits)

    def locate(_i: int, t: int, f: int) -> str:
        return f"column {quote(value_cols[f])} at time {quote(sorted_times[t])}"

    with np.errstate(over="ignore"):
        series32 = series[None].astype(np.float32)  # (1, S, C); beyond float32 becomes inf
    clean, n_missing = clean_features(series32, None, where,
                                      options.impute, causal=True, locate=locate,
                                      name="the value columns")
    series = clean[0]  # (S, C) float32
    view = np.lib.stride_tricks.sliding_window_view(series, lookback, axis=0)  # (S-L+1, C, L)
    X = np.ascontiguousarray(view[:n_windows].transpose(0, 2, 1))  # (N, L, C)
    target_idx = [value_cols.index(t) for t in targets]
    future = np.lib.stride_tricks.sliding_window_view(series[lookback:, target_idx], horizon,
                                                      axis=0)  # (S-L-H+1, Ct, H)
    y = np.ascontiguousarray(future[:n_windows].transpose(0, 2, 1)).reshape(n_windows, -1)
    return SequenceDataset(name=name, task=TaskKind.FORECAST, X=X, y=y.astype(np.float32),
                           feature_names=tuple(value_cols), target_name=", ".join(targets),
                           window=(lookback, horizon), n_missing=n_missing,
                           target_channels=tuple(target_idx))


def forecast_from_frame(frame: pd.DataFrame, name: str, options: LoadOptions) -> SequenceDataset:
    """Build forecasting windows from an in-memory frame (a time column plus value columns)."""
    return _forecast(frame, name, quote(name), options)
