"""The data room's acceptance (issue 4): a search runs on every input format and on every
built-in task, and each task's meta-features are stored with it and shown in its report.

Real searches (real Ray, real training), kept cheap: one trial of a one-family space trained for
one epoch, no cross-validation, tiny sizes, and one Ray runtime for the whole module (the
workflow reuses a runtime that is already up).
"""

from __future__ import annotations

import html
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from archsearch.cli import main
from archsearch.data import BUILTIN_TASKS, LoadOptions, fingerprint, load_dataset, meta_features
from archsearch.options import SearchOptions
from archsearch.search.ray_backend.runtime import ray_runtime
from archsearch.store import Store, TaskRecord
from archsearch.types import TaskKind
from archsearch.workflow import SearchRequest, run_task, submit

pytestmark = pytest.mark.slow

TINY_SPACE = """\
version: 1
training: {lr: 0.01, batch_size: 64, max_steps: 2, eval_every: 2}
shared: {d_model: 8}
families: {gru: {n_layers: 1}}
"""

# Every built-in task, at a size that trains in a second; the real ones at their own size.
BUILTIN_SOURCES = {name: f"builtin:{name}?length=16&n=200" for name in
                   ("adding", "copy_memory", "selective_copying", "associative_recall",
                    "induction_heads", "listops", "parity")}
BUILTIN_SOURCES.update({"digits": "builtin:digits", "sunspots": "builtin:sunspots?lookback=8",
                        "co2": "builtin:co2?lookback=8", "gunpoint": "builtin:gunpoint",
                        "italypowerdemand": "builtin:italypowerdemand",
                        "japanesevowels": "builtin:japanesevowels",
                        "pickupgesturewiimotez": "builtin:pickupgesturewiimotez",
                        "covid3month": "builtin:covid3month",
                        "cardanosentiment": "builtin:cardanosentiment",
                        "arrowhead": "builtin:arrowhead", "basicmotions": "builtin:basicmotions",
                        "osuleaf": "builtin:osuleaf"})


@pytest.fixture(scope="module", autouse=True)
def ray_cluster():
    with ray_runtime(None) as runtime:
        yield runtime


@pytest.fixture
def env(tmp_path):
    space = tmp_path / "tiny.yaml"
    space.write_text(TINY_SPACE)
    return {"space": str(space), "db": f"sqlite:///{tmp_path / 'search.db'}",
            "reports": tmp_path / "reports"}


def search_request(env: dict, data: str, load: LoadOptions | None = None) -> SearchRequest:
    return SearchRequest(data=data, load=load or LoadOptions(), space=env["space"],
                         options=SearchOptions(budget_trials=1, cv_folds=0), db_url=env["db"],
                         report_dir=env["reports"])


def search(env: dict, data: str, load: LoadOptions | None = None) -> TaskRecord:
    summary = run_task(search_request(env, data, load), printer=lambda line: None)
    assert summary["status"] == "completed", summary
    return stored_task(env, summary["task_id"])


