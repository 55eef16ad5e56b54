"""Loaders (NPZ, CSV/Parquet long format, forecasting series), options, splits and the
hand-made bad-file corpus."""

from __future__ import annotations

import gzip

import numpy as np
import pandas as pd
import pytest

import archsearch.data.npz as npz_module
from archsearch.data import LoadOptions, load_dataset, prepare
from archsearch.data.splits import forecast_indices, split_indices
from archsearch.data.validate import impute
from archsearch.errors import DataError
from archsearch.types import TaskKind
from tests.data_corpus import assert_contract, cli_args, write_bad_files

# --------------------------------------------------------------------------- NPZ


def _ragged(n: int = 40, T: int = 12, F: int = 3, seed: int = 0):
    rng = np.random.default_rng(seed)
    lengths = rng.integers(1, T + 1, size=n)
    X = rng.normal(size=(n, T, F)).astype(np.float32)
    X[np.arange(T)[None, :] >= lengths[:, None]] = np.nan  # padding may be anything
    return X, lengths


def test_npz_basic_2d_and_integer_labels(tmp_path):
    X = np.random.default_rng(0).normal(size=(20, 7))
    np.savez(tmp_path / "d.npz", X=X, y=np.arange(20) % 3 + 5)
    ds = load_dataset(str(tmp_path / "d.npz"))
    assert_contract(ds)
    assert ds.X.shape == (20, 7, 1) and ds.task is TaskKind.CLASSIFICATION
    assert ds.class_names == ("5", "6", "7") and set(ds.y) == {0, 1, 2}
    assert ds.name == "d.npz" and ds.lengths is None


def test_npz_float_targets_mean_regression_and_task_override(tmp_path):
    X = np.zeros((10, 4, 2), dtype=np.float32)
    np.savez(tmp_path / "r.npz", X=X, y=np.linspace(0, 1, 10))
    assert load_dataset(str(tmp_path / "r.npz")).task is TaskKind.REGRESSION
    np.savez(tmp_path / "c.npz", X=X, y=np.arange(10) % 2)
    ds = load_dataset(str(tmp_path / "c.npz"), LoadOptions(task=TaskKind.REGRESSION))
    assert ds.task is TaskKind.REGRESSION and ds.y.dtype == np.float32


def test_npz_ragged_padding_is_zeroed_even_when_nan(tmp_path):
    X, lengths = _ragged()
    np.savez(tmp_path / "ragged.npz", X=X, y=np.arange(40) % 2, lengths=lengths)
    ds = load_dataset(str(tmp_path / "ragged.npz"))
    assert_contract(ds)
    np.testing.assert_array_equal(ds.lengths, lengths)
    prepared = prepare(ds, seed=0)
    for split in (prepared.train, prepared.val, prepared.test):
        pad = np.arange(12)[None, :] >= split.lengths[:, None]
        assert not split.X[pad].any()


def test_npz_fixed_test_split_with_string_labels(tmp_path):
    X, lengths = _ragged(n=30)
    X = np.nan_to_num(X)
    y = np.array(["cat", "dog", "eel"] * 10)
    X_test, lengths_test = _ragged(n=9, seed=1)
    y_test = np.array(["eel", "cat", "cat"] * 3)
    np.savez(tmp_path / "fixed.npz", X=X, y=y, lengths=lengths, X_test=X_test, y_test=y_test,
             lengths_test=lengths_test)
    ds = load_dataset(str(tmp_path / "fixed.npz"))
    assert_contract(ds)
    assert ds.class_names == ("cat", "dog", "eel")
    np.testing.assert_array_equal(ds.y_test, [2, 0, 0] * 3)  # mapped with the training labels
    prepared = prepare(ds, seed=3)
    assert len(prepared.test) == 9  # the fixed split, used as-is
    assert len(prepared.train) + len(prepared.val) == 30  # validation from training only
    np.testing.assert_array_equal(prepared.test.y, ds.y_test)


def test_npz_test_labels_only_a_subset_of_training_is_fine(tmp_path):
    X = np.ones((6, 3))
    np.savez(tmp_path / "d.npz", X=X, y=np.array([1, 2, 3] * 2), X_test=X[:2],
             y_test=np.array([3, 3]))
    ds = load_dataset(str(tmp_path / "d.npz"))
    np.testing.assert_array_equal(ds.y_test, [2, 2])


