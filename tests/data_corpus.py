"""Hand-made bad data files, and a checker of the data contract, shared by the data tests.

:func:`write_bad_files` writes one file per kind of problem the data room must refuse with a
clear :class:`~archsearch.errors.DataError` (exit code 2 at the command line). Each
:class:`BadFile` carries the options to load it with, the same options as command-line
arguments (:func:`cli_args`), and a fragment its error message must contain.
"""

from __future__ import annotations

import gzip
import io
import pickle
import zipfile
from dataclasses import dataclass, field, fields
from pathlib import Path

import numpy as np
import pandas as pd

from archsearch.data import LoadOptions, SequenceDataset
from archsearch.types import TaskKind


@dataclass(frozen=True)
class BadFile:
    name: str  # what is wrong, as a short identifier
    source: str  # the path (or builtin: spec) to load
    expect: str  # a fragment of the error message (lower case)
    options: LoadOptions = field(default_factory=LoadOptions)

    @property
    def args(self) -> list[str]:
        """The command-line options equivalent to ``options``."""
        return cli_args(self.options)


def cli_args(options: LoadOptions) -> list[str]:
    """``--task``, ``--target``, ``--id-column`` ... for each non-default option."""
    args = []
    default = LoadOptions()
    for f in fields(options):
        value = getattr(options, f.name)
        if value != getattr(default, f.name):
            value = value.value if isinstance(value, TaskKind) else value
            args += [f"--{f.name.replace('_', '-')}", str(value)]
    return args


def _npz(path: Path, **arrays: np.ndarray) -> str:
    np.savez(path, **arrays)
    return str(path)


def _csv(path: Path, text: str) -> str:
    path.write_text(text, encoding="utf-8")
    return str(path)


