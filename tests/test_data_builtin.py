"""Built-in data sets: registry, parameters, contract, seeded determinism, task semantics."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

import archsearch.data.real as real
from archsearch.data import BUILTIN_TASKS, list_builtin, load_dataset, prepare
from archsearch.data.builtin import is_synthetic
from archsearch.data.synthetic import LISTOPS_OPS, LISTOPS_VOCAB
from archsearch.errors import DataError
from archsearch.types import TaskKind
from tests.data_corpus import assert_contract

SYNTHETIC = ["adding", "copy_memory", "selective_copying", "associative_recall",
             "induction_heads", "listops", "parity"]
NEEDS = {task.name: task.requires for task in BUILTIN_TASKS.values()}


def _available(name: str) -> bool:
    package = NEEDS[name]
    if package in real.UCR_PACKAGES:
        return any(importlib.util.find_spec(p) is not None for p in real.UCR_PACKAGES)
    return package is None or importlib.util.find_spec(package) is not None


def test_list_builtin_has_every_task_with_one_line_descriptions():
    listed = dict(list_builtin())
    expected = set(SYNTHETIC) | {"digits", "sunspots", "co2", "gunpoint", "italypowerdemand",
                                 "japanesevowels", "pickupgesturewiimotez", "covid3month",
                                 "cardanosentiment", "arrowhead", "basicmotions", "osuleaf"}
    assert set(listed) == expected
    for name, description in listed.items():
        assert description and "\n" not in description and len(description) <= 90, name


@pytest.mark.parametrize("name", SYNTHETIC)
def test_synthetic_tasks_contract_seed_and_size(name):
    ds = load_dataset(f"builtin:{name}?length=24&n=60&seed=3")
    assert_contract(ds)
    assert ds.n_sequences == 60 and ds.seq_len == 24
    again = load_dataset(f"builtin:{name}?length=24&n=60&seed=3")
    np.testing.assert_array_equal(ds.X, again.X)
    np.testing.assert_array_equal(ds.y, again.y)
    other = load_dataset(f"builtin:{name}?length=24&n=60&seed=4")
    assert not np.array_equal(ds.X, other.X)
    prepared = prepare(ds, seed=0)
    assert len(prepared.train) + len(prepared.val) + len(prepared.test) == 60


@pytest.mark.parametrize("name", SYNTHETIC)
def test_synthetic_defaults_are_small(name):
    ds = load_dataset(f"builtin:{name}")
    assert ds.X.nbytes < 32 * 2**20  # a few-epoch CPU search stays quick


def test_synthetic_says_which_sources_a_generator_draws():
    assert {name for name, task in BUILTIN_TASKS.items() if task.synthetic} == set(SYNTHETIC)
    assert is_synthetic("builtin:Parity?length=8") and is_synthetic("builtin:adding")
    assert not is_synthetic("builtin:digits?steps=64") and not is_synthetic("builtin:gunpoint")
    assert not is_synthetic("builtin:no-such-set")


def test_builtin_name_is_case_insensitive_and_params_validated():
    assert load_dataset("builtin:Parity?length=8&n=10").seq_len == 8
    for spec, message in [("builtin:parity?length=0", "must be positive"),
                          ("builtin:parity?seed=-1", "non-negative"),
                          ("builtin:parity?length=4&length=5", "twice"),
                          ("builtin:parity?length", "key=value"),
                          ("builtin:gunpoint?n=5", "none"),
                          ("builtin:digits?steps=10", "steps=8"),
                          ("builtin:listops?length=100000&n=1000", "too large"),
                          ("builtin:adding?noise=101", "between 0 and 100"),
                          ("builtin:copy_memory?vocab=1", "between 2 and 64"),
                          ("builtin:parity?vocab=4", "among: length, n, seed, noise"),
                          ("builtin:associative_recall?length=1000&n=5000&vocab=64",
                           "length x n x vocab below 160,000,000"),
                          ("builtin:", "unknown built-in")]:
        with pytest.raises(DataError, match=message):
            load_dataset(spec)


VOCAB_CHANNELS = {  # channels at vocab=V: the token tasks' alphabets
    "copy_memory": lambda v: v + 10, "selective_copying": lambda v: v + 10,
    "associative_recall": lambda v: 2 * v + 2, "induction_heads": lambda v: v + 1}


@pytest.mark.parametrize("name", sorted(VOCAB_CHANNELS))
def test_the_vocabulary_sets_the_alphabet_and_the_classes(name):
    default = load_dataset(f"builtin:{name}?length=40&n=400")
    small, large = (load_dataset(f"builtin:{name}?length=40&n=400&vocab={v}") for v in (4, 32))
    assert default.n_features == VOCAB_CHANNELS[name](BUILTIN_TASKS[name].defaults["vocab"])
    for dataset, vocab in [(small, 4), (large, 32)]:
        assert dataset.n_features == VOCAB_CHANNELS[name](vocab)
        assert len(dataset.class_names) == vocab and set(dataset.y) <= set(range(vocab))
        assert f"vocab={vocab}" in dataset.name
    assert len(set(small.y)) == 4 and len(set(large.y)) > 16  # every symbol is drawn


@pytest.mark.parametrize("name", SYNTHETIC)
def test_noise_changes_the_targets_only_and_by_its_percentage(name):
    clean = load_dataset(f"builtin:{name}?length=24&n=2000")
    noisy = load_dataset(f"builtin:{name}?length=24&n=2000&noise=40")
    np.testing.assert_array_equal(clean.X, noisy.X)
    assert "noise=40%" in noisy.name and "noise" not in clean.name
    if clean.task is TaskKind.CLASSIFICATION:
        # 40% get a uniform class, which is the right one 1/classes of the time.
        changed = np.mean(clean.y != noisy.y)
        expected = 0.4 * (1 - 1 / len(clean.class_names))
        assert abs(changed - expected) < 0.04, (changed, expected)
    else:
        ratio = np.std(noisy.y - clean.y) / np.std(clean.y)
        assert abs(ratio - 0.4) < 0.03, ratio


def test_copy_memory_target_is_the_queried_symbol():
    ds = load_dataset("builtin:copy_memory?length=20&n=50")
    symbols = ds.X[:, :8, :8].argmax(-1)  # (n, 8) the first 8 steps
    assert (ds.X[:, 8:-1, 8] == 1).all()  # blanks during the delay
    query = ds.X[:, -1, 10:].argmax(-1)
    np.testing.assert_array_equal(ds.y, symbols[np.arange(50), query])


def test_selective_copying_target_is_the_jth_symbol_in_order():
    ds = load_dataset("builtin:selective_copying?length=30&n=40")
    tokens = ds.X[:, :-1, :9].argmax(-1)  # 8 = blank
    query = ds.X[:, -1, 10:].argmax(-1)
    for i in range(40):
        data = tokens[i][tokens[i] != 8]
        assert len(data) == 8
        assert ds.y[i] == data[query[i]]


def test_associative_recall_target_is_the_bound_value():
    ds = load_dataset("builtin:associative_recall?length=25&n=40")
    for i in range(40):
        tokens = ds.X[i, :-1, :33].argmax(-1)
        query = ds.X[i, -1, :16].argmax()
        assert ds.X[i, -1, -1] == 1
        at = int(np.flatnonzero(tokens == query)[0])
        assert ds.y[i] == tokens[at + 1] - 16


def test_induction_heads_target_follows_the_special_token():
    ds = load_dataset("builtin:induction_heads?length=20&n=40")
    tokens = ds.X.argmax(-1)
    for i in range(40):
        special = np.flatnonzero(tokens[i] == 16)
        assert len(special) == 2 and special[-1] == 19
        assert ds.y[i] == tokens[i, special[0] + 1]


def test_parity_target():
    ds = load_dataset("builtin:parity?length=9&n=30")
    np.testing.assert_array_equal(ds.y, ds.X[:, :, 0].sum(1).astype(int) % 2)


def _evaluate_listops(tokens: list[str]) -> int:
    stack: list[tuple[str, list[int]]] = []
    result = None
    for token in tokens:
        if token.startswith("["):
            stack.append((token[1:], []))
        elif token == "]":
            op, args = stack.pop()
            value = {"MAX": max, "MIN": min, "MED": lambda a: sorted(a)[(len(a) - 1) // 2],
                     "SM": lambda a: sum(a) % 10}[op](args)
            if stack:
                stack[-1][1].append(value)
            else:
                result = value
        else:
            stack[-1][1].append(int(token))
    assert not stack and result is not None
    return result


def test_listops_is_ragged_and_its_labels_are_correct():
    ds = load_dataset("builtin:listops?length=40&n=80&seed=1")
    assert ds.lengths is not None and ds.lengths.min() < ds.lengths.max() <= 40
    assert set(LISTOPS_OPS) and len(LISTOPS_VOCAB) == ds.n_features
    for i in range(80):
        tokens = [LISTOPS_VOCAB[k] for k in ds.X[i, : ds.lengths[i]].argmax(-1)]
        assert tokens[0].startswith("[") and tokens[-1] == "]"
        assert ds.y[i] == _evaluate_listops(tokens)
    assert len(np.unique(load_dataset("builtin:listops").y)) == 10


def test_digits_as_8_or_64_steps():
    rows = load_dataset("builtin:digits")
    pixels = load_dataset("builtin:digits?steps=64")
    assert rows.X.shape == (1797, 8, 8) and pixels.X.shape == (1797, 64, 1)
    np.testing.assert_array_equal(rows.X.reshape(1797, 64), pixels.X[:, :, 0])
    assert rows.n_outputs == 10


@pytest.mark.parametrize("name,steps,period", [("sunspots", 309, 11), ("co2", 2284, 52)])
def test_statsmodels_forecasting_series(name, steps, period):
    if not _available(name):
        pytest.skip("statsmodels is not installed (pip install --no-deps statsmodels)")
    ds = load_dataset(f"builtin:{name}")
    assert_contract(ds)
    assert ds.task is TaskKind.FORECAST
    lookback, horizon = ds.window
    assert ds.n_sequences == steps - lookback - horizon + 1
    prepared = prepare(ds, seed=0)
    assert prepared.target_unit == "standardised" and len(prepared.test) > 0
    assert load_dataset(f"builtin:{name}?lookback=8&horizon=3").y.shape[1] == 3


@pytest.mark.parametrize("name,shape,n_test,classes", [
    ("gunpoint", (50, 150, 1), 150, 2),
    ("italypowerdemand", (67, 24, 1), 1029, 2),
    ("japanesevowels", (270, 29, 12), 370, 9),
    ("pickupgesturewiimotez", (50, 361, 1), 50, 10),
    ("arrowhead", (36, 251, 1), 175, 3),
    ("basicmotions", (40, 100, 6), 40, 4),
    ("osuleaf", (200, 427, 1), 242, 6),
])
def test_ucr_uea_with_official_splits(name, shape, n_test, classes):
    if not _available(name):
        pytest.skip("neither aeon nor sktime is installed")
    ds = load_dataset(f"builtin:{name}")
    assert_contract(ds)
    assert ds.X.shape == shape and ds.X_test.shape[0] == n_test and ds.n_outputs == classes
    prepared = prepare(ds, seed=0)
    assert len(prepared.test) == n_test
    if name == "japanesevowels":
        assert ds.lengths.min() == 7 and ds.lengths_test is not None


@pytest.mark.parametrize("name,shape,n_test", [("covid3month", (140, 84, 1), 61),
                                               ("cardanosentiment", (74, 24, 2), 33)])
def test_regression_sets_with_official_splits(name, shape, n_test):
    if not _available(name):
        pytest.skip("the package that ships it is not installed")
    ds = load_dataset(f"builtin:{name}")
    assert_contract(ds)
    assert ds.task is TaskKind.REGRESSION and ds.n_outputs == 1
    assert ds.X.shape == shape and ds.X_test.shape[0] == n_test
    assert ds.y.dtype == np.float32 and np.isfinite(ds.y).all() and ds.y.std() > 0


@pytest.mark.parametrize("name", ["sunspots", "co2", "gunpoint", "italypowerdemand",
                                  "japanesevowels"])
def test_missing_data_package_names_what_to_install(name, monkeypatch):
    monkeypatch.setattr(real, "_package_dir", lambda package: None)
    with pytest.raises(DataError, match=r"pip install 'archsearch\[datasets\]'") as info:
        load_dataset(f"builtin:{name}")
    assert NEEDS[name] in str(info.value)


def test_ts_parser_handles_missing_values_and_labels(tmp_path):
    path = tmp_path / "X_TRAIN.ts"
    path.write_text("# comment\n@problemName X\n@classLabel true a b\n@data\n"
                    "1,2,?:4,5,6:a\n7,8:9,10:b\n")
    series, labels = real.read_ts(path)
    assert [s.shape for s in series] == [(3, 2), (2, 2)]
    assert np.isnan(series[0][2, 0]) and list(labels) == ["a", "b"]
    path.write_text("@classLabel true a\n@data\n1,2:3:a\n")
    with pytest.raises(DataError, match="different lengths"):
        real.read_ts(path)