def test_npz_object_arrays_are_refused_without_unpickling(tmp_path, monkeypatch):
    np.savez(tmp_path / "o.npz", X=np.ones((4, 3)), y=np.array([1, "a", 2, "b"], dtype=object))
    import pickle

    def no_unpickling(*args, **kwargs):
        raise AssertionError("a file was unpickled")

    monkeypatch.setattr(pickle, "load", no_unpickling)
    monkeypatch.setattr(pickle, "loads", no_unpickling)
    with pytest.raises(DataError, match="never unpickles"):
        load_dataset(str(tmp_path / "o.npz"))


def test_npz_impute_methods(tmp_path):
    X = np.arange(6 * 5 * 1, dtype=np.float32).reshape(6, 5, 1)
    X[0, 2, 0] = np.nan
    np.savez(tmp_path / "n.npz", X=X, y=np.linspace(0, 1, 6))
    with pytest.raises(DataError, match="1 NaN value"):
        load_dataset(str(tmp_path / "n.npz"))
    zero = load_dataset(str(tmp_path / "n.npz"), LoadOptions(impute="zero"))
    ffill = load_dataset(str(tmp_path / "n.npz"), LoadOptions(impute="ffill"))
    mean = load_dataset(str(tmp_path / "n.npz"), LoadOptions(impute="mean"))
    assert zero.X[0, 2, 0] == 0 and ffill.X[0, 2, 0] == 1 and mean.X[0, 2, 0] == 2
    assert zero.n_missing == 1


def test_impute_leading_gaps_ragged_and_causal_mean():
    X = np.array([[[np.nan], [2.0], [np.nan], [4.0], [np.nan]]], dtype=np.float32)
    lengths = np.array([4])  # the last step is padding: left alone
    ff = impute(X, lengths, "ffill")
    np.testing.assert_array_equal(ff[0, :4, 0], [2, 2, 2, 4])
    assert np.isnan(ff[0, 4, 0])
    causal = impute(X, None, "mean", causal=True)
    np.testing.assert_allclose(causal[0, :, 0], [2, 2, 2, 4, 3])  # only the past counts
    whole = impute(X, None, "mean")
    np.testing.assert_allclose(whole[0, :, 0], [3, 2, 3, 4, 3])
    never = impute(np.full((1, 3, 1), np.nan, dtype=np.float32), None, "ffill")
    np.testing.assert_array_equal(never, 0)


def test_npz_large_uncompressed_members_are_memory_mapped(tmp_path, monkeypatch):
    X = np.random.default_rng(0).normal(size=(30, 8, 2)).astype(np.float32)
    np.savez(tmp_path / "big.npz", X=X, y=np.arange(30) % 2)
    np.savez_compressed(tmp_path / "small.npz", X=X, y=np.arange(30) % 2)
    monkeypatch.setattr(npz_module, "MMAP_MIN_BYTES", 0)
    ds = load_dataset(str(tmp_path / "big.npz"))
    assert isinstance(ds.X, np.memmap)
    np.testing.assert_array_equal(ds.X, X)
    compressed = load_dataset(str(tmp_path / "small.npz"))
    assert not isinstance(compressed.X, np.memmap)
    np.testing.assert_array_equal(compressed.X, X)
    prepared = prepare(ds, seed=0)
    assert prepared.train.X.flags.writeable


def test_npz_refuses_csv_options(tmp_path):
    np.savez(tmp_path / "d.npz", X=np.ones((6, 3)), y=np.arange(6) % 2)
    with pytest.raises(DataError, match="CSV/Parquet files only"):
        load_dataset(str(tmp_path / "d.npz"), LoadOptions(target="y"))


# --------------------------------------------------------------------------- CSV / Parquet


def _long_rows(n: int = 12, seed: int = 0, shuffle: bool = True) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        for t in range(int(rng.integers(2, 7))):
            rows.append({"series_id": f"s{i:02d}", "step": t * 10, "a b": float(i + t),
                         "<script>": float(t), "label": ["x", "y", "z"][i % 3]})
    frame = pd.DataFrame(rows)
    return frame.sample(frac=1.0, random_state=seed) if shuffle else frame