def cli_search(env: dict, capsys, *args: str) -> TaskRecord:
    code = main(["search", *args, "--budget-trials", "1", "--space", env["space"], "--cv-folds",
                 "0", "--db", env["db"], "--report-dir", str(env["reports"]), "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err[-3000:]
    return stored_task(env, json.loads(out.strip().splitlines()[-1])["task_id"])


def stored_task(env: dict, task_id: int) -> TaskRecord:
    with Store(env["db"]) as store:
        task = store.get_task(task_id)
        assert [t.status for t in store.trials(task_id)] == ["completed"]
        return task


def assert_described(task: TaskRecord, data: str, load: LoadOptions | None = None) -> dict:
    """The stored meta-features and fingerprint are those of the data set as loaded with
    ``load``, the task keeps ``load`` for a resume, and the report shows every meta-feature."""
    load = load or LoadOptions()
    dataset = load_dataset(data, load)
    assert task.meta_features == json.loads(json.dumps(meta_features(dataset)))
    assert task.fingerprint == fingerprint(dataset)
    assert LoadOptions.from_dict(task.options["load"]) == load
    page = Path(task.report_path).read_text(encoding="utf-8")
    for key, value in task.meta_features.items():
        assert f"<tr><td>{html.escape(key)}</td><td>{html.escape(str(value))}</td></tr>" in page
    assert task.fingerprint in page
    return task.meta_features


# --------------------------------------------------------------------------- formats


def test_npz_ragged_with_a_fixed_test_split(env, tmp_path):
    rng = np.random.default_rng(0)
    lengths, lengths_test = rng.integers(4, 13, size=120), rng.integers(4, 13, size=40)
    X, X_test = rng.normal(size=(120, 12, 2)), rng.normal(size=(40, 12, 2))
    for array, lens in ((X, lengths), (X_test, lengths_test)):
        array[np.arange(12) >= lens[:, None]] = 0.0  # padding after each sequence's end
    path = tmp_path / "ragged.npz"
    np.savez(path, X=X, y=np.arange(120) % 3, lengths=lengths,
             X_test=X_test, y_test=np.arange(40) % 3, lengths_test=lengths_test)
    meta = assert_described(search(env, str(path)), str(path))
    assert meta["ragged"] is True and meta["n_test_sequences"] == 40
    assert meta["n_sequences"] == 120 and meta["n_classes"] == 3


def _long_frame(n: int = 90, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = [{"patient": f"p{i:03d}", "hour": t, "heart rate": float(rng.normal()),
             "<b>dose</b>": float(t % 3), "label": ["a", "b"][i % 2], "score": i / 10.0}
            for i in range(n) for t in range(int(rng.integers(3, 9)))]
    return pd.DataFrame(rows).sample(frac=1.0, random_state=seed)


def test_csv_long_format_resumed_with_its_stored_load_options(env, tmp_path, capsys):
    """Submitted, then run by ``search --resume``: the stored options read the file again."""
    path = tmp_path / "vitals <b>&amp;.csv"  # a name that reaches the report verbatim
    _long_frame().drop(columns="score").to_csv(path, index=False)
    load = LoadOptions(id_column="patient", step_column="hour", target="label")
    task_id = submit(search_request(env, str(path), load))
    code = main(["search", "--resume", str(task_id), "--db", env["db"]])
    _, err = capsys.readouterr()
    assert code == 0, err[-3000:]
    meta = assert_described(stored_task(env, task_id), str(path), load)
    assert meta["task"] == "classification" and meta["n_features"] == 2 and meta["ragged"]
    page = Path(stored_task(env, task_id).report_path).read_text(encoding="utf-8")
    assert "vitals <b>" not in page and html.escape(path.name) in page


def test_parquet_long_format_through_the_cli(env, tmp_path, capsys):
    path = tmp_path / "vitals.parquet"
    _long_frame().drop(columns="label").rename(
        columns={"patient": "series_id", "hour": "step"}).to_parquet(path)
    task = cli_search(env, capsys, str(path), "--target", "score", "--task", "regression")
    load = LoadOptions(task=TaskKind.REGRESSION, target="score")
    assert assert_described(task, str(path), load)["task"] == "regression"


def test_forecasting_csv_through_the_cli(env, tmp_path, capsys):
    t = np.arange(240)
    frame = pd.DataFrame({"when": pd.date_range("2024-01-01", periods=240, freq="h").astype(str),
                          "load": np.sin(2 * np.pi * t / 24) + 0.01 * t,
                          "temp": np.cos(2 * np.pi * t / 24)})
    frame.loc[[10, 100], "temp"] = np.nan
    path = tmp_path / "grid.csv"
    frame.to_csv(path, index=False)
    task = cli_search(env, capsys, str(path), "--time-column", "when", "--target", "load",
                      "--lookback", "12", "--horizon", "3", "--impute", "ffill")
    load = LoadOptions(time_column="when", target="load", lookback=12, horizon=3,
                       impute="ffill")
    meta = assert_described(task, str(path), load)
    assert (meta["task"], meta["lookback"], meta["horizon"]) == ("forecast", 12, 3)
    assert meta["missing_ratio"] > 0


# --------------------------------------------------------------------------- built-in tasks


def test_every_builtin_task_is_covered():
    assert set(BUILTIN_SOURCES) == set(BUILTIN_TASKS)


@pytest.mark.parametrize("name", list(BUILTIN_SOURCES))
def test_search_on_builtin_task(name, env):
    if not BUILTIN_TASKS[name].available:
        pytest.skip(f"{BUILTIN_TASKS[name].requires} is not installed (the datasets extra)")
    source = BUILTIN_SOURCES[name]
    meta = assert_described(search(env, source), source)
    assert meta["task"] == load_dataset(source).task.value