def _long_frame(n: int = 6, steps: int = 4, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = [{"series_id": f"s{i}", "step": t, "f1": float(rng.normal()), "f2": float(t),
             "target": i % 2} for i in range(n) for t in range(steps)]
    return pd.DataFrame(rows)


def _series_frame(steps: int = 60) -> pd.DataFrame:
    t = np.arange(steps)
    return pd.DataFrame({"time": t, "value": np.sin(t / 3.0), "other": np.cos(t / 5.0)})


def valid_npz_bytes(n: int = 8, T: int = 5, F: int = 2, seed: int = 0) -> bytes:
    """A small valid NPZ data set, as bytes (for truncation and corruption)."""
    rng = np.random.default_rng(seed)
    buf = io.BytesIO()
    np.savez(buf, X=rng.normal(size=(n, T, F)).astype(np.float32), y=np.arange(n) % 2)
    return buf.getvalue()


def write_bad_files(directory: Path) -> list[BadFile]:
    """Write the hand-made bad files into ``directory``; return what each should produce."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    X = rng.normal(size=(10, 6, 2)).astype(np.float32)
    y = np.arange(10) % 2
    bad: list[BadFile] = []

    def add(name: str, source: str, expect: str, **options: object) -> None:
        bad.append(BadFile(name, source, expect.lower(), LoadOptions(**options)))

    # ---- NPZ
    (d / "random_bytes.npz").write_bytes(rng.bytes(300))
    add("npz_random_bytes", str(d / "random_bytes.npz"), "cannot read")
    (d / "empty.npz").write_bytes(b"")
    add("npz_empty", str(d / "empty.npz"), "cannot read")
    good = valid_npz_bytes()
    (d / "truncated.npz").write_bytes(good[: len(good) // 2])
    add("npz_truncated", str(d / "truncated.npz"), "cannot read")
    (d / "pickle.npz").write_bytes(pickle.dumps({"X": X, "y": y}))
    add("npz_is_a_pickle", str(d / "pickle.npz"), "cannot read")
    np.save(d / "plain.npy", X)
    (d / "npy_renamed.npz").write_bytes((d / "plain.npy").read_bytes())
    add("npz_is_an_npy", str(d / "npy_renamed.npz"), "cannot read")
    with zipfile.ZipFile(d / "forged_shape.npz", "w") as archive:
        header = io.BytesIO()
        np.save(header, np.zeros((3, 2), np.float32))
        forged = header.getvalue().replace(b"(3, 2)", b"(99999, 99999)")  # 40 GB declared
        archive.writestr("X.npy", forged)
        labels = io.BytesIO()
        np.save(labels, np.arange(3))
        archive.writestr("y.npy", labels.getvalue())
    add("npz_forged_shape", str(d / "forged_shape.npz"), "truncated or corrupt")
    add("npz_missing_y", _npz(d / "missing_y.npz", X=X), "no array 'y'")
    add("npz_missing_x", _npz(d / "missing_x.npz", y=y), "no array 'x'")
    add("npz_rank_4", _npz(d / "rank4.npz", X=X[:, :, :, None], y=y), "rank 4")
    add("npz_rank_1", _npz(d / "rank1.npz", X=X[:, 0, 0], y=y), "rank 1")
    add("npz_y_mismatch", _npz(d / "y_mismatch.npz", X=X, y=y[:7]), "one target per sequence")
    add("npz_y_2d", _npz(d / "y_2d.npz", X=X, y=y[:, None]), "one target per sequence")
    add("npz_zero_samples", _npz(d / "zero_samples.npz", X=X[:0], y=y[:0]), "holds no data")
    add("npz_zero_length", _npz(d / "zero_length.npz", X=X[:, :0], y=y), "holds no data")
    X_nan = X.copy()
    X_nan[3, 2, 1] = np.nan
    X_nan[4, 0, 0] = np.nan
    add("npz_nan", _npz(d / "nan.npz", X=X_nan, y=y), "2 nan value(s)")
    X_inf = X.copy()
    X_inf[1, 1, 1] = np.inf
    add("npz_inf", _npz(d / "inf.npz", X=X_inf, y=y), "infinite")
    add("npz_inf_with_impute", str(d / "inf.npz"), "infinite", impute="zero")
    add("npz_y_nan", _npz(d / "y_nan.npz", X=X, y=np.where(y > 0, np.nan, 1.5)), "nan or infinite")
    add("npz_object_y", _npz(d / "object_y.npz", X=X, y=np.array(list("ab" * 5), dtype=object)),
        "python objects")
    add("npz_object_x", _npz(d / "object_x.npz", X=X.astype(object), y=y), "python objects")
    add("npz_string_x", _npz(d / "string_x.npz", X=X.astype(str), y=y), "must be numeric")
    add("npz_complex_x", _npz(d / "complex_x.npz", X=X.astype(np.complex64), y=y),
        "must be numeric")
    add("npz_structured_y", _npz(d / "structured_y.npz", X=X,
                                 y=np.zeros(10, dtype=[("a", "i4"), ("b", "f4")])),
        "structured")
    add("npz_single_class", _npz(d / "single_class.npz", X=X, y=np.zeros(10, dtype=int)),
        "at least two classes")
    add("npz_lengths_range", _npz(d / "lengths_range.npz", X=X, y=y,
                                  lengths=np.array([6] * 9 + [7])), "outside 1..6")
    add("npz_lengths_zero", _npz(d / "lengths_zero.npz", X=X, y=y,
                                 lengths=np.array([0] + [6] * 9)), "outside 1..6")
    add("npz_lengths_float", _npz(d / "lengths_float.npz", X=X, y=y,
                                  lengths=np.full(10, 6.0)), "must hold integers")
    add("npz_lengths_shape", _npz(d / "lengths_shape.npz", X=X, y=y, lengths=np.full(9, 6)),
        "one length per sequence")
    add("npz_test_shape", _npz(d / "test_shape.npz", X=X, y=y, X_test=X[:, :, :1], y_test=y),
        "training shape")
    add("npz_test_length", _npz(d / "test_length.npz", X=X, y=y, X_test=X[:, :4], y_test=y),
        "training shape")
    add("npz_x_test_alone", _npz(d / "x_test_alone.npz", X=X, y=y, X_test=X), "no y_test")
    add("npz_y_test_mismatch", _npz(d / "y_test_mismatch.npz", X=X, y=y, X_test=X,
                                    y_test=y[:3]), "one target per sequence of x_test")
    add("npz_unseen_test_label", _npz(d / "unseen_label.npz", X=X, y=y, X_test=X,
                                      y_test=np.arange(10) % 3), "never seen in training")
    add("npz_test_label_kind", _npz(d / "test_label_kind.npz", X=X, y=y, X_test=X,
                                    y_test=np.array(list("ab" * 5))), "same labels")
    add("npz_unknown_array", _npz(d / "unknown_array.npz", X=X, y=y, ids=np.arange(10)),
        "outside the npz contract")
    add("npz_regression_strings", _npz(d / "string_labels.npz", X=X,
                                       y=np.array(list("ab" * 5))), "cannot be regressed",
        task=TaskKind.REGRESSION)
    add("npz_forecast_task", _npz(d / "forecast_task.npz", X=X, y=y), "forecasting reads",
        task=TaskKind.FORECAST)

    # ---- paths and extensions
    add("missing_file", str(d / "no_such_file.npz"), "does not exist")
    add("directory", str(d), "does not exist")
    add("unknown_extension", _csv(d / "data.txt", "a,b\n1,2\n"), "unsupported extension")
    add("no_extension", _csv(d / "data", "a,b\n1,2\n"), "unsupported extension")

    # ---- CSV, long format
    frame = _long_frame()
    add("csv_empty", _csv(d / "empty.csv", ""), "is empty")
    add("csv_header_only", _csv(d / "header_only.csv", "series_id,step,f1,target\n"), "no rows")
    (d / "latin1.csv").write_bytes("series_id,step,f\xe9,target\ns,0,1,0\n".encode("latin-1"))
    add("csv_not_utf8", str(d / "latin1.csv"), "utf-8")
    add("csv_duplicate_header", _csv(d / "dup_header.csv",
                                     "series_id,step,f1,f1,target\ns,0,1,2,0\n"), "duplicate")
    add("csv_ragged_rows", _csv(d / "ragged_rows.csv",
                                "series_id,step,f1,target\ns,0,1,0\ns,1,2,0,9,9\n"), "cannot read")
    text = frame.assign(f2=["x"] * len(frame)).to_csv(index=False)
    add("csv_non_numeric_feature", _csv(d / "non_numeric.csv", text), "not numeric")
    nan_frame = frame.copy()
    nan_frame.loc[5, "f1"] = np.nan
    add("csv_nan_feature", _csv(d / "nan_feature.csv", nan_frame.to_csv(index=False)),
        "--impute")
    inf_frame = frame.copy()
    inf_frame.loc[2, "f2"] = np.inf
    add("csv_inf_feature", _csv(d / "inf_feature.csv", inf_frame.to_csv(index=False)),
        "infinite")
    varying = frame.copy()
    varying.loc[1, "target"] = 5
    add("csv_target_varies", _csv(d / "target_varies.csv", varying.to_csv(index=False)),
        "changes within 1 sequence")
    nan_target = frame.copy()
    nan_target["target"] = nan_target["target"].astype(float)
    nan_target.loc[0, "target"] = np.nan
    add("csv_target_nan", _csv(d / "target_nan.csv", nan_target.to_csv(index=False)),
        "missing value")
    dup = pd.concat([frame, frame.iloc[:1]])
    add("csv_duplicate_step", _csv(d / "dup_step.csv", dup.to_csv(index=False)),
        "share their (id, step)")
    add("csv_single_class", _csv(d / "single_class.csv",
                                 frame.assign(target=1).to_csv(index=False)),
        "at least two classes")
    add("csv_no_target", _csv(d / "no_target.csv",
                              frame.drop(columns="target").to_csv(index=False)), "--target")
    add("csv_wrong_target", _csv(d / "wrong_target.csv", frame.to_csv(index=False)),
        "not in the file", target="nope")
    add("csv_no_feature", _csv(d / "no_feature.csv",
                               frame[["series_id", "step", "target"]].to_csv(index=False)),
        "no feature columns")
    add("csv_no_step", _csv(d / "no_step.csv", frame.drop(columns="step").to_csv(index=False)),
        "--step-column")
    add("csv_semicolons", _csv(d / "semicolons.csv", "series_id;step;f1;target\ns;0;1;0\n"),
        "separator")
    add("csv_no_layout", _csv(d / "no_layout.csv", "a,b\n1,2\n3,4\n"), "cannot tell its layout")
    add("csv_id_missing", _csv(d / "id_missing.csv",
                               "series_id,step,f1,target\n,0,1,0\ns,0,1,1\n"), "missing value")
    add("csv_step_text", _csv(d / "step_text.csv",
                              "series_id,step,f1,target\ns,abc,1,0\nt,0,1,1\n"),
        "neither numeric nor a date")
    add("csv_regression_text_target", _csv(d / "text_target.csv", frame.assign(
        target="c" + frame["target"].astype(str)).to_csv(index=False)),
        "cannot be regressed", task=TaskKind.REGRESSION)
    add("csv_long_with_lookback", str(d / "no_step.csv"), "do not apply", lookback=5)
    with gzip.open(d / "corrupt.csv.gz", "wb") as fh:
        fh.write(b"series_id,step,f1,target\n" * 3)
    raw = (d / "corrupt.csv.gz").read_bytes()
    (d / "corrupt.csv.gz").write_bytes(raw[: len(raw) - 12])
    add("csv_gz_truncated", str(d / "corrupt.csv.gz"), "cannot read")

    # ---- Parquet
    (d / "random.parquet").write_bytes(rng.bytes(500))
    add("parquet_random_bytes", str(d / "random.parquet"), "cannot read")
    frame.to_parquet(d / "good.parquet")
    whole = (d / "good.parquet").read_bytes()
    (d / "truncated.parquet").write_bytes(whole[: len(whole) // 2])
    add("parquet_truncated", str(d / "truncated.parquet"), "cannot read")
    frame.assign(f1=["x"] * len(frame)).to_parquet(d / "text_feature.parquet")
    add("parquet_non_numeric_feature", str(d / "text_feature.parquet"), "not numeric")

    # ---- forecasting series
    series = _series_frame()
    add("forecast_too_short", _csv(d / "short.csv", series.iloc[:10].to_csv(index=False)),
        "too few", lookback=12)
    add("forecast_text_value", _csv(d / "text_value.csv",
                                    series.assign(other="x").to_csv(index=False)), "not numeric")
    add("forecast_duplicate_time", _csv(d / "dup_time.csv", pd.concat(
        [series, series.iloc[:2]]).to_csv(index=False)), "repeat an earlier time")
    add("forecast_bad_time", _csv(d / "bad_time.csv", series.assign(
        time=["2020-01-01"] * 59 + ["not a date"]).to_csv(index=False)),
        "neither numeric nor a date")
    nan_series = series.copy()
    nan_series.loc[7, "value"] = np.nan
    add("forecast_nan", _csv(d / "nan_series.csv", nan_series.to_csv(index=False)), "--impute")
    inf_series = series.copy()
    inf_series.loc[9, "other"] = -np.inf
    add("forecast_inf", _csv(d / "inf_series.csv", inf_series.to_csv(index=False)), "infinite",
        impute="ffill")
    add("forecast_unknown_target", _csv(d / "series.csv", series.to_csv(index=False)),
        "not a value column", target="nope")
    add("forecast_missing_time_column", str(d / "series.csv"), "not in the file",
        time_column="when")
    add("forecast_task_mismatch", str(d / "series.csv"), "forecasting series",
        time_column="time", task=TaskKind.CLASSIFICATION)
    add("forecast_split_too_small", _csv(d / "tiny_series.csv",
                                         series.iloc[:20].to_csv(index=False)),
        "too few", lookback=8)

    # ---- built-in specs
    add("builtin_unknown", "builtin:nope", "unknown built-in")
    add("builtin_bad_param", "builtin:adding?length=abc", "must be an integer")
    add("builtin_unknown_param", "builtin:parity?size=3", "takes key=value parameters")
    add("builtin_too_short", "builtin:copy_memory?length=3", "needs length")
    add("builtin_wrong_task", "builtin:adding", "not classification",
        task=TaskKind.CLASSIFICATION)
    add("builtin_stray_option", "builtin:adding", "do not apply", target="y")
    return bad


def assert_contract(ds: SequenceDataset) -> None:
    """The data contract of :class:`SequenceDataset`, as assertions."""
    assert ds.X.ndim == 3 and ds.X.dtype == np.float32 and 0 not in ds.X.shape
    assert np.isfinite(ds.X).all()
    n, T, _ = ds.X.shape
    if ds.task is TaskKind.CLASSIFICATION:
        assert ds.y.dtype == np.int64 and ds.y.shape == (n,)
        assert ds.class_names is not None and len(ds.class_names) >= 2
        assert ds.y.min() >= 0 and ds.y.max() < len(ds.class_names)
    elif ds.task is TaskKind.REGRESSION:
        assert ds.y.dtype == np.float32 and ds.y.shape[0] == n
    else:
        assert ds.y.dtype == np.float32 and ds.y.ndim == 2 and ds.y.shape[0] == n
        assert ds.window is not None and ds.y.shape[1] % ds.window[1] == 0
    assert np.isfinite(ds.y.astype(np.float64)).all()
    for lengths, X in ((ds.lengths, ds.X), (ds.lengths_test, ds.X_test)):
        if lengths is None:
            continue
        assert lengths.dtype == np.int64 and lengths.shape == (X.shape[0],)
        assert lengths.min() >= 1 and lengths.max() <= T
        pad = np.arange(T)[None, :] >= lengths[:, None]
        assert not X[pad].any(), "padding must be zero"
    if ds.X_test is not None:
        assert ds.X_test.shape[1:] == ds.X.shape[1:] and ds.X_test.dtype == np.float32
        assert ds.y_test is not None and ds.y_test.shape[0] == ds.X_test.shape[0]
        assert ds.y_test.dtype == ds.y.dtype
    assert len(ds.feature_names) == ds.X.shape[2]