def test_csv_long_format_ragged_any_row_order(tmp_path):
    frame = _long_rows()
    frame.to_csv(tmp_path / "long.csv", index=False)
    ds = load_dataset(str(tmp_path / "long.csv"))
    assert_contract(ds)
    assert ds.task is TaskKind.CLASSIFICATION and ds.class_names == ("x", "y", "z")
    assert ds.feature_names == ("a b", "<script>")  # verbatim
    assert ds.target_name == "label"
    ordered = _long_rows(shuffle=False)
    counts = ordered.groupby("series_id").size().to_numpy()
    np.testing.assert_array_equal(ds.lengths, counts)
    # sequence s03 (sorted ids), its steps in order
    rows = ordered[ordered.series_id == "s03"]
    np.testing.assert_array_equal(ds.X[3, : len(rows), 0], rows["a b"].to_numpy())


def test_parquet_and_gzip_tsv_match_csv(tmp_path):
    frame = _long_rows()
    frame.to_csv(tmp_path / "long.csv", index=False)
    frame.to_parquet(tmp_path / "long.parquet")
    with gzip.open(tmp_path / "long.tsv.gz", "wt", encoding="utf-8") as fh:
        frame.to_csv(fh, sep="\t", index=False)
    reference = load_dataset(str(tmp_path / "long.csv"))
    for other in ("long.parquet", "long.tsv.gz"):
        ds = load_dataset(str(tmp_path / other))
        np.testing.assert_array_equal(ds.X, reference.X)
        np.testing.assert_array_equal(ds.y, reference.y)
        np.testing.assert_array_equal(ds.lengths, reference.lengths)


def test_csv_long_renamed_columns_regression_and_target_option(tmp_path):
    frame = _long_rows().rename(columns={"series_id": "patient", "step": "hour"})
    frame["score"] = frame["patient"].str[1:].astype(float) / 7.0
    frame.to_csv(tmp_path / "r.csv", index=False)
    options = LoadOptions(id_column="patient", step_column="hour", target="score")
    with pytest.raises(DataError, match="not numeric"):  # 'label' is now a text feature
        load_dataset(str(tmp_path / "r.csv"), options)
    frame.drop(columns="label").to_csv(tmp_path / "r.csv", index=False)
    ds = load_dataset(str(tmp_path / "r.csv"), options)
    assert ds.task is TaskKind.REGRESSION and ds.y.dtype == np.float32
    np.testing.assert_allclose(ds.y[:3], np.array([0, 1, 2]) / 7.0, rtol=1e-6)
    assert cli_args(options) == ["--target", "score", "--id-column", "patient",
                                 "--step-column", "hour"]


def test_csv_long_datetime_steps_and_impute(tmp_path):
    text = ("series_id,step,v,target\n"
            "a,2024-01-02,2,1\na,2024-01-01,1,1\na,2024-01-03,,1\n"
            "b,2024-01-01,5,0\nb,2024-01-02,6,0\n") * 1
    rows = [text]
    for i in range(3):  # enough sequences to split
        rows.append(f"c{i},2024-01-01,{i},{i % 2}\n")
    (tmp_path / "d.csv").write_text("".join(rows))
    with pytest.raises(DataError, match="id 'a'"):
        load_dataset(str(tmp_path / "d.csv"))
    ds = load_dataset(str(tmp_path / "d.csv"), LoadOptions(impute="ffill"))
    np.testing.assert_array_equal(ds.X[0, :3, 0], [1, 2, 2])
    assert ds.n_missing == 1


# --------------------------------------------------------------------------- forecasting


def _series(steps: int = 120) -> pd.DataFrame:
    t = np.arange(steps)
    return pd.DataFrame({"ds": pd.date_range("2020-01-01", periods=steps, freq="h").astype(str),
                         "load": t.astype(float), "temp": 1000.0 + t})


