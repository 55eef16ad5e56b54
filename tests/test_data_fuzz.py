"""Fuzzing the loaders with malformed files: only DataError may ever escape load_dataset.

Whatever loads must also meet the data contract, split, and describe itself without error.
Example counts are bounded (and derandomised) so the whole module runs in well under a minute;
set ARCHSEARCH_FUZZ_EXAMPLES=5000 for a longer, randomised campaign.
"""

from __future__ import annotations

import atexit
import io
import os
import shutil
import string
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from archsearch.data import LoadOptions, fingerprint, load_dataset, meta_features, prepare
from archsearch.errors import DataError
from archsearch.types import TaskKind
from tests.data_corpus import assert_contract, valid_npz_bytes

_CAMPAIGN = os.environ.get("ARCHSEARCH_FUZZ_EXAMPLES")
FUZZ = settings(max_examples=int(_CAMPAIGN or 60), deadline=None, derandomize=not _CAMPAIGN,
                database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
_DIR = Path(tempfile.mkdtemp(prefix="archsearch-fuzz-"))  # one file per name, overwritten
atexit.register(shutil.rmtree, _DIR, ignore_errors=True)


def _check(path: Path, options: LoadOptions | None = None) -> None:
    """Load; a DataError is fine, any other exception fails; a success must be usable."""
    try:
        ds = load_dataset(str(path), options)
    except DataError as exc:
        message = str(exc)
        assert message and "Traceback" not in message
        return
    assert_contract(ds)
    prepared = prepare(ds, seed=0)
    assert len(prepared.train) and len(prepared.val) and len(prepared.test)
    meta_features(ds)
    assert len(fingerprint(ds)) == 64


def _write(name: str, data: bytes) -> Path:
    path = _DIR / name
    path.write_bytes(data)
    return path


# --------------------------------------------------------------------------- raw bytes


@FUZZ
@given(data=st.binary(max_size=2048),
       suffix=st.sampled_from([".npz", ".csv", ".tsv", ".csv.gz", ".parquet", ".pq"]))
def test_random_bytes(data, suffix):
    _check(_write("random" + suffix, data))


@FUZZ
@given(cut=st.integers(min_value=0, max_value=10_000))
def test_truncated_npz(cut):
    good = valid_npz_bytes()
    _check(_write("truncated.npz", good[: cut % len(good)]))


@FUZZ
@given(flips=st.lists(st.tuples(st.integers(0, 10_000), st.integers(1, 255)), min_size=1,
                      max_size=4))
def test_corrupted_npz(flips):
    data = bytearray(valid_npz_bytes(n=12))
    for position, mask in flips:
        data[position % len(data)] ^= mask
    _check(_write("corrupted.npz", bytes(data)))


def _parquet_bytes() -> bytes:
    frame = pd.DataFrame({"series_id": np.repeat(np.arange(8), 3), "step": np.tile([0, 1, 2], 8),
                          "v": np.arange(24.0), "target": np.repeat(np.arange(8) % 2, 3)})
    buf = io.BytesIO()
    frame.to_parquet(buf)
    return buf.getvalue()


@FUZZ
@given(cut=st.integers(min_value=0, max_value=10_000),
       flips=st.lists(st.tuples(st.integers(0, 10_000), st.integers(1, 255)), max_size=3))
def test_truncated_or_corrupted_parquet(cut, flips):
    data = bytearray(_parquet_bytes())
    for position, mask in flips:
        data[position % len(data)] ^= mask
    if cut % 3:  # sometimes whole, sometimes cut
        data = data[: cut % len(data)]
    _check(_write("broken.parquet", bytes(data)))


# --------------------------------------------------------------------------- NPZ arrays

_DTYPES = st.sampled_from([np.float32, np.float64, np.int64, np.int8, np.uint16, np.bool_,
                           np.complex64, np.dtype("U3"), np.dtype("S2"), np.float16])
_FLOATS = st.floats(allow_nan=True, allow_infinity=True, width=32)


@st.composite
def _array(draw, min_dims=0, max_dims=4):
    dtype = np.dtype(draw(_DTYPES))
    shape = draw(hnp.array_shapes(min_dims=min_dims, max_dims=max_dims, min_side=0,
                                  max_side=6))
    if dtype.kind == "f":
        elements = _FLOATS if dtype.itemsize >= 4 else st.floats(width=16, allow_nan=True)
        return draw(hnp.arrays(dtype, shape, elements=elements))
    return draw(hnp.arrays(dtype, shape))


@st.composite
def _npz_contents(draw):
    n = draw(st.integers(0, 12))
    T = draw(st.integers(0, 6))
    arrays = {}
    if draw(st.booleans()):
        arrays["X"] = draw(_array())
    else:
        F = draw(st.integers(1, 3))
        arrays["X"] = draw(hnp.arrays(np.float32, (n, T, F), elements=_FLOATS))
    if draw(st.booleans()):
        arrays["y"] = draw(_array(max_dims=2))
    else:
        arrays["y"] = draw(hnp.arrays(draw(st.sampled_from([np.int64, np.float64,
                                                            np.dtype("U2")])), (n,)))
    for key in ("lengths", "X_test", "y_test", "lengths_test", "extra"):
        if draw(st.integers(0, 4)) == 0:
            arrays[key] = draw(_array(max_dims=3))
    if draw(st.integers(0, 9)) == 0:
        arrays[draw(st.sampled_from(["y", "X", "lengths"]))] = np.array(
            [1, "a", None][: max(n, 1) % 3 + 1], dtype=object)
    return arrays


@FUZZ
@given(arrays=_npz_contents(), compressed=st.booleans(),
       task=st.sampled_from([None, *TaskKind]), impute=st.sampled_from([None, "zero", "mean"]))
def test_npz_with_random_arrays(arrays, compressed, task, impute):
    buf = io.BytesIO()
    (np.savez_compressed if compressed else np.savez)(buf, **arrays)
    _check(_write("arrays.npz", buf.getvalue()), LoadOptions(task=task, impute=impute))


@settings(max_examples=40, deadline=None, derandomize=True, database=None)
@given(n=st.integers(5, 30), T=st.integers(1, 8), n_classes=st.integers(2, 4),
       ragged=st.booleans(), seed=st.integers(0, 2**16))
def test_valid_npz_always_loads(n, T, n_classes, ragged, seed):
    rng = np.random.default_rng(seed)
    y = np.arange(n) % n_classes
    arrays = {"X": rng.normal(size=(n, T, 2)), "y": y}
    if ragged:
        arrays["lengths"] = rng.integers(1, T + 1, size=n)
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    ds = load_dataset(str(_write("valid.npz", buf.getvalue())))
    assert_contract(ds)
    assert ds.n_outputs == n_classes


# --------------------------------------------------------------------------- CSV text

_HEADERS = ["series_id", "step", "target", "time", "value", "a", "label", "y", "ds", ""]
_CELL = st.one_of(st.text(alphabet=string.digits + ".-e", max_size=5),
                  st.sampled_from(["nan", "inf", "-inf", "", "NA", "x", "2020-01-01", '"',
                                   "1e400", "0", "1"]))


@st.composite
def _csv_text(draw):
    columns = draw(st.lists(st.sampled_from(_HEADERS), min_size=1, max_size=6))
    rows = draw(st.lists(st.lists(_CELL, min_size=len(columns) - 1, max_size=len(columns) + 1),
                         max_size=25))
    sep = draw(st.sampled_from([",", ",", ";", "\t"]))
    lines = [sep.join(columns)] + [sep.join(row) for row in rows]
    return "\n".join(lines) + draw(st.sampled_from(["", "\n", "\r\n"]))


@FUZZ
@given(text=_csv_text(), suffix=st.sampled_from([".csv", ".tsv"]),
       options=st.builds(LoadOptions, task=st.sampled_from([None, *TaskKind]),
                         impute=st.sampled_from([None, "ffill"]),
                         lookback=st.sampled_from([None, 1, 3]),
                         horizon=st.sampled_from([1, 2]),
                         target=st.sampled_from([None, "value", "target"])))
def test_malformed_csv(text, suffix, options):
    _check(_write("text" + suffix, text.encode("utf-8")), options)


@FUZZ
@given(text=st.text(max_size=300))
def test_arbitrary_text_csv(text):
    _check(_write("any.csv", text.encode("utf-8", "surrogatepass")))


# --------------------------------------------------------------------------- tables


@st.composite
def _long_frame(draw):
    n_rows = draw(st.integers(1, 40))
    ids = draw(st.lists(st.sampled_from(["a", "b", "c", "d", "e", "f", 1, 2]), min_size=n_rows,
                        max_size=n_rows))
    steps = draw(st.lists(st.integers(0, 5), min_size=n_rows, max_size=n_rows))
    values = draw(st.lists(st.one_of(st.floats(allow_nan=True, allow_infinity=True),
                                     st.none()), min_size=n_rows, max_size=n_rows))
    targets = draw(st.lists(st.sampled_from([0, 1, 2]), min_size=n_rows, max_size=n_rows))
    frame = pd.DataFrame({"series_id": [str(i) for i in ids], "step": steps, "v": values,
                          "target": targets})
    if draw(st.booleans()):  # make the target constant per sequence (more loads succeed)
        frame["target"] = frame["series_id"].map(lambda s: hash(s) % 2)
    return frame


@FUZZ
@given(frame=_long_frame(), parquet=st.booleans(), impute=st.sampled_from([None, "mean"]),
       task=st.sampled_from([None, TaskKind.REGRESSION]))
def test_random_long_tables(frame, parquet, impute, task):
    path = _DIR / ("long.parquet" if parquet else "long.csv")
    if parquet:
        frame.to_parquet(path)
    else:
        frame.to_csv(path, index=False)
    _check(path, LoadOptions(impute=impute, task=task))


@FUZZ
@given(values=st.lists(st.one_of(st.floats(min_value=-1e6, max_value=1e6),
                                 st.sampled_from([None, np.nan, np.inf])),
                       min_size=1, max_size=80),
       lookback=st.integers(1, 10), horizon=st.integers(1, 4),
       impute=st.sampled_from([None, "ffill", "mean", "zero"]), shuffle=st.booleans())
def test_random_forecast_series(values, lookback, horizon, impute, shuffle):
    frame = pd.DataFrame({"time": np.arange(len(values)), "value": values})
    if shuffle:
        frame = frame.sample(frac=1.0, random_state=0)
    path = _DIR / "series.csv"
    frame.to_csv(path, index=False)
    _check(path, LoadOptions(lookback=lookback, horizon=horizon, impute=impute))


@pytest.mark.parametrize("options", [None, LoadOptions(task=TaskKind.FORECAST)])
def test_bad_sources_are_data_errors(options):
    for source in ["", "builtin:", "builtin:?", "builtin:adding?n=1",
                   "builtin:adding?length=1", str(_DIR / "missing.npz"), "\x00bad"]:
        with pytest.raises(DataError):
            load_dataset(source, options)