def test_forecast_windows_content(tmp_path):
    _series().sample(frac=1.0, random_state=0).to_csv(tmp_path / "s.csv", index=False)
    ds = load_dataset(str(tmp_path / "s.csv"), LoadOptions(lookback=5, horizon=3))
    assert_contract(ds)
    assert ds.task is TaskKind.FORECAST and ds.window == (5, 3)
    assert ds.X.shape == (120 - 5 - 3 + 1, 5, 2) and ds.y.shape == (113, 6)
    np.testing.assert_array_equal(ds.X[10, :, 0], np.arange(10, 15))
    # horizon-major: y[i, h * C + c]
    np.testing.assert_array_equal(ds.y[10].reshape(3, 2)[:, 0], [15, 16, 17])
    np.testing.assert_array_equal(ds.y[10].reshape(3, 2)[:, 1], [1015, 1016, 1017])
    one = load_dataset(str(tmp_path / "s.csv"),
                       LoadOptions(lookback=5, horizon=3, target="temp"))
    np.testing.assert_array_equal(one.y[10], [1015, 1016, 1017])
    assert one.n_outputs == 3 and one.X.shape[2] == 2


def test_forecast_is_detected_from_time_column_and_task_option(tmp_path):
    frame = _series().rename(columns={"ds": "when"})
    frame.to_csv(tmp_path / "s.csv", index=False)
    with pytest.raises(DataError, match="cannot tell its layout"):
        load_dataset(str(tmp_path / "s.csv"))
    ds = load_dataset(str(tmp_path / "s.csv"), LoadOptions(time_column="when", lookback=4))
    assert ds.task is TaskKind.FORECAST
    frame.to_parquet(tmp_path / "s.parquet")
    pq = load_dataset(str(tmp_path / "s.parquet"), LoadOptions(time_column="when", lookback=4))
    np.testing.assert_array_equal(pq.X, ds.X)


@pytest.mark.parametrize("lookback,horizon", [(1, 1), (5, 3), (12, 1), (3, 7)])
def test_forecast_splits_do_not_leak(tmp_path, lookback, horizon):
    _series(150).to_csv(tmp_path / "s.csv", index=False)
    ds = load_dataset(str(tmp_path / "s.csv"),
                      LoadOptions(lookback=lookback, horizon=horizon, target="load"))
    train, val, test = forecast_indices(ds)
    span = lookback + horizon  # window i covers time steps i .. i + span - 1
    steps = {name: set() for name in ("train", "val", "test")}
    for name, idx in (("train", train), ("val", val), ("test", test)):
        for i in idx:
            steps[name].update(range(i, i + span))
    assert max(steps["train"]) < min(steps["val"])
    assert max(steps["val"]) < min(steps["test"])
    # The values of 'load' are the time steps: check the prepared (standardised) arrays too.
    prepared = prepare(ds, seed=0)

    def steps_of(y: np.ndarray) -> np.ndarray:
        return np.rint(y * prepared.target_std[0] + prepared.target_mean[0])

    last_train_target = steps_of(prepared.train.y).max()
    first_val_input = steps_of(prepared.val.y).min() - lookback
    last_val_target = steps_of(prepared.val.y).max()
    first_test_input = steps_of(prepared.test.y).min() - lookback
    assert last_train_target < first_val_input and last_val_target < first_test_input


def test_forecast_targets_standardised_with_training_statistics(tmp_path):
    _series(200).to_csv(tmp_path / "s.csv", index=False)
    ds = load_dataset(str(tmp_path / "s.csv"), LoadOptions(lookback=6, horizon=2))
    prepared = prepare(ds, seed=0)
    assert prepared.target_unit == "standardised"
    train_y = prepared.train.y.reshape(-1, 2)
    np.testing.assert_allclose(train_y.mean(axis=0), 0, atol=1e-5)
    np.testing.assert_allclose(train_y.std(axis=0), 1, atol=1e-5)
    assert prepared.test.y.mean() > 1  # the future, scaled with the past's statistics
    train_idx = forecast_indices(ds)[0]
    raw = ds.y[train_idx].reshape(-1, 2)
    np.testing.assert_allclose(prepared.target_mean, raw.mean(axis=0), rtol=1e-5)


def test_regression_targets_keep_their_units(tmp_path):
    ds = load_dataset("builtin:adding?length=10&n=100")
    prepared = prepare(ds, seed=0)
    assert prepared.target_unit == "raw" and prepared.target_mean is None
    assert set(prepared.train.y.tolist()) <= set(ds.y.tolist())


# --------------------------------------------------------------------------- splits


def test_classification_splits_are_stratified_and_seeded():
    rng = np.random.default_rng(0)
    from archsearch.data import SequenceDataset

    y = np.repeat([0, 1, 2], [300, 60, 15])
    ds = SequenceDataset("imbalanced", TaskKind.CLASSIFICATION,
                         rng.normal(size=(375, 4, 1)).astype(np.float32), y,
                         class_names=("a", "b", "c"))
    prepared = prepare(ds, seed=1)
    total = np.bincount(y) / len(y)
    for split in (prepared.train, prepared.val, prepared.test):
        share = np.bincount(split.y, minlength=3) / len(split)
        np.testing.assert_allclose(share, total, atol=0.02)
    a, b = split_indices(ds, 7), split_indices(ds, 7)
    for left, right in zip(a, b, strict=True):
        np.testing.assert_array_equal(left, right)
    assert not np.array_equal(split_indices(ds, 8)[0], a[0])
    parts = np.concatenate(a)
    assert len(parts) == len(set(parts.tolist())) == 375


def test_normalisation_fitted_on_training_only():
    from archsearch.data import SequenceDataset

    X = np.zeros((100, 3, 1), dtype=np.float32)
    X[:, :, 0] = np.arange(100)[:, None]
    ds = SequenceDataset("t", TaskKind.REGRESSION, X, np.arange(100, dtype=np.float32))
    prepared = prepare(ds, seed=0)
    train_values = prepared.train.X[:, :, 0]
    assert abs(train_values.mean()) < 1e-5 and abs(train_values.std() - 1) < 1e-5
    assert abs(prepared.test.X.mean()) > 1e-3  # test statistics were not used


# --------------------------------------------------------------------------- options, sources


def test_load_options_validation():
    with pytest.raises(DataError, match="impute"):
        LoadOptions(impute="median")
    with pytest.raises(DataError, match="lookback"):
        LoadOptions(lookback=0)
    with pytest.raises(DataError, match="unknown task"):
        LoadOptions(task="clustering")  # type: ignore[arg-type]
    assert LoadOptions(task="forecast").task is TaskKind.FORECAST  # type: ignore[arg-type]
    with pytest.raises(DataError, match="two different columns"):
        LoadOptions(id_column="a", step_column="a")
    options = LoadOptions(task=TaskKind.FORECAST, time_column="t", lookback=4, impute="ffill")
    assert LoadOptions.from_dict(options.to_dict()) == options
    assert options.to_dict()["task"] == "forecast"
    with pytest.raises(DataError, match="unknown load option"):
        LoadOptions.from_dict({"lookahead": 3})


def test_builtin_needs_no_options_and_refuses_file_options():
    ds = load_dataset("builtin:adding?length=50")
    assert ds.seq_len == 50
    assert load_dataset("builtin:adding?length=50&n=20",
                        LoadOptions(task=TaskKind.REGRESSION)).n_sequences == 20
    with pytest.raises(DataError, match="do not apply"):
        load_dataset("builtin:adding", LoadOptions(impute="zero"))


def test_every_hand_made_bad_file_gives_a_clear_data_error(tmp_path):
    corpus = write_bad_files(tmp_path)
    assert len(corpus) >= 60
    for bad in corpus:
        with pytest.raises(DataError) as info:
            load_dataset(bad.source, bad.options)
        message = str(info.value)
        assert bad.expect in message.lower(), (bad.name, message)
        assert "\n" not in message and "Traceback" not in message, bad.name
        assert len(message) < 700, (bad.name, len(message))


def test_regression_targets_beyond_float32_are_refused(tmp_path):
    path = tmp_path / "huge.npz"
    X = np.zeros((6, 4, 1), dtype=np.float32)
    np.savez(path, X=X, y=np.array([1.0, 2.0, 1e300, 3.0, 4.0, 5.0]))
    with pytest.raises(DataError, match="too large for float32.*flat index 2"):
        load_dataset(str(path), LoadOptions(task=TaskKind.REGRESSION))
